"""Stories: one card per story with its outlets on a timeline; a story's articles side by side."""

from __future__ import annotations

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.web import data, svg
from monitor.web.access import Session
from monitor.web.kit import Denied, console_of, page, render, to_int


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
    return render(request, session, "story.html.j2", story=v,
                  timeline=Markup(svg.timeline([(a.seen, a.outlet) for a in v.articles], "articles over time")))


ROUTES = [Route("/stories", stories), Route("/stories/{story_id:int}", story_page)]
