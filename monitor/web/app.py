"""The console's routes: server-rendered pages (Jinja2), forms that work without JavaScript,
and a few HTML fragments the small vendored script swaps in (live preview, explanation).

Every request gets a server-side session (a random HttpOnly, SameSite=Strict cookie) that holds
its CSRF token; every POST must carry that token. Pages need a role (viewer or editor), writes
need editor. With no password set the console is open (loopback only, checked at start).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.config import Config
from monitor.web import data, feeds, svg
from monitor.web import rules as rules_mod
from monitor.web.access import LoginLimiter, Passwords, Session, Sessions, csrf_ok

COOKIE = "monitor_session"
STATIC = Path(__file__).resolve().parent / "static"


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


class Denied(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    """'3 min ago', 'in 2 h', 'yesterday': times as a person says them."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    secs = (now - value).total_seconds()
    future, secs = secs < 0, abs(secs)
    if secs < 45:
        return "now" if secs < 5 else ("in a few seconds" if future else "a few seconds ago")
    for unit, size in (("min", 60), ("h", 3600), ("days", 86400)):
        nxt = {"min": 3600, "h": 86400, "days": 10**12}[unit]
        if secs < nxt:
            n = round(secs / size)
            label = f"{n} {unit if unit != 'days' or n != 1 else 'day'}"
            return f"in {label}" if future else f"{label} ago"
    return value.strftime("%Y-%m-%d")  # pragma: no cover


def _mark(text_: str, spans: Any) -> Markup:
    """Text with the given (start, end) spans wrapped in <mark>, everything else escaped."""
    out, pos = [], 0
    for a, b in sorted((int(x[0]), int(x[1])) for x in spans or ()):
        if a < pos:
            continue
        out.append(escape(text_[pos:a]) + Markup("<mark>") + escape(text_[a:b]) + Markup("</mark>"))
        pos = b
    out.append(escape(text_[pos:]))
    return Markup("").join(out)


def _paragraphs(text_: str, spans: Any = ()) -> Markup:
    """Body text as paragraphs, with highlights (spans are offsets into the whole text)."""
    marked = str(_mark(text_, spans))
    return Markup("".join(f"<p>{p}</p>" for p in marked.split("\n") if p.strip()))


