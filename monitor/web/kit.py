"""What every console page shares: the host's ``Console``, the Jinja2 templates, the session
cookie, the ``page`` wrapper (login, role, CSRF) and small parsing helpers.

Each page lives in its own module under ``monitor/web/pages`` and reaches the console through
``kit(request)`` (the app carries one ``Kit`` in its state), so ``app.py`` only assembles routes.

Every request gets a server-side session (a random HttpOnly, SameSite=Strict cookie) that holds
its CSRF token; every POST must carry that token. Pages need a role (viewer or editor), writes
need editor. With no password set the console is open (loopback only, checked at start).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as _urlquote
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.config import Config
from monitor.util import aware, human_when
from monitor.web.access import LoginLimiter, Passwords, Session, Sessions, csrf_ok

if TYPE_CHECKING:
    from monitor.match import RuleSet

COOKIE = "monitor_session"
SAFE_BACK = re.compile(r"^/[^/\\]")
MASK = "•••"  # what a page shows in place of a secret
ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found"}
# The section (main navigation entry) a page belongs to, by its path's first segment.
_SECTIONS = {"rules": "/rules", "feeds": "/rules", "stories": "/stories", "sources": "/sources"}

Endpoint = Callable[[Request], Awaitable[Response]]
PageFn = Callable[[Request, Session], Awaitable[Response]]


@dataclass
class Console:
    """What the console needs from its host (the daemon, or ``monitor web`` on its own)."""

    engine: Engine
    config: Callable[[], Config]
    reload: Callable[[], tuple[bool, str]]  # apply the saved config.toml to the running daemon
    ready: Callable[[], tuple[bool, str]] | None = None
    passwords: Passwords = field(default_factory=Passwords)
    set_config: Callable[[Config], None] | None = None  # standalone: remember the saved config
    sessions: Sessions = field(default_factory=Sessions)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    _rules: tuple[Config, RuleSet] | None = field(default=None, init=False, repr=False)
    _rules_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def ruleset(self) -> RuleSet:
        """The configured rules, compiled once per config (a saved or reloaded config is a new
        object): an article page explains every rule, and compiling 10,000 of them took ~1.5 s
        per view. Blocks (call it from a worker thread); concurrent first views compile once."""
        from monitor.match import rule_set

        cfg = self.config()
        with self._rules_lock:
            if self._rules is None or self._rules[0] is not cfg:
                self._rules = (cfg, rule_set(cfg))  # the daemon's own: examples calibrate about()
            return self._rules[1]


@dataclass
class Kit:
    """One per app: the host's console and the templates built for it."""

    console: Console
    env: Environment


class Denied(Exception):
    """Stops a page with an error page of this status (404, 403, 400)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def kit(request: Request) -> Kit:
    found: Kit = request.app.state.kit
    return found


def console_of(request: Request) -> Console:
    return kit(request).console


def mark(text_: str, spans: Any) -> Markup:
    """Text with the given (start, end) spans wrapped in <mark>, everything else escaped."""
    out, pos = [], 0
    for a, b in sorted((int(x[0]), int(x[1])) for x in spans or ()):
        if a < pos:
            continue
        out.append(escape(text_[pos:a]) + Markup("<mark>") + escape(text_[a:b]) + Markup("</mark>"))
        pos = b
    out.append(escape(text_[pos:]))
    return Markup("").join(out)


def paragraphs(text_: str, spans: Any = ()) -> Markup:
    """Body text as paragraphs, with highlights (spans are offsets into the whole text)."""
    marked = str(mark(text_, spans))
    return Markup("".join(f"<p>{p}</p>" for p in marked.split("\n") if p.strip()))


def masked(text_: str, secrets: Iterable[str]) -> str:
    """``text_`` with every secret replaced by ``MASK``: what a page shows of it."""
    for s in secrets:
        if s and s in text_:
            text_ = text_.replace(s, MASK)
    return text_


def build_templates(secrets: Callable[[], tuple[str, ...]]) -> Environment:
    def finalize(value: Any) -> Any:
        # No secret of the config (Config.secrets) is ever rendered, whatever page shows it.
        if isinstance(value, str) and not isinstance(value, Markup):
            return masked(value, secrets())
        return value

    env = Environment(loader=PackageLoader("monitor.web", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      finalize=finalize, trim_blocks=True, lstrip_blocks=True)
    # Times in the words the CLI's listings use (one function: "2 h ago", "in 5 min", the date
    # beyond a week); a time that never happened (a source not polled yet) reads "never".
    env.filters["when"] = partial(human_when, none="never")
    env.filters["mark"] = mark
    env.filters["paragraphs"] = paragraphs
    # The exact moment: a <time> element's datetime ("2025-09-24T07:15Z") and its tooltip
    # ("2025-09-24 07:15 UTC"), beside the words of ``when``.
    env.filters["isotime"] = lambda when: f"{aware(when).astimezone(UTC):%Y-%m-%dT%H:%MZ}"
    env.filters["utc"] = lambda when: f"{aware(when).astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return env


def session_of(request: Request) -> tuple[Session, bool]:
    """The request's session, or a new one (then ``True``: the response must set the cookie)."""
    console = console_of(request)
    s = console.sessions.get(request.cookies.get(COOKIE))
    if s is not None:
        return s, False
    return console.sessions.new(None if console.passwords.required else "editor"), True


