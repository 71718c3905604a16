"""``monitor stories``: each story with its outlets and languages; ``merge`` and ``split`` for an analyst."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import func
from sqlmodel import Session, col, select


def register(cli: click.Group) -> None:
    cli.add_command(stories)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=50, show_default=True)
@click.option("--min-articles", default=1, show_default=True, help="Only stories with at least this many articles.")
@click.pass_context
def stories(ctx: click.Context, as_json: bool, limit: int, min_articles: int) -> None:
    """List stories, newest first: headline, outlets with languages, first/last seen, alerts.

    A story is one event, however many outlets and languages report it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.cli import load_config_or_exit
    from monitor.store import create_db_engine, session_scope, upgrade

    config = load_config_or_exit(ctx)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    with session_scope(engine) as s:
        items = story_list(s, limit, min_articles)
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False, indent=1))
        return
    for it in items:
        head = it["headline"] + (f"  [en: {it['headline_en']}]" if it.get("headline_en") else "")
        outlets = ", ".join(f"{o['name']} ({', '.join(o['languages'])})" if o["languages"] else o["name"]
                            for o in it["outlets"])
        click.echo(f"{it['id']:>6}  {it['articles']:>3} art.  {it['alerts_sent']:>2} alerts  "
                   f"{it['first_seen'][:16]} .. {(it['last_seen'] or '')[:16]}  {head}\n        {outlets}")


def story_list(s: Session, limit: int = 50, min_articles: int = 1) -> list[dict[str, Any]]:
    """The stories as ``monitor stories --json`` prints them, most recently active first."""
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
            "first_seen": (first or story.created_at).isoformat(), "last_seen": last.isoformat() if last else None,
            "alerts": [{"rule": c.rule, "article_id": c.article_id, "new_statement": bool(c.statement),
                        "at": c.created_at.isoformat()} for c in claims],
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
    _decide(ctx, lambda s: _merge(s, into, other))


@stories.command("split")
@click.argument("story", type=int)
@click.argument("article", type=int)
@click.pass_context
def split(ctx: click.Context, story: int, article: int) -> None:
    """Take ARTICLE out of STORY into a story of its own; kept apart from then on."""
    _decide(ctx, lambda s: _split(s, story, article))


def _merge(s: Session, into: int, other: int) -> str:
    from monitor.story.stories import merge_stories

    merge_stories(s, into, other)
    return f"story {other} merged into story {into}"


def _split(s: Session, story: int, article: int) -> str:
    from monitor.story.stories import split_article

    new = split_article(s, story, article)
    return f"article {article} split from story {story} into story {new}; kept apart from it"


def _decide(ctx: click.Context, action: Any) -> None:
    from monitor.cli import load_config_or_exit
    from monitor.store import create_db_engine, session_scope, upgrade

    config = load_config_or_exit(ctx.parent or ctx)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    try:
        with session_scope(engine) as s:
            msg = action(s)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(msg)