def build_templates(secrets: Callable[[], tuple[str, ...]]) -> Environment:
    def finalize(value: Any) -> Any:
        # No value from the config's ${ENV} references is ever rendered, whatever page shows it.
        if isinstance(value, str) and not isinstance(value, Markup):
            for s in secrets():
                if s and s in value:
                    value = value.replace(s, "•••")
        return value

    env = Environment(loader=PackageLoader("monitor.web", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      finalize=finalize, trim_blocks=True, lstrip_blocks=True)
    env.filters["ago"] = _ago
    env.filters["mark"] = _mark
    env.filters["paragraphs"] = _paragraphs
    return env


_SAFE_BACK = re.compile(r"^/[^/\\]")


def create_app(console: Console) -> Starlette:
    env = build_templates(lambda: console.config().secrets)

    def session_of(request: Request) -> tuple[Session, bool]:
        s = console.sessions.get(request.cookies.get(COOKIE))
        if s is not None:
            return s, False
        return console.sessions.new(None if console.passwords.required else "editor"), True

    def with_cookie(request: Request, response: Response, session: Session, fresh: bool) -> Response:
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
        cfg = console.config()
        html = env.get_template(template).render(
            request=request, session=session, csrf=session.csrf, role=session.role,
            editor=session.role == "editor", open_console=not console.passwords.required,
            rule_names=[r.name for r in cfg.rules], path=request.url.path, **ctx)
        return HTMLResponse(html, status_code=status)

    def page(role: str = "viewer", write: bool = False
             ) -> Callable[[Callable[..., Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
        """Wraps an endpoint: session, login, role and (for POST) CSRF checks."""

        def wrap(fn: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
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
                        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                        return with_cookie(request, RedirectResponse(f"/login?next={_quote(back)}", 303),
                                           session, fresh)
                    if (role == "editor" or write) and session.role != "editor":
                        raise Denied(403, "Only an editor can do this; you are logged in as a viewer.")
                    response = await fn(request, session)
                except Denied as exc:
                    response = render(request, session, "error.html.j2", status=exc.status, message=exc.message)
                # The server's own time (database, evaluation, rendering), for browsers' dev tools
                # and bench/web_pages.py.
                response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                return with_cookie(request, response, session, fresh)
            return endpoint
        return wrap

    def back_to(request_form: Any, default: str) -> RedirectResponse:
        back = str(request_form.get("back") or "")
        return RedirectResponse(back if _SAFE_BACK.match(back) else default, 303)

    # -- access --------------------------------------------------------------------------------
    @page(role="")
    async def login_form(request: Request, session: Session) -> Response:
        return render(request, session, "login.html.j2", next=request.query_params.get("next", "/"), error=None)

    async def login(request: Request) -> Response:
        session, fresh = session_of(request)
        form = await request.form()
        nxt = str(form.get("next") or "/")
        nxt = nxt if _SAFE_BACK.match(nxt) or nxt == "/" else "/"
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
        new = console.sessions.new(role)
        return with_cookie(request, RedirectResponse(nxt, 303), new, True)

    @page(role="")
    async def logout(request: Request, session: Session) -> Response:
        console.sessions.drop(session.id)
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- matches -------------------------------------------------------------------------------
    @page()
    async def matches(request: Request, session: Session) -> Response:
        qp = request.query_params
        f = data.MatchFilters(rule=qp.get("rule", ""), source=qp.get("source", ""),
                              language=qp.get("language", ""), story=_int(qp.get("story")),
                              since=_date(qp.get("since")), until=_date(qp.get("until")),
                              page=_int(qp.get("page")) or 1)
        views, more = await run_in_threadpool(data.list_matches, console.engine, f)
        choices = await run_in_threadpool(data.filter_choices, console.engine)
        return render(request, session, "matches.html.j2", matches=views, more=more, f=f, choices=choices,
                      back=request.url.path + (f"?{request.url.query}" if request.url.query else ""))

    @page(write=True)
    async def feedback(request: Request, session: Session) -> Response:
        from monitor.alerts.feedback import record

        form = await request.form()
        kind = str(form.get("kind") or "")
        mid = int(request.path_params["match_id"])

        def work() -> bool:
            ctx = data.match_context(console.engine, mid)
            if ctx is None:
                return False
            m, a = ctx
            from monitor.store.db import session_scope

            with session_scope(console.engine) as s:
                record(s, m.rule, kind, match_id=m.id if kind == "wrong" else None,
                       story_id=a.story_id if kind == "mute_story" else None,
                       source_id=a.source_id if kind == "mute_source" else None)
            return True

        if kind not in ("wrong", "mute_story", "mute_source"):
            raise Denied(400, f"unknown feedback {kind!r}")
        if not await run_in_threadpool(work):
            raise Denied(404, f"no match {mid}")
        return back_to(form, f"/matches#m{mid}")

    @page(write=True)
    async def undo_feedback(request: Request, session: Session) -> Response:
        from monitor.alerts.feedback import undo
        from monitor.store.db import session_scope

        form = await request.form()
        fid = int(request.path_params["feedback_id"])

        def work() -> None:
            with session_scope(console.engine) as s:
                undo(s, fid)
        await run_in_threadpool(work)
        return back_to(form, "/rules")

    @page(write=True)
    async def retry(request: Request, session: Session) -> Response:
        form = await request.form()
        await run_in_threadpool(data.retry_delivery, console.engine, int(request.path_params["delivery_id"]))
        return back_to(form, "/matches")

    # -- rules ---------------------------------------------------------------------------------
    @page()
    async def rules_list(request: Request, session: Session) -> Response:
        from monitor.alerts.feedback import precision
        from monitor.store.db import session_scope

        cfg = console.config()

        def work() -> list[tuple[Any, Any]]:
            with session_scope(console.engine) as s:
                return [(r, precision(s, r.name)) for r in cfg.rules]
        return render(request, session, "rules.html.j2", rules=await run_in_threadpool(work))

    async def _rule_page(request: Request, session: Session, name: str, query: str, channels: list[str],
                         original: str, days: int, message: str | None = None,
                         problems: list[str] | None = None, status: int = 200) -> Response:
        from monitor.alerts.feedback import precision
        from monitor.store.db import session_scope

        cfg = console.config()
        pv = await run_in_threadpool(rules_mod.preview, console.engine, cfg, query, days)

        def extra() -> tuple[Any, Any, Any]:
            with session_scope(console.engine) as s:
                prec = precision(s, original) if original else None
            return prec, data.mutes(console.engine, original), feeds.tokens(console.engine, original)
        prec, mutes, tokens = await run_in_threadpool(extra) if original else (None, [], [])
        return render(request, session, "rule.html.j2", status=status, name=name, query=query, original=original,
                      channels=channels, all_channels=[c.name for c in cfg.channels], days=days, pv=pv,
                      chart=Markup(svg.day_bars(pv.per_day, f"matches per day, last {days} days")),
                      message=message, problems=problems or [], precision=prec, mutes=mutes, tokens=tokens,
                      new_token=None)

    @page()
    async def rule_page(request: Request, session: Session) -> Response:
        name = request.path_params["name"]
        rule = next((r for r in console.config().rules if r.name == name), None)
        if rule is None:
            raise Denied(404, f"no rule named {name!r} in the config")
        days = _days(request.query_params.get("days"))
        return await _rule_page(request, session, rule.name, rule.query, list(rule.channels), rule.name, days)

    @page()
    async def rule_new(request: Request, session: Session) -> Response:
        return await _rule_page(request, session, "", request.query_params.get("query", ""),
                                [], "", _days(request.query_params.get("days")))

    @page()
    async def rule_preview(request: Request, session: Session) -> Response:
        qp = request.query_params
        days = _days(qp.get("days"))
        pv = await run_in_threadpool(rules_mod.preview, console.engine, console.config(), qp.get("query", ""), days)
        return render(request, session, "preview.html.j2", pv=pv, days=days,
                      chart=Markup(svg.day_bars(pv.per_day, f"matches per day, last {days} days")))

    @page()
    async def rule_explain(request: Request, session: Session) -> Response:
        qp = request.query_params
        try:
            art, clauses, m = await run_in_threadpool(rules_mod.explain_article, console.engine, console.config(),
                                                      qp.get("query", ""), _int(qp.get("article")) or 0)
        except Exception as exc:  # a query being typed: its syntax error shows in the preview
            raise Denied(400, f"cannot explain: {exc}") from None
        if art is None:
            raise Denied(404, "no such article")
        return render(request, session, "explain.html.j2", article=art, clauses=clauses, m=m)

    @page(write=True)
    async def rule_save(request: Request, session: Session) -> Response:
        form = await request.form()
        name = str(form.get("name") or "").strip()
        query = str(form.get("query") or "").strip()
        original = str(form.get("original") or "")
        channels = [str(c) for c in form.getlist("channels")]
        days = _days(str(form.get("days") or ""))
        cfg = console.config()
        if not re.match(r"^[\w.-]{1,100}$", name):
            return await _rule_page(request, session, name, query, channels, original, days, status=400,
                                    problems=["A rule's name is 1-100 letters, digits, '-', '_' or '.'."])
        try:
            new_cfg = await run_in_threadpool(rules_mod.save_rule, cfg.path, name, query, channels, original or None)
        except rules_mod.SaveError as exc:
            return await _rule_page(request, session, name, query, channels, original, days, status=400,
                                    problems=exc.problems)
        if console.set_config is not None:
            console.set_config(new_cfg)
        ok, how = await run_in_threadpool(console.reload)
        msg = f"Saved to {cfg.path.name}. " + how
        return await _rule_page(request, session, name, query, channels, name, days, message=msg)

    @page(write=True)
    async def feed_create(request: Request, session: Session) -> Response:
        rule = request.path_params["name"]
        if rule not in {r.name for r in console.config().rules}:
            raise Denied(404, f"no rule named {rule!r}")
        token = await run_in_threadpool(feeds.create_token, console.engine, rule)
        base = str(request.base_url).rstrip("/")
        return render(request, session, "feed_created.html.j2", rule=rule,
                      atom=f"{base}/feeds/{_quote(rule)}/{token}.atom", json=f"{base}/feeds/{_quote(rule)}/{token}.json")

    @page(write=True)
    async def feed_revoke(request: Request, session: Session) -> Response:
        form = await request.form()
        await run_in_threadpool(feeds.revoke, console.engine, int(request.path_params["token_id"]))
        return back_to(form, "/rules")

    async def feed(request: Request) -> Response:
        rule, token, kind = (request.path_params[k] for k in ("name", "token", "kind"))
        if not await run_in_threadpool(feeds.token_ok, console.engine, rule, token):
            return PlainTextResponse("no such feed (wrong or revoked token)\n", 404)
        url = str(request.url)
        if kind == "atom":
            body = await run_in_threadpool(feeds.atom, console.engine, rule, url)
            return Response(body, media_type="application/atom+xml; charset=utf-8",
                            headers={"Referrer-Policy": "no-referrer"})
        body = await run_in_threadpool(feeds.json_feed, console.engine, rule, url)
        return Response(body, media_type="application/feed+json; charset=utf-8",
                        headers={"Referrer-Policy": "no-referrer"})

    # -- stories and articles ------------------------------------------------------------------
    @page()
    async def stories(request: Request, session: Session) -> Response:
        pg = _int(request.query_params.get("page")) or 1
        min_articles = _int(request.query_params.get("min")) or 1
        views, more = await run_in_threadpool(data.list_stories, console.engine, pg, min_articles)
        timelines = {v.id: Markup(svg.timeline([(a.seen, a.outlet) for a in v.articles],
                                               f"{len(v.articles)} articles over time")) for v in views}
        return render(request, session, "stories.html.j2", stories=views, more=more, page_no=pg,
                      min_articles=min_articles, timelines=timelines)

    @page()
    async def story_page(request: Request, session: Session) -> Response:
        v = await run_in_threadpool(data.story, console.engine, int(request.path_params["story_id"]))
        if v is None:
            raise Denied(404, "no such story")
        return render(request, session, "story.html.j2", story=v,
                      timeline=Markup(svg.timeline([(a.seen, a.outlet) for a in v.articles], "articles over time")))

    @page()
    async def article_page(request: Request, session: Session) -> Response:
        from monitor.match import RuleSet
        from monitor.match.evaluate import DocIndex, explain

        aid = int(request.path_params["article_id"])
        found = await run_in_threadpool(data.article, console.engine, aid)
        if found is None:
            raise Denied(404, "no such article")
        art, source = found
        cfg = console.config()

        def work() -> tuple[list[dict[str, Any]], list[tuple[int, int]], list[tuple[int, int]]]:
            from monitor.store.db import session_scope

            rs = RuleSet([(r.name, r.query) for r in cfg.rules], {e.name: e for e in cfg.entities})
            with session_scope(console.engine) as s:
                vector = rules_mod.vectors(s, [aid]).get(aid) if rs.uses_about else None
            doc = rules_mod.document(art, source, vector)
            ix = DocIndex(doc)
            out = []
            title_spans: list[tuple[int, int]] = []
            body_spans: list[tuple[int, int]] = []
            matched = {m.rule: m for m in rs.match(doc)}
            for r in rs.rules:
                m = matched.get(r.name)
                if m:
                    for h in m.hits:
                        (title_spans if h.field == "title" else body_spans).append((h.start, h.end))
                out.append({"name": r.name, "matched": m is not None, "match": m,
                            "clauses": [rules_mod.parse_clause(line) for line in explain(r.tree, ix)]})
            return out, title_spans, body_spans
        results, tspans, bspans = await run_in_threadpool(work)
        return render(request, session, "article.html.j2", article=art, source=source, results=results,
                      title_spans=tspans, body_spans=bspans)

    # -- sources -------------------------------------------------------------------------------
    @page()
    async def sources(request: Request, session: Session) -> Response:
        cfg = console.config()
        views = await run_in_threadpool(data.list_sources, console.engine, [s.name for s in cfg.sources])
        sparks = {v.name: Markup(svg.sparkline(v.per_day, f"{v.name}: articles per day, last 14 days"))
                  for v in views}
        return render(request, session, "sources.html.j2", sources=views, sparks=sparks, preview=None,
                      url=request.query_params.get("url", ""), error=None, message=request.query_params.get("msg"))

    @page(write=True)
    async def source_reset(request: Request, session: Session) -> Response:
        form = await request.form()
        await run_in_threadpool(data.reset_source, console.engine, request.path_params["name"])
        return back_to(form, "/sources")

    @page(write=True)
    async def source_preview(request: Request, session: Session) -> Response:
        from monitor.fetch import Fetcher, FetchError
        from monitor.sources.discover import describe, unique_names

        form = await request.form()
        url = str(form.get("url") or "").strip()
        cfg = console.config()
        views = await run_in_threadpool(data.list_sources, console.engine, [s.name for s in cfg.sources])
        sparks = {v.name: Markup(svg.sparkline(v.per_day, f"{v.name}: articles per day")) for v in views}
        try:
            async with Fetcher(cfg.fetch, cfg.monitor.contact) as fetcher:
                entry = await asyncio.wait_for(describe(fetcher, url), 60)
            unique_names([entry], {s.name for s in cfg.sources})
            if any(s.url == entry.url for s in cfg.sources):
                entry.comments.append("note: the config already has a source with this URL")
            preview, error = entry.toml(), None
        except (FetchError, ValueError, TimeoutError) as exc:
            preview, error = None, f"cannot add {url}: {exc}"
        return render(request, session, "sources.html.j2", sources=views, sparks=sparks, preview=preview,
                      url=url, error=error, message=None)

    @page(write=True)
    async def source_add(request: Request, session: Session) -> Response:
        form = await request.form()
        entry = str(form.get("entry") or "")
        cfg = console.config()
        try:
            new_cfg = await run_in_threadpool(append_to_config, cfg.path, entry)
        except rules_mod.SaveError as exc:
            raise Denied(400, "Not added: " + "; ".join(exc.problems)) from None
        if console.set_config is not None:
            console.set_config(new_cfg)
        _ok, how = await run_in_threadpool(console.reload)
        return RedirectResponse("/sources?msg=" + _quote("Source added. " + how), 303)

    @page()
    async def opml_export(request: Request, session: Session) -> Response:
        from xml.sax.saxutils import quoteattr

        outlines = "".join(f"<outline type=\"rss\" text={quoteattr(s.name)} title={quoteattr(s.name)} "
                           f"xmlUrl={quoteattr(s.url)}/>" for s in console.config().sources if s.type == "feed")
        body = ('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"><head><title>monitor sources</title>'
                f"</head><body>{outlines}</body></opml>\n")
        return Response(body, media_type="text/x-opml; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="monitor-sources.opml"'})

    @page(write=True)
    async def opml_import(request: Request, session: Session) -> Response:
        from monitor.sources.discover import opml_entries, unique_names

        form = await request.form()
        upload: Any = form.get("opml")
        if upload is None or not hasattr(upload, "read"):
            raise Denied(400, "choose an OPML file")
        content = await upload.read()
        cfg = console.config()
        try:
            entries = opml_entries(content)
        except ValueError as exc:
            raise Denied(400, f"{upload.filename}: {exc}") from None
        known = {s.url for s in cfg.sources}
        new = unique_names([e for e in entries if e.url not in known], {s.name for s in cfg.sources})
        if new:
            try:
                new_cfg = await run_in_threadpool(append_to_config, cfg.path, "\n".join(e.toml() for e in new))
            except rules_mod.SaveError as exc:
                raise Denied(400, "Not imported: " + "; ".join(exc.problems)) from None
            if console.set_config is not None:
                console.set_config(new_cfg)
            _ok, how = await run_in_threadpool(console.reload)
        else:
            how = ""
        msg = f"{len(new)} sources imported, {len(entries) - len(new)} already there. {how}"
        return RedirectResponse("/sources?msg=" + _quote(msg), 303)

    # -- health --------------------------------------------------------------------------------
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
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

    async def home(request: Request) -> Response:
        return RedirectResponse("/matches", 303)

    routes = [
        Route("/", home),
        Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_),
        Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/matches", matches),
        Route("/matches/{match_id:int}/feedback", feedback, methods=["POST"]),
        Route("/feedback/{feedback_id:int}/undo", undo_feedback, methods=["POST"]),
        Route("/deliveries/{delivery_id:int}/retry", retry, methods=["POST"]),
        Route("/rules", rules_list), Route("/rules/new", rule_new),
        Route("/rules/preview", rule_preview), Route("/rules/explain", rule_explain),
        Route("/rules/save", rule_save, methods=["POST"]),
        Route("/rules/{name}", rule_page),
        Route("/rules/{name}/feeds", feed_create, methods=["POST"]),
        Route("/feed-tokens/{token_id:int}/revoke", feed_revoke, methods=["POST"]),
        Route("/feeds/{name}/{token}.{kind:str}", feed),
        Route("/stories", stories), Route("/stories/{story_id:int}", story_page),
        Route("/articles/{article_id:int}", article_page),
        Route("/sources", sources), Route("/sources/opml", opml_export, methods=["GET"]),
        Route("/sources/opml", opml_import, methods=["POST"]),
        Route("/sources/preview", source_preview, methods=["POST"]),
        Route("/sources/add", source_add, methods=["POST"]),
        Route("/sources/{name}/reset", source_reset, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes)


def append_to_config(path: Path, entry: str) -> Config:
    """Append TOML (new [[source]] entries) to the config, validated before it replaces the file."""
    current = path.read_text(encoding="utf-8")
    return rules_mod.write_config(path, current + ("" if current.endswith("\n") else "\n") + "\n" + entry.strip() + "\n")


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="/")


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v else None
    except ValueError:
        return None


def _date(v: str | None) -> date | None:
    try:
        return date.fromisoformat(v) if v else None
    except ValueError:
        return None


def _days(v: str | None) -> int:
    n = _int(v) or 30
    return min(max(n, 1), 90)
