"""What the benches that run the daemon against loopback feeds share: a fast HTTP server over
many loopback addresses, and the daemon's config around the feeds.

The server is a bare asyncio protocol (no framework) so that it costs the measured client as
little as possible; it runs in its own process (``serve`` blocks). Each address 127.0.0.N is a
separate host for the per-host connection limit, as real outlets are.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Iterable
from typing import Any

# (method, path, headers with lower-case names) -> the whole response, status line to body
Responder = Callable[[bytes, bytes, dict[bytes, bytes]], bytes]


def host_address(i: int) -> str:
    """The loopback address of host ``i`` (0-based): 127.0.0.1, 127.0.0.2, ..."""
    return f"127.0.0.{i + 1}"


def response(body: bytes, content_type: bytes = b"text/html; charset=utf-8", status: bytes = b"200 OK",
             headers: bytes = b"") -> bytes:
    """An HTTP/1.1 response with its Content-Length; ``headers``: extra lines, each ending in CRLF."""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type + b"\r\n" + headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def serve(respond: Responder, hosts: int, port: int, ready: str = "ready", tls: ssl.SSLContext | None = None) -> None:
    """Answer HTTP/1.1 (keep-alive, request bodies read by Content-Length) on ``port`` of the
    first ``hosts`` loopback addresses until the process is stopped, over TLS with ``tls``;
    prints ``ready`` once listening (the parent waits for that line)."""

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: Any = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                head, rest = self.buf.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0") or 0)
                if len(rest) < length:
                    return  # the body has not all arrived yet
                self.buf = rest[length:]
                method, path = lines[0].split(b" ", 2)[:2]
                self.t.write(respond(method, path, headers))

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(
            Http, [host_address(h) for h in range(hosts)], port, backlog=1024, ssl=tls)
        print(ready, flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def child_env(*paths: object) -> dict[str, str]:
    """The environment of a measured child process: ``paths`` first on its ``PYTHONPATH``, and
    bytecode caching on. ``pip install`` compiles a package's bytecode, and the plain scripts'
    libraries have theirs; with PYTHONDONTWRITEBYTECODE set (as on this machine) every run of a
    checkout compiled monitor's source again (~0.25 s of the main process's CPU in bench.ingest),
    which is not what a user's daemon spends."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(
        filter(None, [*map(str, paths), os.environ.get("PYTHONPATH")])))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one running process so far, from /proc (its children, waited
    for or not, are not counted: the benches sum a process tree themselves)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def daemon_config(database: str, feeds: Iterable[tuple[str, str]], *, interval: str, rule: tuple[str, str],
                  hook: str, monitor: str = "", fetch: str = "", source: str = "", extra: str = "") -> str:
    """A daemon config polling ``feeds`` ((name, url) pairs) from loopback, with one rule
    (name, query) that alerts a webhook at ``hook``. ``monitor``, ``fetch`` and ``source``: extra
    lines for those sections (``source`` for every source); ``extra``: more sections."""
    sources = "".join(f'[[source]]\nname = "{name}"\nurl = "{url}"\ninterval = "{interval}"\n{source}\n'
                      for name, url in feeds)
    return f"""[monitor]
database = "{database}"
{monitor}
[fetch]
allow_private_networks = true
{fetch}
{extra}
{sources}
[[rule]]
name = "{rule[0]}"
query = '{rule[1]}'
channels = ["hook"]

[[channel]]
name = "hook"
type = "webhook"
url = "{hook}"
"""
