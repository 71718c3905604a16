"""Logging in and out: a new session id at login (no fixation), the login rate limit."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.web.access import Session, csrf_ok
from monitor.web.kit import COOKIE, SAFE_BACK, console_of, page, render, session_of, with_cookie


@page(role="")
async def login_form(request: Request, session: Session) -> Response:
    return render(request, session, "login.html.j2", next=request.query_params.get("next", "/"), error=None)


async def login(request: Request) -> Response:
    console = console_of(request)
    session, fresh = session_of(request)
    form = await request.form()
    nxt = str(form.get("next") or "/")
    nxt = nxt if SAFE_BACK.match(nxt) or nxt == "/" else "/"
    if not csrf_ok(session, str(form.get("csrf") or "")):
        resp: Response = render(request, session, "login.html.j2", status=403, next=nxt,
                                error="The form expired; please try again.")
        return with_cookie(request, resp, session, fresh)
    client = request.client.host if request.client else "?"
    wait = console.limiter.retry_after(client)
    if wait > 0:
        resp = render(request, session, "login.html.j2", status=429, next=nxt,
                      error=f"Too many failed attempts; try again in {int(wait) + 1} s.")
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return with_cookie(request, resp, session, fresh)
    role = await run_in_threadpool(console.passwords.role_for, str(form.get("password") or ""))
    if role is None:
        console.limiter.failed(client)
        resp = render(request, session, "login.html.j2", status=401, next=nxt, error="Wrong password.")
        return with_cookie(request, resp, session, fresh)
    console.sessions.drop(session.id)  # a new id at login: no session fixation
    new = console.sessions.new(role, persist=True)  # kept in the database: a restart logs nobody out
    return with_cookie(request, RedirectResponse(nxt, 303), new, True)


@page(role="")
async def logout(request: Request, session: Session) -> Response:
    console_of(request).sessions.drop(session.id)
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


ROUTES = [
    Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
