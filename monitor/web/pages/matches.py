"""Matches and alerts: newest first, filtered, each channel's delivery state with a retry button."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.web import data
from monitor.web.access import Session
from monitor.web.kit import back_to, back_url, console_of, page, render, to_date, to_int


@page()
async def matches(request: Request, session: Session) -> Response:
    engine = console_of(request).engine
    qp = request.query_params
    f = data.MatchFilters(rule=qp.get("rule", ""), source=qp.get("source", ""),
                          language=qp.get("language", ""), story=to_int(qp.get("story")),
                          since=to_date(qp.get("since")), until=to_date(qp.get("until")),
                          page=to_int(qp.get("page")) or 1)
    views, more = await run_in_threadpool(data.list_matches, engine, f)
    choices = await run_in_threadpool(data.filter_choices, engine)
    return render(request, session, "matches.html.j2", matches=views, more=more, f=f, choices=choices,
                  back=back_url(request))


@page(write=True)
async def retry(request: Request, session: Session) -> Response:
    form = await request.form()
    await run_in_threadpool(data.retry_delivery, console_of(request).engine, int(request.path_params["delivery_id"]))
    return back_to(form, "/matches")


ROUTES = [
    Route("/matches", matches),
    Route("/deliveries/{delivery_id:int}/retry", retry, methods=["POST"]),
]
