"""The console's ASGI app: assembles each page's routes (``monitor/web/pages``), the static files
and the probes into one Starlette app. What pages share (sessions, roles, CSRF, templates) is in
``monitor.web.kit``; what each page shows is in its own module.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.web.kit import Console, Kit, build_templates
from monitor.web.pages import (
    articles,
    auth,
    feedback,
    feeds,
    health,
    matches,
    rules,
    sources,
    stories,
)

__all__ = ["Console", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"


async def home(request: Request) -> Response:
    return RedirectResponse("/matches", 303)


def create_app(console: Console) -> Starlette:
    routes: list[BaseRoute] = [Route("/", home)]
    for pages in (health, auth, matches, feedback, rules, feeds, stories, articles, sources):
        routes += pages.ROUTES
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    if console.passwords.required:  # logged-in sessions outlive a restart (open console: no login)
        console.sessions.keep_in(console.engine, console.passwords)
    app = Starlette(routes=routes)
    app.state.kit = Kit(console, build_templates(lambda: console.config().secrets))
    return app
