"""Articles and stories: ``monitor articles`` (what has been stored), ``monitor stories`` (one
line per story: one event across outlets and languages; ``merge`` and ``split`` for an analyst) and ``monitor extract`` (what the pipeline
would extract from a page: check a site before adding it, or see why an alert quoted what it
did; a URL is fetched through the daemon's fetcher with the config's fetch settings).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.commands.common import (
    JSON_HELP,
    cut,
    database,
    echo_json_array,
    iso,
    load_config,
    load_config_or_exit,
    say_if_cut,
)
from monitor.util import human_when, plural

if TYPE_CHECKING:
    from sqlmodel import Session

    from monitor.config import Config, FetchSettings


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
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
            "published": iso(a.published) if a.published and not a.published_estimated else None,
            "language": a.language, "full_text": a.full_text, "first_seen": iso(a.first_seen_at),
            "image": a.image,
            "story_id": a.story_id, "duplicate_of": a.duplicate_of,
            # read again after its feed entry changed (README "Updated articles")
            "reread_count": a.reread_count, "reread_at": iso(a.reread_at) if a.reread_at else None,
        } for a, src in rows]
    if as_json:
        echo_json_array(items)
        return
    if not items:
        click.echo("no articles stored yet", err=True)
        return
    now = datetime.now(UTC)

    def when(value: str | None) -> str:
        return human_when(datetime.fromisoformat(value) if value else None, now)

    click.echo(f"{'ID':>6}  {'FIRST SEEN':10}  {'PUBLISHED':10}  {'SOURCE':20}  TITLE")
    for it in items:
        click.echo(f"{it['id']:>6}  {when(it['first_seen']):10}  {when(it['published']):10}  "
                   f"{cut(it['source'], 20):20}  {cut(it['title'], 80)}")
    say_if_cut(len(items), limit, "articles")


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--limit", default=50, show_default=True)
@click.option("--min-articles", default=1, show_default=True, help="Only stories with at least this many articles.")
@click.pass_context
def stories(ctx: click.Context, as_json: bool, limit: int, min_articles: int) -> None:
    """List stories, newest first: headline, outlets with languages, first/last seen, alerts.

    A story is one event, however many outlets and languages report it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.store import session_scope

    config = load_config_or_exit(ctx)
    with database(config) as engine, session_scope(engine) as s:
        items = story_list(s, limit, min_articles)
    if as_json:
        echo_json_array(items)
        return
    if not items:
        click.echo("no stories yet" if min_articles <= 1 else f"no stories with {min_articles} or more articles yet",
                   err=True)
        return
    now = datetime.now(UTC)
    for it in items:
        head = it["headline"] + (f"  [en: {it['headline_en']}]" if it.get("headline_en") else "")
        outlets = ", ".join(f"{o['name']} ({', '.join(o['languages'])})" if o["languages"] else o["name"]
                            for o in it["outlets"])
        first, last = (datetime.fromisoformat(it[k]) if it[k] else None for k in ("first_seen", "last_seen"))
        seen = human_when(first, now)
        if last is not None and first is not None and (last - first).total_seconds() >= 60:
            seen = f"first {seen}, last {human_when(last, now)}"
        alerted = (f"{plural(len(it['alerts']), 'alert')} ({plural(it['alerts_sent'], 'delivery')} sent)"
                   if it["alerts"] else "no alerts")
        click.echo(f"{it['id']:>6}  {head}\n        {plural(it['articles'], 'article')} from {outlets}; "
                   f"seen {seen}; {alerted}")
    say_if_cut(len(items), limit, "stories")


