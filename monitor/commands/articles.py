"""Articles and stories: ``monitor articles`` (what has been stored), ``monitor stories`` (one
line per story, with every outlet that carried it) and ``monitor extract`` (what the pipeline
would extract from a page: check a site before adding it, or see why an alert quoted what it
did; a URL is fetched through the daemon's fetcher with the config's fetch settings).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.commands.common import database, load_config, load_config_or_exit

if TYPE_CHECKING:
    from monitor.config import FetchSettings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def articles(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List stored articles, newest first."""
    from sqlmodel import col, select

    from monitor.store import Article, Source, session_scope

    config = load_config_or_exit(ctx)
    with database(config) as engine, session_scope(engine) as s:
        rows = s.exec(select(Article, Source).join(Source, col(Source.id) == col(Article.source_id))
                      .order_by(col(Article.first_seen_at).desc(), col(Article.id).desc()).limit(limit)).all()
        items: list[dict[str, Any]] = [{
            "id": a.id, "source": src.name, "title": a.title, "url": a.url,
            "published": a.published.isoformat() if a.published and not a.published_estimated else None,
            "language": a.language, "full_text": a.full_text, "first_seen": a.first_seen_at.isoformat(),
            "image": a.image,
            "story_id": a.story_id, "duplicate_of": a.duplicate_of,
        } for a, src in rows]
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=1))
        return
    for it in items:
        click.echo(f"{it['id']:>6}  {(it['published'] or '-')[:16]:16}  {it['source'][:20]:20}  {it['title'][:70]}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=50, show_default=True)
@click.option("--min-articles", default=1, show_default=True, help="Only stories with at least this many articles.")
@click.pass_context
def stories(ctx: click.Context, as_json: bool, limit: int, min_articles: int) -> None:
    """List stories, newest first, with the outlets that carried each."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from monitor.store import Article, Source, session_scope
    from monitor.store.models import Story

    config = load_config_or_exit(ctx)
    items: list[dict[str, Any]] = []
    with database(config) as engine, session_scope(engine) as s:
        counts = (select(Article.story_id, func.count().label("n"), func.max(Article.first_seen_at).label("last"))
                  .group_by(col(Article.story_id)).having(func.count() >= min_articles).subquery())
        rows = s.exec(select(Story, counts.c.n, counts.c.last).join(counts, counts.c.story_id == col(Story.id))
                      .order_by(counts.c.last.desc(), col(Story.id).desc()).limit(limit)).all()
        for story, n, last in rows:
            arts = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                          .where(Article.story_id == story.id).order_by(col(Article.id))).all()
            outlets: list[str] = []
            for _, name in arts:
                if name not in outlets:
                    outlets.append(name)
            items.append({
                "id": story.id, "title": story.title, "articles": n, "outlets": outlets,
                "first_seen": story.created_at.isoformat(), "last_seen": last.isoformat() if last else None,
                "article_ids": [a.id for a, _ in arts],
                "urls": [a.url for a, _ in arts],
            })
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=1))
        return
    for it in items:
        click.echo(f"{it['id']:>6}  {it['articles']:>3} art.  {it['title'][:60]:60}  {', '.join(it['outlets'])}")


def _settings(ctx: click.Context) -> tuple[FetchSettings, str]:
    """The config's fetch settings; defaults without a config. Extracting needs no channels or
    secrets, so a config that fails only on those must not stop it: its problems are shown."""
    from monitor.config import FetchSettings

    config = load_config(ctx, "lenient")
    return (config.fetch, config.monitor.contact) if config else (FetchSettings(), "")


async def _fetch(urls: list[str], settings: FetchSettings, contact: str) -> dict[str, Any]:
    from monitor.fetch import Fetcher, FetchError
    from monitor.util import HTML_ACCEPT

    out: dict[str, Any] = {}
    async with Fetcher(settings, contact) as fetcher:
        async def one(u: str) -> None:
            try:
                out[u] = await fetcher.get(u, accept=HTML_ACCEPT)
            except FetchError as exc:
                out[u] = exc
        await asyncio.gather(*(one(u) for u in urls))
    return out


def extract_inputs(inputs: list[str], settings: FetchSettings, contact: str = "") -> list[dict[str, Any]]:
    """One result per input, in order; a failed input has ``error`` set and empty fields."""
    from monitor.extract import extract_article
    from monitor.story.urls import canonical_url, preferred_url

    urls = [i for i in inputs if i.lower().startswith(("http://", "https://"))]
    fetched = asyncio.run(_fetch(urls, settings, contact)) if urls else {}
    results = []
    for item in inputs:
        rec: dict[str, Any] = {"input": item, "title": None, "url": None, "canonical_url": None,
                               "published": None, "authors": [], "language": None, "text": None}
        try:
            if item in fetched:
                resp = fetched[item]
                if isinstance(resp, Exception):
                    raise click.ClickException(str(resp))
                rec["url"] = resp.final_url
                ex = extract_article(resp.content, resp.final_url, resp.content_type)
            else:
                path = Path(item)
                if not path.is_file():
                    raise click.ClickException(f"{item}: no such file (and not an http(s) URL)")
                ex = extract_article(path.read_bytes(), None)
            if ex is None:
                raise click.ClickException(f"{item}: no article text found")
        except click.ClickException as exc:
            rec["error"] = exc.message
            results.append(rec)
            continue
        if rec["url"]:
            rec["canonical_url"] = preferred_url(rec["url"], ex.canonical_url)
        elif ex.canonical_url:
            rec["canonical_url"] = canonical_url(ex.canonical_url)
        rec.update(title=ex.title, published=ex.published.isoformat() if ex.published else None,
                   authors=[a.strip() for a in (ex.authors or "").split(";") if a.strip()],
                   language=ex.language, text=ex.text, image=ex.image)
        results.append(rec)
    return results


@click.command("extract")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input per line.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.pass_context
def extract(ctx: click.Context, as_json: bool, inputs: tuple[str, ...]) -> None:
    """Extract article text and metadata from URLs or saved HTML files."""
    has_urls = any(i.lower().startswith(("http://", "https://")) for i in inputs)
    settings, contact = _settings(ctx) if has_urls else (_default_fetch(), "")
    results = extract_inputs(list(inputs), settings, contact)
    for i, rec in enumerate(results):
        if as_json:
            click.echo(json.dumps(rec, ensure_ascii=False))
            continue
        if i:
            click.echo("\n" + "-" * 72)
        if "error" in rec:
            click.echo(f"error: {rec['error']}", err=True)
            continue
        for label, key in (("input", "input"), ("title", "title"), ("url", "url"),
                           ("canonical", "canonical_url"), ("published", "published"),
                           ("language", "language")):
            if rec.get(key):
                click.echo(f"{label:10} {rec[key]}")
        if rec["authors"]:
            click.echo(f"{'authors':10} {', '.join(rec['authors'])}")
        click.echo("")
        click.echo(rec["text"])
    if any("error" in r for r in results):
        ctx.exit(1)


def _default_fetch() -> FetchSettings:
    from monitor.config import FetchSettings

    return FetchSettings()


COMMANDS = [articles, stories, extract]
