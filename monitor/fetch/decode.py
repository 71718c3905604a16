"""Content-Encoding decoders whose output is bounded while they decode.

httpx decodes each received chunk in one call with no output limit: a 6 KB brotli chunk can
expand to gigabytes before the fetcher sees the first decoded byte, so a byte cap counted after
decoding comes too late. Here every decoder hands out at most ``CHUNK`` bytes per step (zlib's
``max_length``, brotli's ``output_buffer_limit``, zstd fed a few input bytes at a time), lazily,
so the caller's cap stops decoding within one step of the limit. Every encoding the client
advertises in ``Accept-Encoding`` has a bounded decoder here.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Protocol

import brotli
import zstandard

CHUNK = 64 * 1024
# zstd has no output limit per call; its densest block (RLE) turns 4 input bytes into 128 KiB,
# so 16 input bytes at a time yield at most ~512 KiB.
ZSTD_PIECE = 16
# RFC 9659: a zstd content coding uses at most an 8 MB window; a larger one is refused rather
# than allocated (a frame header may ask for gigabytes).
ZSTD_MAX_WINDOW = 8 * 1024 * 1024
ACCEPT_ENCODING = "gzip, deflate, br, zstd"


class DecodeError(Exception):
    """The body is not valid for its Content-Encoding."""


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Zlib:
    def __init__(self, wbits: int, fallback_raw: bool = False) -> None:
        self._z = zlib.decompressobj(wbits)
        self._fallback_raw = fallback_raw  # "deflate" is sent both zlib-wrapped and raw
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = data
        while True:
            try:
                out = self._z.decompress(buf, CHUNK)
            except zlib.error as exc:
                if self._fallback_raw and not self._started:
                    self._fallback_raw = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise DecodeError(str(exc)) from exc
            self._started = True
            buf = self._z.unconsumed_tail
            if out:
                yield out
            if self._z.eof or (not buf and len(out) < CHUNK):
                return

    def flush(self) -> Iterator[bytes]:
        yield from self.feed(b"")


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._d.is_finished():
            return
        try:
            out = self._d.process(data, output_buffer_limit=CHUNK)
            while True:
                if out:
                    yield out
                # A full buffer may leave output pending even when all input was taken.
                if self._d.is_finished() or (len(out) < CHUNK and self._d.can_accept_more_data()):
                    return
                out = self._d.process(b"", output_buffer_limit=CHUNK)
        except brotli.error as exc:
            raise DecodeError(f"brotli: {exc}") from exc

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Zstd:
    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._d = self._dctx.decompressobj()

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        try:
            for i in range(0, len(view), ZSTD_PIECE):
                piece = bytes(view[i:i + ZSTD_PIECE])
                while piece:
                    out = self._d.decompress(piece)
                    if out:
                        yield out
                    piece = b""
                    if self._d.eof:  # several frames one after another (as httpx allows)
                        piece = self._d.unused_data
                        self._d = self._dctx.decompressobj()
        except zstandard.ZstdError as exc:
            raise DecodeError(f"zstd: {exc}") from exc

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


def _stage(name: str) -> _Stage:
    if name in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, fallback_raw=True)
    if name == "br":
        return _Brotli()
    if name == "zstd":
        return _Zstd()
    return _Identity()  # identity, or an unknown coding passed through as httpx does


class BoundedDecoder:
    """Decodes a body coded with ``content_encoding`` (as the header says, outermost last),
    lazily: iterate ``feed``'s output and stop whenever the total is too large."""

    def __init__(self, content_encoding: str | None) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",") if n.strip()]
        # "gzip, br" means gzip was applied first: decode br, then gzip.
        self._stages = [_stage(n) for n in reversed(names)]

    def _through(self, first: Iterable[bytes], start: int) -> Iterator[bytes]:
        it: Iterable[bytes] = first
        for stage in self._stages[start:]:
            it = _pipe(stage, it)
        return iter(it)

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through([data], 0)

    def flush(self) -> Iterator[bytes]:
        for i, stage in enumerate(self._stages):
            yield from self._through(stage.flush(), i + 1)


def _pipe(stage: _Stage, inputs: Iterable[bytes]) -> Iterator[bytes]:
    for data in inputs:
        yield from stage.feed(data)
