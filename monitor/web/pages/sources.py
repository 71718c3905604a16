"""Sources: state, poll times, sparkline, reset; add by URL with the autodiscovery preview;
OPML import and export. Additions are appended to config.toml, validated, then reloaded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.config import Config
from monitor.web import config_edit, data, svg
from monitor.web import rules as rules_mod
from monitor.web.access import Session
from monitor.web.kit import MASK, Console, Denied, back_to, console_of, masked, page, quote, render


def append_to_config(path: Path, entry: str) -> Config:
    """Append TOML (new [[source]] entries) to the config, validated before it replaces the file."""
    current = path.read_text(encoding="utf-8")
    return rules_mod.write_config(path, current + ("" if current.endswith("\n") else "\n") + "\n" + entry.strip() + "\n")


async def _listing(console: Console) -> dict[str, Any]:
    """The sources table: each configured source's view and its sparkline."""
    views = await run_in_threadpool(data.list_sources, console.engine, [s.name for s in console.config().sources])
    sparks = {v.name: Markup(svg.sparkline(v.per_day, f"{v.name}: articles per day, last 14 days"))
              for v in views}
    return {"sources": views, "sparks": sparks}


async def _save_and_reload(console: Console, entry: str, what: str) -> str:
    """Append ``entry`` to the config and apply it; ``Denied`` (nothing written) when invalid."""
    try:
        return await _apply(console, append_to_config, entry)
    except rules_mod.SaveError as exc:
        raise Denied(400, f"Not {what}: " + "; ".join(exc.problems)) from None


async def _apply(console: Console, edit: Callable[..., Config], *args: str) -> str:
    """Run a config edit (validated before the file is replaced; ``SaveError`` when not), then
    apply the new config to the running daemon as SIGHUP does. Returns how the reload went."""
    new_cfg = await run_in_threadpool(edit, console.config().path, *args)
    if console.set_config is not None:
        console.set_config(new_cfg)
    _ok, how = await run_in_threadpool(console.reload)
    return how


def _configured(request: Request) -> str:
    name = str(request.path_params["name"])
    if name not in {s.name for s in console_of(request).config().sources}:
        raise Denied(404, f"no source named {name!r} in the config")
    return name


@page(role="editor")
async def source_edit_form(request: Request, session: Session) -> Response:
    name = _configured(request)
    path = console_of(request).config().path
    try:
        entry = await run_in_threadpool(config_edit.source_entry, path, name)
    except rules_mod.SaveError as exc:
        raise Denied(400, "; ".join(exc.problems)) from None
    return render(request, session, "source_edit.html.j2", name=name, entry=entry, problems=[],
                  config_name=path.name, **_hidden(console_of(request), entry))


def _hidden(console: Console, entry: str) -> dict[str, Any]:
    """``hidden``: the entry as the form shows it has a secret masked (a value written in the
    file that is also a secret) or holds the mask already (a refused save shown again), so the
    editor is told what to do instead of saving it."""
    return {"hidden": MASK in entry or masked(entry, console.config().secrets) != entry, "mask": MASK}


@page(write=True)
async def source_edit(request: Request, session: Session) -> Response:
    console = console_of(request)
    name = _configured(request)
    entry = str((await request.form()).get("entry") or "")
    try:
        how = await _apply(console, config_edit.replace_source, name, entry)
    except rules_mod.SaveError as exc:
        return render(request, session, "source_edit.html.j2", status=400, name=name, entry=entry,
                      problems=exc.problems, config_name=console.config().path.name, **_hidden(console, entry))
    return RedirectResponse("/sources?msg=" + quote(f"Source {name} saved. " + how), 303)


@page(write=True)
async def source_remove(request: Request, session: Session) -> Response:
    name = _configured(request)
    try:
        how = await _apply(console_of(request), config_edit.remove_source, name)
    except rules_mod.SaveError as exc:
        raise Denied(400, "Not removed: " + "; ".join(exc.problems)) from None
    return RedirectResponse("/sources?msg=" + quote(f"Source {name} removed; its stored articles stay. " + how), 303)


@page()
async def sources(request: Request, session: Session) -> Response:
    listing = await _listing(console_of(request))
    return render(request, session, "sources.html.j2", **listing, preview=None,
                  url=request.query_params.get("url", ""), error=None, message=request.query_params.get("msg"))


@page(write=True)
async def source_reset(request: Request, session: Session) -> Response:
    form = await request.form()
    await run_in_threadpool(data.reset_source, console_of(request).engine, request.path_params["name"])
    return back_to(form, "/sources")


@page(write=True)
async def source_preview(request: Request, session: Session) -> Response:
    from monitor.fetch import Fetcher, FetchError
    from monitor.sources.discover import describe, unique_names

    console = console_of(request)
    form = await request.form()
    url = str(form.get("url") or "").strip()
    cfg = console.config()
    listing = await _listing(console)
    try:
        async with Fetcher(cfg.fetch, cfg.monitor.contact) as fetcher:
            entry = await asyncio.wait_for(describe(fetcher, url), 60)
        unique_names([entry], {s.name for s in cfg.sources})
        if any(s.url == entry.url for s in cfg.sources):
            entry.comments.append("note: the config already has a source with this URL")
        preview, error = entry.toml(), None
    except (FetchError, ValueError, TimeoutError) as exc:
        preview, error = None, f"cannot add {url}: {exc}"
    return render(request, session, "sources.html.j2", **listing, preview=preview, url=url, error=error,
                  message=None)


@page(write=True)
async def source_add(request: Request, session: Session) -> Response:
    form = await request.form()
    how = await _save_and_reload(console_of(request), str(form.get("entry") or ""), "added")
    return RedirectResponse("/sources?msg=" + quote("Source added. " + how), 303)


@page()
async def opml_export(request: Request, session: Session) -> Response:
    from xml.sax.saxutils import quoteattr

    # A download, not a template: masked here as every page masks (a token in a feed's URL
    # would otherwise leave in the file; the config, not the export, is the backup).
    config = console_of(request).config()
    outlines = "".join(f"<outline type=\"rss\" text={quoteattr(s.name)} title={quoteattr(s.name)} "
                       f"xmlUrl={quoteattr(masked(s.url, config.secrets))}/>" for s in config.sources
                       if s.type == "feed")
    body = ('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"><head><title>monitor sources</title>'
            f"</head><body>{outlines}</body></opml>\n")
    return Response(body, media_type="text/x-opml; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="monitor-sources.opml"'})


@page(write=True)
async def opml_import(request: Request, session: Session) -> Response:
    from monitor.sources.discover import opml_entries, unique_names

    console = console_of(request)
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
    how = await _save_and_reload(console, "\n".join(e.toml() for e in new), "imported") if new else ""
    msg = f"{len(new)} sources imported, {len(entries) - len(new)} already there. {how}"
    return RedirectResponse("/sources?msg=" + quote(msg), 303)


ROUTES = [
    Route("/sources", sources), Route("/sources/opml", opml_export, methods=["GET"]),
    Route("/sources/opml", opml_import, methods=["POST"]),
    Route("/sources/preview", source_preview, methods=["POST"]),
    Route("/sources/add", source_add, methods=["POST"]),
    Route("/sources/{name}/reset", source_reset, methods=["POST"]),
    Route("/sources/{name}/edit", source_edit_form, methods=["GET"]),
    Route("/sources/{name}/edit", source_edit, methods=["POST"]),
    Route("/sources/{name}/remove", source_remove, methods=["POST"]),
]
