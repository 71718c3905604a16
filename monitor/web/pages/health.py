"""/healthz, /readyz and /metrics: the daemon's probes, served beside the console (open, no session)."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from monitor.web.kit import console_of


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    console = console_of(request)

    def check() -> tuple[bool, str]:
        if console.ready is not None:
            return console.ready()
        with console.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True, "ready: console only"
    try:
        ok, reason = await run_in_threadpool(check)
    except Exception as exc:
        ok, reason = False, f"{type(exc).__name__}: {exc}"
    return PlainTextResponse(f"{reason}\n", 200 if ok else 503)


async def metrics_(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from monitor.ops import metrics

    try:
        body = await run_in_threadpool(metrics.render)
    except Exception as exc:
        return PlainTextResponse(f"metrics unavailable: {exc}\n", 503)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_)]
