"""Command line: ``monitor [--config PATH] COMMAND``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from sqlmodel import col, select

from monitor import __version__
from monitor.commands import register_all
from monitor.config import Config, ConfigError, config_path, load_config
from monitor.ops import logs


def _load(ctx: click.Context) -> Config:
    import monitor.stages  # noqa: F401  (each stage registers its config checks)

    path: Path = ctx.obj["config_path"]
    try:
        config = load_config(path)
        logs.set_secrets(config.secrets)
        return config
    except ConfigError as exc:
        for p in exc.problems:
            click.echo(p, err=True)
        click.echo(f"{len(exc.problems)} problem(s) in {path}", err=True)
        ctx.exit(2)
        raise  # unreachable


@click.group()
@click.option("--config", "config", metavar="PATH", help="Config file (default: $MONITOR_CONFIG or ./config.toml).")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="MONITOR_LOG_FORMAT", help="json: one JSON object per line (for log shippers).")
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_level: str, log_format: str) -> None:
    """News-monitoring and alert daemon."""
    logs.setup(log_level, log_format)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path(config)


@cli.command()
@click.option("--once", is_flag=True, help="Poll the sources that are due, deliver, and exit.")
@click.option("--all", "everything", is_flag=True, help="With --once: poll every source now.")
@click.pass_context
def run(ctx: click.Context, once: bool, everything: bool) -> None:
    """Run the daemon (or one cycle with --once)."""
    config = _load(ctx)
    if everything and not once:
        raise click.UsageError("--all goes with --once")
    from monitor.daemon import Daemon, run_once

    if once:
        code = asyncio.run(run_once(config, everything))
    else:
        async def main() -> int:
            return await Daemon(config).run()
        code = asyncio.run(main())
    ctx.exit(code)


@cli.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the config and every rule; exit non-zero on any problem."""
    config = _load(ctx)
    click.echo(f"{config.path}: OK ({len(config.sources)} sources, {len(config.rules)} rules, "
               f"{len(config.channels)} channels)")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations."""
    from monitor.store import create_db_engine, upgrade

    config = _load(ctx.find_root())
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    click.echo("database is up to date")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array of objects.")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def articles(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List stored articles, newest first."""
    from monitor.store import Article, Source, create_db_engine, session_scope, upgrade

    config = _load(ctx)
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    with session_scope(engine) as s:
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


def load_config_or_exit(ctx: click.Context) -> Config:
    """For commands in monitor/commands: the validated config, or the problems and exit 2."""
    return _load(ctx.find_root())


register_all(cli)


def main() -> None:
    cli(prog_name="monitor")