def story_list(s: Session, limit: int = 50, min_articles: int = 1) -> list[dict[str, Any]]:
    """The stories as ``monitor stories --json`` prints them, most recently active first."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from monitor.store import Alert, Article, Delivery, Match, Source
    from monitor.store.models import Story, StoryAlert

    counts = (select(Article.story_id, func.count().label("n"), func.min(Article.first_seen_at).label("first"),
                     func.max(Article.first_seen_at).label("last"))
              .group_by(col(Article.story_id)).having(func.count() >= min_articles).subquery())
    rows = s.exec(select(Story, counts.c.n, counts.c.first, counts.c.last)
                  .join(counts, counts.c.story_id == col(Story.id))
                  .order_by(counts.c.last.desc(), col(Story.id).desc()).limit(limit)).all()
    items: list[dict[str, Any]] = []
    for story, n, first, last in rows:
        arts = s.exec(select(Article, Source.name).join(Source, col(Source.id) == col(Article.source_id))
                      .where(Article.story_id == story.id).order_by(col(Article.id))).all()
        outlets: dict[str, list[str]] = {}
        for a, name in arts:
            langs = outlets.setdefault(name, [])
            if a.language and a.language not in langs:
                langs.append(a.language)
        head = arts[0][0] if arts else None
        english = next((a.title for a, _ in arts if (a.language or "").startswith("en")), None)
        claims = s.exec(select(StoryAlert).where(StoryAlert.story_id == story.id).order_by(col(StoryAlert.id))).all()
        ids = [a.id for a, _ in arts]
        sent = s.exec(select(func.count()).select_from(Delivery).join(Alert, col(Alert.id) == col(Delivery.alert_id))
                      .join(Match, col(Match.id) == col(Alert.match_id))
                      .where(col(Match.article_id).in_(ids), Delivery.status == "sent")).one() if ids else 0
        items.append({
            "id": story.id,
            "headline": head.title if head else story.title,
            "language": head.language if head else None,
            "headline_en": english if head is not None and english is not None and english != head.title else None,
            "articles": n,
            "outlets": [{"name": k, "languages": v} for k, v in outlets.items()],
            "languages": sorted({lang for v in outlets.values() for lang in v}),
            "first_seen": iso(first or story.created_at), "last_seen": iso(last),
            "alerts": [{"rule": c.rule, "article_id": c.article_id, "new_statement": bool(c.statement),
                        "at": iso(c.created_at)} for c in claims],
            "alerts_sent": int(sent),
            "article_ids": ids,
            "urls": [a.url for a, _ in arts],
        })
    return items


@stories.command("merge")
@click.argument("into", type=int)
@click.argument("other", type=int)
@click.pass_context
def merge(ctx: click.Context, into: int, other: int) -> None:
    """Merge story OTHER into story INTO: one event, one story, alerts once per rule."""
    _decide(ctx, lambda s, cfg: _merge(s, into, other, cfg))


@stories.command("split")
@click.argument("story", type=int)
@click.argument("article", type=int)
@click.pass_context
def split(ctx: click.Context, story: int, article: int) -> None:
    """Take ARTICLE out of STORY into a story of its own; kept apart from then on."""
    _decide(ctx, lambda s, cfg: _split(s, story, article))


def _merge(s: Session, into: int, other: int, config: Config) -> str:
    from monitor.alerts.settle import merge_as_one

    held = merge_as_one(s, into, other, config)  # alerts of both still held: one goes out
    return f"story {other} merged into story {into}" + (
        f"; {plural(held, 'held delivery')} will not be sent (the story's first alert carries it)"
        if held else "")


def _split(s: Session, story: int, article: int) -> str:
    from monitor.story.stories import split_article

    new = split_article(s, story, article)
    return f"article {article} split from story {story} into story {new}; kept apart from it"


def _decide(ctx: click.Context, action: Callable[[Session, Config], str]) -> None:
    """Run an analyst's decision in one transaction; a wrong id is a clear error, nothing changed."""
    from monitor.store import session_scope

    config = load_config_or_exit(ctx)
    try:
        with database(config, migrate=True) as engine, session_scope(engine) as s:
            msg = action(s, config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(msg)


def _settings(ctx: click.Context) -> tuple[FetchSettings, str]:
    """The config's fetch settings; defaults without a config. Extracting needs no channels or
    secrets, so a config that fails only on those must not stop it: its problems are shown."""
    from monitor.config import FetchSettings

    config = load_config(ctx, "lenient")
    return (config.fetch, config.monitor.contact) if config else (FetchSettings(), "")


async def _fetch(urls: list[str], settings: FetchSettings, contact: str, allow_private: bool = False) -> dict[str, Any]:
    import asyncio

    from monitor.fetch import Fetcher, FetchError
    from monitor.util import HTML_ACCEPT

    out: dict[str, Any] = {}
    async with Fetcher(settings, contact) as fetcher:
        async def one(u: str) -> None:
            try:
                out[u] = await fetcher.get(u, accept=HTML_ACCEPT, allow_private=allow_private or None)
            except FetchError as exc:
                out[u] = exc
        await asyncio.gather(*(one(u) for u in urls))
    return out


def extract_inputs(inputs: list[str], settings: FetchSettings, contact: str = "",
                   allow_private: bool = False) -> list[dict[str, Any]]:
    """One result per input, in order, all with the same keys; a failed input has ``error`` set
    and empty fields."""
    import asyncio

    from monitor.extract import extract_article
    from monitor.parse.urls import canonical_url, preferred_url

    urls = [i for i in inputs if i.lower().startswith(("http://", "https://"))]
    fetched = asyncio.run(_fetch(urls, settings, contact, allow_private)) if urls else {}
    results = []
    for item in inputs:
        rec: dict[str, Any] = {"input": item, "title": None, "url": None, "canonical_url": None,
                               "published": None, "authors": [], "language": None, "text": None,
                               "image": None, "error": None}
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
        rec.update(title=ex.title, published=iso(ex.published),
                   authors=[a.strip() for a in (ex.authors or "").split(";") if a.strip()],
                   language=ex.language, text=ex.text, image=ex.image)
        results.append(rec)
    return results


@click.command("extract")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " One object per input.")
@click.option("--allow-private-networks", "allow_private", is_flag=True, help="Allow a loopback or private address.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.pass_context
def extract(ctx: click.Context, as_json: bool, allow_private: bool, inputs: tuple[str, ...]) -> None:
    """Extract article text and metadata from URLs or saved HTML files."""
    has_urls = any(i.lower().startswith(("http://", "https://")) for i in inputs)
    settings, contact = _settings(ctx) if has_urls else (_default_fetch(), "")
    results = extract_inputs(list(inputs), settings, contact, allow_private)
    if as_json:
        echo_json_array(results)
        if any(r["error"] for r in results):
            ctx.exit(1)
        return
    for i, rec in enumerate(results):
        if i:
            click.echo("\n" + "-" * 72)
        if rec["error"]:
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
    if any(r["error"] for r in results):
        ctx.exit(1)


def _default_fetch() -> FetchSettings:
    from monitor.config import FetchSettings

    return FetchSettings()


COMMANDS = [articles, stories, extract]
