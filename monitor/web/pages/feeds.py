"""Feeds of a rule's matches (Atom, JSON Feed) behind a per-feed secret token: create, revoke, serve."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from monitor.web import feeds
from monitor.web.access import Session
from monitor.web.kit import Denied, back_to, console_of, page, quote, render


@page(write=True)
async def feed_create(request: Request, session: Session) -> Response:
    console = console_of(request)
    rule = request.path_params["name"]
    if rule not in {r.name for r in console.config().rules}:
        raise Denied(404, f"no rule named {rule!r}")
    token = await run_in_threadpool(feeds.create_token, console.engine, rule)
    base = str(request.base_url).rstrip("/")
    return render(request, session, "feed_created.html.j2", rule=rule,
                  atom=f"{base}/feeds/{quote(rule)}/{token}.atom", json=f"{base}/feeds/{quote(rule)}/{token}.json")


@page(write=True)
async def feed_revoke(request: Request, session: Session) -> Response:
    form = await request.form()
    await run_in_threadpool(feeds.revoke, console_of(request).engine, int(request.path_params["token_id"]))
    return back_to(form, "/rules")


async def feed(request: Request) -> Response:
    """The feed itself: no session, the token in the URL is the credential."""
    engine = console_of(request).engine
    rule, token, kind = (request.path_params[k] for k in ("name", "token", "kind"))
    if not await run_in_threadpool(feeds.token_ok, engine, rule, token):
        return PlainTextResponse("no such feed (wrong or revoked token)\n", 404)
    url = str(request.url)
    if kind == "atom":
        body = await run_in_threadpool(feeds.atom, engine, rule, url)
        return Response(body, media_type="application/atom+xml; charset=utf-8",
                        headers={"Referrer-Policy": "no-referrer"})
    body = await run_in_threadpool(feeds.json_feed, engine, rule, url)
    return Response(body, media_type="application/feed+json; charset=utf-8",
                    headers={"Referrer-Policy": "no-referrer"})


ROUTES = [
    Route("/rules/{name}/feeds", feed_create, methods=["POST"]),
    Route("/feed-tokens/{token_id:int}/revoke", feed_revoke, methods=["POST"]),
    Route("/feeds/{name}/{token}.{kind:str}", feed),
]
