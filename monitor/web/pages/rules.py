"""The rule editor: list of rules with their precision, a rule's page with the live preview
(backtest chart, clause-by-clause explanation), saving into config.toml and reloading."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.web import data, feeds, svg
from monitor.web import rules as rules_mod
from monitor.web.access import Session
from monitor.web.kit import Denied, console_of, page, render, to_int, window_days

_NAME = re.compile(r"^[\w.-]{1,100}$")


def _chart(per_day: Any, days: int) -> Markup:
    return Markup(svg.day_bars(per_day, f"matches per day, last {days} days"))


@page()
async def rules_list(request: Request, session: Session) -> Response:
    from monitor.alerts.feedback import precision
    from monitor.store.db import session_scope

    console = console_of(request)
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

    console = console_of(request)
    cfg = console.config()
    pv = await run_in_threadpool(rules_mod.preview, console.engine, cfg, query, days, None, original or None)

    def extra() -> tuple[Any, Any, Any]:
        with session_scope(console.engine) as s:
            prec = precision(s, original) if original else None
        return prec, data.mutes(console.engine, original), feeds.tokens(console.engine, original)
    prec, mutes, tokens = await run_in_threadpool(extra) if original else (None, [], [])
    return render(request, session, "rule.html.j2", status=status, name=name, query=query, original=original,
                  channels=channels, all_channels=[c.name for c in cfg.channels], days=days, pv=pv,
                  chart=_chart(pv.per_day, days), message=message, problems=problems or [], precision=prec,
                  mutes=mutes, tokens=tokens, new_token=None)


@page()
async def rule_page(request: Request, session: Session) -> Response:
    name = request.path_params["name"]
    rule = next((r for r in console_of(request).config().rules if r.name == name), None)
    if rule is None:
        raise Denied(404, f"no rule named {name!r} in the config")
    days = window_days(request.query_params.get("days"))
    return await _rule_page(request, session, rule.name, rule.query, list(rule.channels), rule.name, days)


@page()
async def rule_new(request: Request, session: Session) -> Response:
    return await _rule_page(request, session, "", request.query_params.get("query", ""),
                            [], "", window_days(request.query_params.get("days")))


@page()
async def rule_preview(request: Request, session: Session) -> Response:
    console = console_of(request)
    qp = request.query_params
    days = window_days(qp.get("days"))
    pv = await run_in_threadpool(rules_mod.preview, console.engine, console.config(), qp.get("query", ""), days,
                                 None, qp.get("original") or None)
    return render(request, session, "preview.html.j2", pv=pv, days=days, chart=_chart(pv.per_day, days))


@page()
async def rule_explain(request: Request, session: Session) -> Response:
    console = console_of(request)
    qp = request.query_params
    try:
        art, clauses, m = await run_in_threadpool(rules_mod.explain_article, console.engine, console.config(),
                                                  qp.get("query", ""), to_int(qp.get("article")) or 0,
                                                  qp.get("original") or None)
    except Exception as exc:  # a query being typed: its syntax error shows in the preview
        raise Denied(400, f"cannot explain: {exc}") from None
    if art is None:
        raise Denied(404, "no such article")
    return render(request, session, "explain.html.j2", article=art, clauses=clauses, m=m)


@page(write=True)
async def rule_save(request: Request, session: Session) -> Response:
    console = console_of(request)
    form = await request.form()
    name = str(form.get("name") or "").strip()
    query = str(form.get("query") or "").strip()
    original = str(form.get("original") or "")
    channels = [str(c) for c in form.getlist("channels")]
    days = window_days(str(form.get("days") or ""))
    cfg = console.config()
    if not _NAME.match(name):
        return await _rule_page(request, session, name, query, channels, original, days, status=400,
                                problems=["A rule's name is 1-100 letters, digits, '-', '_' or '.'."])
    try:
        new_cfg = await run_in_threadpool(rules_mod.save_rule, cfg.path, name, query, channels, original or None)
    except rules_mod.SaveError as exc:
        return await _rule_page(request, session, name, query, channels, original, days, status=400,
                                problems=exc.problems)
    if console.set_config is not None:
        console.set_config(new_cfg)
    _ok, how = await run_in_threadpool(console.reload)
    msg = f"Saved to {cfg.path.name}. " + how
    return await _rule_page(request, session, name, query, channels, name, days, message=msg)


ROUTES = [
    Route("/rules", rules_list), Route("/rules/new", rule_new),
    Route("/rules/preview", rule_preview), Route("/rules/explain", rule_explain),
    Route("/rules/save", rule_save, methods=["POST"]),
    Route("/rules/{name}", rule_page),
]
