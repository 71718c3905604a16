"""Feedback on a match: wrong match, mute the story or the source for the rule; undo a mute."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.web import data
from monitor.web.access import Session
from monitor.web.kit import Denied, back_to, console_of, page

KINDS = ("wrong", "mute_story", "mute_source")


@page(write=True)
async def feedback(request: Request, session: Session) -> Response:
    from monitor.alerts.feedback import record
    from monitor.store.db import session_scope

    engine = console_of(request).engine
    form = await request.form()
    kind = str(form.get("kind") or "")
    mid = int(request.path_params["match_id"])

    def work() -> bool:
        ctx = data.match_context(engine, mid)
        if ctx is None:
            return False
        m, a = ctx
        with session_scope(engine) as s:
            record(s, m.rule, kind, match_id=m.id if kind == "wrong" else None,
                   story_id=a.story_id if kind == "mute_story" else None,
                   source_id=a.source_id if kind == "mute_source" else None)
        return True

    if kind not in KINDS:
        raise Denied(400, f"unknown feedback {kind!r}")
    if not await run_in_threadpool(work):
        raise Denied(404, f"no match {mid}")
    return back_to(form, f"/matches#m{mid}")


@page(write=True)
async def undo_feedback(request: Request, session: Session) -> Response:
    from monitor.alerts.feedback import undo
    from monitor.store.db import session_scope

    engine = console_of(request).engine
    form = await request.form()
    fid = int(request.path_params["feedback_id"])

    def work() -> None:
        with session_scope(engine) as s:
            undo(s, fid)
    await run_in_threadpool(work)
    return back_to(form, "/rules")


ROUTES = [
    Route("/matches/{match_id:int}/feedback", feedback, methods=["POST"]),
    Route("/feedback/{feedback_id:int}/undo", undo_feedback, methods=["POST"]),
]
