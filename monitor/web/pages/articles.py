"""An article: its extracted text with every rule's hits highlighted, and why each rule matched or not."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor.web import data
from monitor.web import rules as rules_mod
from monitor.web.access import Session
from monitor.web.kit import Denied, console_of, page, render


@page()
async def article_page(request: Request, session: Session) -> Response:
    from monitor.match.evaluate import DocIndex, explain

    console = console_of(request)
    aid = int(request.path_params["article_id"])
    found = await run_in_threadpool(data.article, console.engine, aid)
    if found is None:
        raise Denied(404, "no such article")
    art, source = found

    def work() -> tuple[list[dict[str, Any]], list[tuple[int, int]], list[tuple[int, int]]]:
        from monitor.store.db import session_scope

        rs = console.ruleset()
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


ROUTES = [Route("/articles/{article_id:int}", article_page)]
