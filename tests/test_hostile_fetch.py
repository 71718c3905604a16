"""Hostile servers against the fetcher: compression bombs of every advertised encoding stop at
``max_bytes`` while decoding (memory near the cap, not the bomb's size), and a source beside
the bomb is fetched as usual."""

from __future__ import annotations

import functools
import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from monitor.fetch.decode import ACCEPT_ENCODING, BoundedDecoder, DecodeError
from tests.fetch_helpers import RawServer, site_on
from tests.hostile import MIB, bomb, run_measured, send_body
from tests.servers import Page

BOMB = 256 * MIB  # decoded size; a few KB to 250 KB on the wire
LIMIT = 2 * MIB


@functools.cache
def _bomb(encoding: str) -> bytes:
    return bomb(encoding, BOMB)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip"])
def test_bomb_is_cut_while_decoding_and_the_good_source_is_served(encoding: str) -> None:
    body = _bomb(encoding)
    assert len(body) < BOMB // 500

    def respond(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        send_body(h, body, headers={"Content-Encoding": encoding})

    bad = RawServer(respond)
    good = site_on("127.0.0.2")
    good.pages["/feed.xml"] = Page(b"<rss><channel><title>fine</title></channel></rss>", "application/rss+xml")
    try:
        run = run_measured("tests.hostile", "fetch", bad.url("/feed.xml"), good.url("/feed.xml"), str(LIMIT),
                           timeout=60)
        assert run.returncode == 0, run.stderr
        result = json.loads(run.stdout)
        assert result["bad"].startswith("too_large:") and f"larger than {LIMIT} bytes" in result["bad"]
        # Memory follows the cap, not the bomb: a child that imports httpx idles near 40 MB.
        assert run.peak_mb < 100, f"{encoding} bomb: peak RSS {run.peak_mb:.0f} MB"
        assert result["good"] == 10 and result["good_slowest_cpu"] < 1.0, result
    finally:
        bad.stop()
        good.stop()


def test_every_advertised_encoding_has_a_bounded_decoder() -> None:
    for name in (n.strip() for n in ACCEPT_ENCODING.split(",")):
        pieces = BoundedDecoder(name).feed(bomb(name, 64 * MIB))
        first = next(pieces)
        assert 0 < len(first) <= MIB, name  # one step hands out a bounded piece


def test_stacked_encodings_and_plain_bodies_decode_whole() -> None:
    import brotli

    text = b"<rss>" + b"a headline and its summary " * 20000 + b"</rss>"
    import gzip

    for enc, wire in (("gzip, br", brotli.compress(gzip.compress(text))), ("identity", text), (None, text)):
        d = BoundedDecoder(enc)
        out = b"".join(p for i in range(0, len(wire), 700) for p in d.feed(wire[i:i + 700]))
        out += b"".join(d.flush())
        assert out == text, enc


def test_a_corrupt_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        list(BoundedDecoder("br").feed(b"this is not brotli at all"))