def with_cookie(request: Request, response: Response, session: Session, fresh: bool) -> Response:
    """The session cookie (when new) and the security headers every console answer carries."""
    if fresh:
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, session: Session, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    k = kit(request)
    cfg = k.console.config()
    html = k.env.get_template(template).render(
        request=request, session=session, csrf=session.csrf, role=session.role,
        editor=session.role == "editor", open_console=not k.console.passwords.required,
        rule_names=[r.name for r in cfg.rules], path=request.url.path, **ctx)
    return HTMLResponse(html, status_code=status)


def page(role: str = "viewer", write: bool = False) -> Callable[[PageFn], Endpoint]:
    """Wraps an endpoint: session, login, role and (for POST) CSRF checks."""

    def wrap(fn: PageFn) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            session, fresh = session_of(request)
            try:
                if request.method == "POST":
                    form = await request.form()
                    token = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
                    if not csrf_ok(session, token):
                        raise Denied(403, "The form has expired or did not come from this console "
                                          "(missing CSRF token). Reload the page and try again.")
                if role and session.role is None:
                    return with_cookie(request, RedirectResponse(f"/login?next={quote(back_url(request))}", 303),
                                       session, fresh)
                if (role == "editor" or write) and session.role != "editor":
                    raise Denied(403, "Only an editor can do this; you are logged in as a viewer.")
                response = await fn(request, session)
            except Denied as exc:
                response = render(request, session, "error.html.j2", status=exc.status, message=exc.message,
                                  title=ERROR_TITLES.get(exc.status, "Error"), back=error_back(request))
            # The server's own time (database, evaluation, rendering), for browsers' dev tools
            # and bench/web_pages.py.
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return with_cookie(request, response, session, fresh)
        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint
    return wrap


def back_to(request_form: Any, default: str) -> RedirectResponse:
    """Back to the page the form came from (a local path only), else to ``default``."""
    back = str(request_form.get("back") or "")
    return RedirectResponse(back if SAFE_BACK.match(back) else default, 303)


def back_url(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def error_back(request: Request) -> str:
    """Where an error page's "Back" goes: the console page the browser came from (its Referer,
    same origin only; the console sends Referrer-Policy: same-origin), else the section the
    failed page belongs to. A plain link: the console's CSP (script-src 'self') blocks a
    ``javascript:history.back()`` link, which did nothing."""
    ref = urlsplit(request.headers.get("referer", ""))
    if (ref.scheme, ref.netloc) == (request.url.scheme, request.url.netloc) and SAFE_BACK.match(ref.path):
        back = ref.path + (f"?{ref.query}" if ref.query else "")
        if request.method != "GET" or back != back_url(request):  # a failed GET: not itself again
            return back
    return _SECTIONS.get(request.url.path.split("/")[1], "/matches")


def quote(s: str) -> str:
    return _urlquote(s, safe="/")


def to_int(v: str | None) -> int | None:
    try:
        return int(v) if v else None
    except ValueError:
        return None


def to_date(v: str | None) -> date | None:
    try:
        return date.fromisoformat(v) if v else None
    except ValueError:
        return None


def window_days(v: str | None) -> int:
    """A preview/backtest window in days: 30 by default, 1..90."""
    n = to_int(v) or 30
    return min(max(n, 1), 90)
