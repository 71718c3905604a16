"""Stories: one card per story with its outlets on a timeline; a story's articles side by side."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup
from sqlmodel import Session as DbSession
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.util import plural
from monitor.web import data, svg
from monitor.web.access import Session
from monitor.web.kit import Denied, console_of, page, quote, render, to_int


@page()
async def stories(request: Request, session: Session) -> Response:
    pg = to_int(request.query_params.get("page")) or 1
    min_articles = to_int(request.query_params.get("min")) or 1
    views, more = await run_in_threadpool(data.list_stories, console_of(request).engine, pg, min_articles)
    timelines = {v.id: Markup(svg.timeline([(a.seen, a.outlet) for a in v.articles],
                                           f"{len(v.articles)} articles over time")) for v in views}
    return render(request, session, "stories.html.j2", stories=views, more=more, page_no=pg,
                  min_articles=min_articles, timelines=timelines)


@page()
async def story_page(request: Request, session: Session) -> Response:
    v = await run_in_threadpool(data.story, console_of(request).engine, int(request.path_params["story_id"]))
    if v is None:
        raise Denied(404, "no such story")
    return render(request, session, "story.html.j2", story=v, message=request.query_params.get("msg"),
                  timeline=Markup(svg.timeline([(a.seen, a.outlet) for a in v.articles], "articles over time")))


async def _decide(request: Request, action: Callable[[DbSession], tuple[int, str]]) -> Response:
    """An analyst's decision on stories, in one transaction with the same store functions as
    ``monitor stories merge/split``; a wrong number is a clear error and changes nothing."""
    from monitor.store.db import session_scope

    engine = console_of(request).engine

    def work() -> tuple[int, str]:
        with session_scope(engine) as s:
            return action(s)
    try:
        story_id, msg = await run_in_threadpool(work)
    except ValueError as exc:
        raise Denied(400, f"Nothing changed: {exc}.") from None
    return RedirectResponse(f"/stories/{story_id}?msg={quote(msg)}", 303)


@page(write=True)
async def story_merge(request: Request, session: Session) -> Response:
    from monitor.alerts.settle import merge_as_one

    into = int(request.path_params["story_id"])
    other = to_int(str((await request.form()).get("other") or "").strip().lstrip("#"))
    if other is None:
        raise Denied(400, "Give the number of the story to merge into this one (as on the Stories page).")
    config = console_of(request).config()

    def merge(s: DbSession) -> tuple[int, str]:
        held = merge_as_one(s, into, other, config)  # alerts of both still held: one goes out
        return into, f"Story #{other} merged into this story." + (
            f" {plural(held, 'held delivery')} will not be sent: the story's first alert carries the event."
            if held else "")
    return await _decide(request, merge)


@page(write=True)
async def story_split(request: Request, session: Session) -> Response:
    from monitor.story.stories import split_article

    story_id = int(request.path_params["story_id"])
    article_id = to_int(str((await request.form()).get("article") or "")) or 0

    def split(s: DbSession) -> tuple[int, str]:
        new = split_article(s, story_id, article_id)
        return new, f"Article split from story #{story_id} into this new story; the two are kept apart from now on."
    return await _decide(request, split)


ROUTES = [
    Route("/stories", stories), Route("/stories/{story_id:int}", story_page),
    Route("/stories/{story_id:int}/merge", story_merge, methods=["POST"]),
    Route("/stories/{story_id:int}/split", story_split, methods=["POST"]),
]
