"""Benchmark: CPU per article page fetched, ``Fetcher`` against a bare httpx client (issue 15).

    python -m bench.fetch_pages [--pages 300] [--hosts 10] [--runs 3] [--compare DIR] [--tls] [--env dev]

A fast asyncio HTTP server in its own process (``bench.loopback``) serves ``--pages`` article
pages (the real pages of ../shared/data/articles, in turn; ~155 KB each) on ``--hosts`` loopback
addresses, no robots.txt (404). Each scenario runs in a fresh process that fetches every page
twice, 8 at a time as the daemon holds pages (``Pipeline._page_slots``: 4 per extraction worker,
2 workers), with the default limits (per host 2, overall 20): the first pass is untimed (connections,
robots.txt, first-call costs), the second is timed (CPU of the process and wall):

- ``httpx``: a bare ``httpx.AsyncClient`` doing ``client.get(url)`` behind the same per-host and
  overall semaphores: what HTTP alone costs here.
- ``Fetcher.get``: ``monitor.fetch.Fetcher.get`` as the pipeline calls it for a page (SSRF guard
  on, private networks allowed as for loopback, decoded-size limit, Accept header).
- ``page path``: ``Fetcher.allowed`` (robots.txt, cached) then ``Fetcher.get``: what
  ``Pipeline._fetch_and_extract`` does before extraction.

``--tls``: the server speaks HTTPS (a fresh self-signed certificate for 127.0.0.0/8, which every
client trusts), as nearly every news site does; TLS 1.3 on loopback.

``--compare DIR`` adds the two monitor scenarios for another checkout's ``monitor`` (say
``/tmp/before``) in each round, interleaved with this checkout's. Printed: per scenario the median
CPU microseconds per page with min..max over the runs, its ratio to the same round's ``httpx`` run
(median and spread) and wall. The processes run in a production-like venv (``bench.prodenv``)
unless ``--env dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import loopback, prodenv
from bench.loopback import NOT_FOUND, response

ROOT = Path(__file__).resolve().parent.parent
GATE = 8  # pages in hand at once (Pipeline._page_slots with 2 extraction workers)
SCENARIOS = ("httpx", "Fetcher.get", "page path")


def _bodies() -> list[bytes]:
    directory = ROOT.parent / "shared" / "data" / "articles" / "html"
    files = sorted(directory.glob("*.html")) if directory.is_dir() else []
    if not files:  # a synthetic page of the corpus's typical size
        return [b"<html><body>" + b"<p>Some words of an article, in a paragraph.</p>" * 3200 + b"</body></html>"]
    return [f.read_bytes() for f in files]


def serve(port: int, hosts: int, cert: str | None) -> None:
    bodies = _bodies()
    tls = None
    if cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, str(Path(cert).with_name("key.pem")))

    def respond(method: bytes, path: bytes, headers: dict[bytes, bytes]) -> bytes:
        if not path.startswith(b"/a/"):
            return NOT_FOUND
        return response(bodies[int(path[3:]) % len(bodies)])

    loopback.serve(respond, hosts, port, tls=tls)


def _urls(port: int, pages: int, hosts: int, scheme: str) -> list[str]:
    return [f"{scheme}://{loopback.host_address(i % hosts)}:{port}/a/{i}" for i in range(pages)]


async def _run(scenario: str, urls: list[str], cert: str | None) -> dict[str, float]:
    from monitor.config import FetchSettings

    settings = FetchSettings(allow_private_networks=True)
    trust = ssl.create_default_context(cafile=cert) if cert else None
    gate = asyncio.Semaphore(GATE)
    if scenario == "httpx":
        import httpx

        overall = asyncio.Semaphore(settings.concurrency)
        hosts: dict[str, asyncio.Semaphore] = {}
        limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
        client = httpx.AsyncClient(limits=limits, trust_env=False, verify=trust or True)

        async def one(url: str) -> int:
            host = hosts.setdefault(url.split("/")[2], asyncio.Semaphore(settings.per_host))
            async with gate, host, overall:
                return len((await client.get(url)).content)

        close = client.aclose
    else:
        from monitor.fetch import client as fetch_client
        from monitor.fetch.client import Fetcher
        from monitor.util import HTML_ACCEPT

        if trust:
            fetch_client._tls = trust  # the test certificate instead of certifi's CAs
        fetcher = Fetcher(settings, "mailto:bench@example.org")
        robots = scenario == "page path"

        async def one(url: str) -> int:
            async with gate:
                if robots and not await fetcher.allowed(url, True):
                    raise SystemExit(f"{url} disallowed")
                return len((await fetcher.get(url, accept=HTML_ACCEPT, allow_private=True)).content)

        close = fetcher.aclose
    try:
        sizes = await asyncio.gather(*(one(u) for u in urls))  # untimed: connections, robots.txt
        cpu0, t0 = time.process_time(), time.perf_counter()
        again = await asyncio.gather(*(one(u) for u in urls))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await close()
    if again != sizes or min(sizes) < 1000:
        raise SystemExit("the two passes got different pages")
    return {"pages": len(urls), "cpu_us": cpu / len(urls) * 1e6, "wall": wall, "bytes": sum(again) / len(again)}


def child(scenario: str, port: int, pages: int, hosts: int, cert: str | None) -> None:
    from monitor import collector

    collector.freeze()  # as the daemon does after start-up
    urls = _urls(port, pages, hosts, "https" if cert else "http")
    print(json.dumps({"scenario": scenario, **asyncio.run(_run(scenario, urls, cert))}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3, help="rounds; each runs every scenario once, interleaved")
    ap.add_argument("--compare", type=Path, metavar="DIR", help="also run the monitor scenarios with DIR's monitor")
    ap.add_argument("--tls", action="store_true", help="HTTPS (a self-signed certificate the clients trust)")
    ap.add_argument("--env", choices=("prod", "dev"), default="prod")
    ap.add_argument("--cert", help=argparse.SUPPRESS)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.hosts, args.cert)
        return
    if args.child:
        child(args.child, args.port, args.pages, args.hosts, args.cert)
        return

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    venv = tempfile.TemporaryDirectory(prefix="bench-venv-")
    py = str(prodenv.build(Path(venv.name))) if args.env == "prod" else sys.executable
    cert: list[str] = []
    if args.tls:
        from tests.deliver_helpers import self_signed_cert

        cert = ["--cert", str(self_signed_cert(Path(venv.name), [f"127.0.0.{h + 1}" for h in range(args.hosts)])[0])]
    server = subprocess.Popen([sys.executable, "-m", "bench.fetch_pages", "--serve", str(port), "--hosts", str(args.hosts),
                               *cert], stdout=subprocess.PIPE, text=True, env=loopback.child_env(ROOT))
    runs = [(scenario, scenario, ROOT) for scenario in SCENARIOS]
    if args.compare:
        runs += [(scenario, f"{scenario} [{args.compare.name}]", args.compare.resolve()) for scenario in SCENARIOS[1:]]
    results: dict[str, list[dict[str, float]]] = {}
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        for r in range(args.runs):
            # alternate the order each round: neither side always runs first after the server warmed
            for scenario, label, root in runs if r % 2 == 0 else runs[::-1]:
                out = subprocess.run([py, "-m", "bench.fetch_pages", "--child", scenario, "--port", str(port),
                                      "--pages", str(args.pages), "--hosts", str(args.hosts), *cert],
                                     capture_output=True, text=True, env=loopback.child_env(root, ROOT),
                                     cwd=tempfile.gettempdir(), timeout=600, check=False)
                if out.returncode:
                    raise SystemExit(f"{label} failed:\n{out.stderr[-3000:]}")
                results.setdefault(label, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.terminate()
        server.wait()
        venv.cleanup()

    def med(vals: list[float]) -> float:
        return sorted(vals)[len(vals) // 2]

    base = results["httpx"]
    print(f"{args.pages} pages (~{base[0]['bytes'] / 1024:.0f} KB) on {args.hosts} loopback hosts "
          f"({'HTTPS' if args.tls else 'HTTP'}), {GATE} at a time, "
          f"per_host 2, concurrency 20; {args.runs} runs, {args.env} venv; load {os.getloadavg()[0]:.1f} at the end")
    print(f"{'scenario':<26} {'CPU us/page':>12} {'(min-max)':>13} {'CPU/httpx':>10} {'(min-max)':>12} {'wall s':>7}")
    for label, rows in results.items():
        cpu = [r["cpu_us"] for r in rows]
        ratio = [r["cpu_us"] / b["cpu_us"] for r, b in zip(rows, base, strict=True)]
        print(f"{label:<26} {med(cpu):>12.0f} {min(cpu):>6.0f}-{max(cpu):<6.0f} {med(ratio):>9.2f}x "
              f"{min(ratio):>5.2f}-{max(ratio):<5.2f} {med([r['wall'] for r in rows]):>7.2f}")


if __name__ == "__main__":
    main()
