"""``monitor stories``: one line per story, with every outlet that carried it."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import func
from sqlmodel import col, select


def register(cli: click.Group) -> None:
    cli.add_command(stories)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=50, show_default=True)
@click.option("--min-articles", default=1, show_default=True, help="Only stories with at least this many articles.")
@click.pass_context
def stories(ctx: click.Context, as_json: bool, limit: int, min_articles: int) -> None:
    """List stories, newest first, with the outlets that carried each."""
    from monitor.cli import load_config_or_exit
    from monitor.store import Article, Source, create_db_engine, session_scope, upgrade
    from monitor.store.models import Story

    config = load_config_or_exit(ctx)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    items: list[dict[str, Any]] = []
    with session_scope(engine) as s:
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
