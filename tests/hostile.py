"""Hostile peers on loopback for tests and bench/hostile.py: compression bombs, servers that
trickle bytes (HTTP and SMTP), and a way to run a child process and read its own peak RSS.

Kept apart from tests/servers.py (well-behaved peers) so an attack is named where it is used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.harness import ROOT

MIB = 1024 * 1024


# -- bombs -------------------------------------------------------------------------------------
def bomb(encoding: str, decoded: int) -> bytes:
    """``decoded`` zero bytes compressed with ``encoding`` (gzip, deflate, br, zstd), built in
    1 MiB steps so making a 1 GiB bomb does not itself need 1 GiB."""
    chunk = b"\0" * MIB
    steps = max(1, decoded // MIB)
    if encoding in ("gzip", "deflate"):
        c = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        return b"".join(c.compress(chunk) for _ in range(steps)) + c.flush()
    if encoding == "br":
        import brotli

        b = brotli.Compressor(quality=5)
        return b"".join(b.process(chunk) for _ in range(steps)) + b.finish()
    if encoding == "zstd":
        import zstandard

        z = zstandard.ZstdCompressor(level=3).compressobj(size=steps * MIB)
        return b"".join(z.compress(chunk) for _ in range(steps)) + z.flush()
    raise ValueError(encoding)


# -- HTTP answers written by hand (for tests.fetch_helpers.RawServer) -------------------------
Respond = Callable[[BaseHTTPRequestHandler, threading.Event], None]


def send_body(h: BaseHTTPRequestHandler, body: bytes, content_type: str = "application/rss+xml",
              status: int = 200, headers: dict[str, str] | None = None) -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def trickle(body: bytes = b'{"ok": true}', every: float = 0.5, status: int = 200) -> Respond:
    """Headers at once, then one byte of the body every ``every`` seconds: each read is quick,
    the whole answer is not (slowloris from the server side)."""

    def respond(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        for i in range(len(body)):
            if stop.wait(every):
                return
            h.wfile.write(body[i:i + 1])
            h.wfile.flush()

    return respond


# -- an SMTP server that trickles ---------------------------------------------------------------
class TrickleSMTP:
    """Speaks just enough SMTP to look alive, sending every reply one byte every ``every``
    seconds: a client without an overall deadline waits minutes for one message."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.stopping = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.completed = 0  # sessions the client ended with QUIT (and its reply) rather than cut
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _say(self, conn: socket.socket, line: bytes) -> bool:
        for i in range(len(line)):
            if self.stopping.wait(self.every):
                return False
            conn.sendall(line[i:i + 1])
        return True

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(60)
            if not self._say(conn, b"220 slow.example ESMTP\r\n"):
                return
            buf = b""
            while not self.stopping.is_set():
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    verb = line[:4].upper()
                    reply = b"354 go on\r\n" if verb == b"DATA" else b"250 ok\r\n"
                    if verb == b"QUIT":
                        if self._say(conn, b"221 bye\r\n"):
                            self.completed += 1
                        return
                    if not self._say(conn, reply):
                        return

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()


# -- a child process and its own peak memory ----------------------------------------------------
@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's own peak resident set size
    wall: float


_PEAK_REPORTER = """
import atexit, os, runpy, sys
def _report():
    with open("/proc/self/status") as f:
        peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    with open(os.environ["HOSTILE_PEAK_FILE"], "w") as out:
        out.write(peak)
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def run_measured(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 cwd: Path | None = None) -> Measured:
    """Run ``python -m module args...`` and return its output with its own peak RSS.

    The child reads its VmHWM itself at exit: ``ru_maxrss`` of a child started by a large
    process (pytest after building a bomb) counts the parent's memory too, since Linux records
    the high-water mark of the address space it replaced at exec.
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HOSTILE_PEAK_FILE": str(peak_file), **(env or {})}
        started = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-c", _PEAK_REPORTER, module, *args], capture_output=True,
                                  text=True, env=full_env, cwd=cwd, timeout=timeout)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out, err, code = _text(exc.stdout), _text(exc.stderr) + f"\n[killed after {timeout:g}s]", -9
        wall = time.monotonic() - started
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
        return Measured(code, out, err, peak, wall)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def run_monitor_measured(config: Path, *args: str, env: dict[str, str] | None = None,
                         timeout: float = 120) -> Measured:
    """The real CLI (``monitor --config ... args``) in a child, with its peak RSS."""
    return run_measured("monitor", "--config", str(config), *args, env=env, timeout=timeout,
                        cwd=config.parent)


__all__ = ["MIB", "Measured", "TrickleSMTP", "bomb", "run_monitor_measured",
           "run_measured", "send_body", "trickle"]


# -- child: fetch a hostile URL beside a good one ------------------------------------------------
async def _fetch_pair(bad: str, good: str, max_bytes: int) -> dict[str, Any]:
    """Fetch ``bad`` and, meanwhile, ``good`` ten times in a row; report what each got, and the
    most CPU seconds (this process's) any good fetch spanned: a bad body decoded on the event
    loop without yielding adds all of its decoding to the good fetch waiting meanwhile, while a
    loaded machine adds only waiting (its wall clock, measured before, stretched with load)."""
    import asyncio

    from monitor.config import FetchSettings
    from monitor.fetch import Fetcher, FetchError

    settings = FetchSettings(allow_private_networks=True, max_bytes=max_bytes, timeout=30.0)
    result: dict[str, Any] = {"good": 0, "good_slowest_cpu": 0.0}
    async with Fetcher(settings) as f:
        async def bad_one() -> None:
            t0 = time.monotonic()
            try:
                resp = await f.get(bad)
                result["bad"] = f"ok {len(resp.content)} bytes"
            except FetchError as exc:
                result["bad"] = f"{exc.kind}: {exc}"
            result["bad_wall"] = time.monotonic() - t0

        async def good_ones() -> None:
            for _ in range(10):
                t0 = time.process_time()
                resp = await f.get(good)
                result["good"] += resp.status == 200
                result["good_slowest_cpu"] = max(result["good_slowest_cpu"], time.process_time() - t0)
                await asyncio.sleep(0.02)

        await asyncio.gather(bad_one(), good_ones())
    return result


if __name__ == "__main__":
    import asyncio
    import json

    if sys.argv[1] == "fetch":
        print(json.dumps(asyncio.run(_fetch_pair(sys.argv[2], sys.argv[3], int(sys.argv[4])))))
