"""Operations: ``monitor run``, ``check-config``, ``db upgrade``, ``health``, ``stats``, ``prune``."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from monitor.commands.common import database, load_config_or_exit
from monitor.util import human_duration, human_when, plural

if TYPE_CHECKING:
    from sqlalchemy import Engine


@click.command()
@click.option("--once", is_flag=True, help="Poll the sources that are due, deliver, and exit.")
@click.option("--all", "everything", is_flag=True, help="With --once: poll every source now.")
@click.pass_context
def run(ctx: click.Context, once: bool, everything: bool) -> None:
    """Run the daemon (or one cycle with --once)."""
    import asyncio
    import gc

    # Start-up creates ~0.1 M objects that live as long as the process (modules, classes, the
    # tables, the config), and the collector's passes over them while they are made cost ~8 %
    # of the CPU to the first poll (issue 15). It is back on once start-up is over (Daemon.run
    # freezes what start-up made first; run_once after building its pipeline).
    gc.disable()
    config = load_config_or_exit(ctx)
    if everything and not once:
        raise click.UsageError("--all goes with --once")
    from monitor.config.advice import advice

    for line in advice(config):
        logging.getLogger("monitor.config").warning("%s", line)
    from monitor.match import prepare_meanings, uses_about

    about = uses_about(config)
    if once and about:
        from monitor.embed import load_in_background

        # The model and the about() clauses' meanings, beside the imports, migrations and feed
        # downloads rather than after them; the run's own rule set then finds them built. (The
        # daemon loads them with its first new entries instead, beside their page fetches: a
        # loading thread would hold the interpreter lock on the way to its first poll, 2-3 s.)
        load_in_background(then=lambda: prepare_meanings(config))
    elif config.dedup.events or about:
        from monitor.embed import check_in_background

        check_in_background()  # the package's check, which the pipeline makes before the first poll
    from monitor.fetch import load_tls_in_background

    # The fetcher's TLS context too (the CA bundle, read without the interpreter lock): on the
    # other core while the daemon's modules import, not on the way to the first request.
    load_tls_in_background()
    from monitor.daemon import Daemon, run_once

    if once:
        code = asyncio.run(run_once(config, everything))
    else:
        async def main() -> int:
            return await Daemon(config).run()
        code = asyncio.run(main())
    ctx.exit(code)


@click.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the config and every rule; exit non-zero on any problem."""
    import gc

    gc.disable()  # a short run that frees nothing worth a collection (see `run`)
    config = load_config_or_exit(ctx)
    from monitor.config.advice import advice

    click.echo(f"{config.path}: OK ({plural(len(config.sources), 'source')}, {plural(len(config.rules), 'rule')}, "
               f"{plural(len(config.channels), 'channel')})")
    for line in advice(config):
        click.echo(f"note: {line}")


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending schema migrations."""
    with database(load_config_or_exit(ctx), migrate=True):
        pass
    click.echo("database is up to date")


def database_size(engine: Engine) -> int | None:
    """Bytes on disk: the SQLite file with its WAL, or PostgreSQL's pg_database_size."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            return None
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)


def collect_stats(engine: Engine) -> dict[str, Any]:
    from sqlalchemy import func, select

    from monitor.store.models import METADATA
    from monitor.util import aware

    t = METADATA.tables
    now = datetime.now(UTC)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name, key in (("source", "sources"), ("article", "articles"), ("match", "matches"),
                          ("alert", "alerts"), ("delivery", "deliveries")):
            out[key] = conn.execute(select(func.count()).select_from(t[name])).scalar() or 0
        d = t["delivery"]
        out["deliveries_by_status"] = {s: n for s, n in conn.execute(
            select(d.c.status, func.count()).group_by(d.c.status).order_by(d.c.status))}
        oldest = conn.execute(select(d.c.id, d.c.created_at).where(d.c.status.in_(["pending", "failed"]))
                              .order_by(d.c.created_at, d.c.id).limit(1)).first()
        a = t["article"]
        first = conn.execute(select(func.min(a.c.first_seen_at))).scalar()
        s = t["source"]
        out["sources_leased"] = conn.execute(select(func.count()).select_from(s).where(
            s.c.lease_expires_at > now)).scalar() or 0
    if oldest is not None:
        created = aware(oldest.created_at)
        out["oldest_pending_delivery"] = {"id": oldest.id, "created_at": created.isoformat(),
                                          "age_seconds": round((now - created).total_seconds(), 1)}
    else:
        out["oldest_pending_delivery"] = None
    out["oldest_article"] = aware(first).isoformat() if first else None
    out["database_bytes"] = database_size(engine)
    return out


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@click.command()
@click.option("--url", help="Base URL of the instance (default: from [http] listen in the config).")
@click.option("--live", is_flag=True, help="Only check that the process answers (/healthz), not /readyz.")
@click.option("--timeout", default=5.0, show_default=True)
@click.pass_context
def health(ctx: click.Context, url: str | None, live: bool, timeout: float) -> None:
    """Check a running daemon over HTTP; exit 0 when ready (for Docker's HEALTHCHECK)."""
    import httpx

    if url is None:
        config = load_config_or_exit(ctx)
        if not config.http.listen:
            raise click.ClickException("no [http] listen in the config: nothing to check")
        host, port = config.http.host_port
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    path = "/healthz" if live else "/readyz"
    try:
        resp = httpx.get(url.rstrip("/") + path, timeout=timeout)
    except httpx.HTTPError as exc:
        click.echo(f"unhealthy: {url}{path}: {type(exc).__name__}: {exc}", err=True)
        ctx.exit(1)
    if resp.status_code != 200:
        click.echo(f"unhealthy: {url}{path}: HTTP {resp.status_code}: {resp.text.strip()}", err=True)
        ctx.exit(1)
    click.echo(f"healthy: {resp.text.strip()}")

@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (a report, not a list).")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts, database size and the oldest pending delivery."""
    with database(load_config_or_exit(ctx)) as engine:
        st = collect_stats(engine)
    if as_json:
        click.echo(json.dumps(st, indent=1))
        return
    for k in ("sources", "articles", "matches", "alerts", "deliveries"):
        click.echo(f"{k:<12} {st[k]:>10}")
    for status, n in st["deliveries_by_status"].items():
        click.echo(f"  {status:<10} {n:>10}")
    click.echo(f"{'leased':<12} {st['sources_leased']:>10}  sources being polled now")
    click.echo(f"{'database':<12} {_human(st['database_bytes']):>10}")
    oldest = st["oldest_article"]
    click.echo("oldest article: " + (f"first seen {human_when(datetime.fromisoformat(oldest))}" if oldest else "none"))
    op = st["oldest_pending_delivery"]
    if op:
        click.echo(f"oldest pending delivery: id {op['id']}, queued {human_duration(op['age_seconds'])} ago")
    else:
        click.echo("oldest pending delivery: none")

@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool) -> None:
    """Delete what [retention] says is old (the daemon also does it every [retention] interval)."""
    from monitor.ops.retention import prune as do_prune

    config = load_config_or_exit(ctx)
    with database(config, migrate=not dry_run) as engine:
        result = do_prune(engine, config.retention, dry_run=dry_run)
    if dry_run and result.total:
        click.echo("would delete " + ", ".join(plural(n, t) for t, n in sorted(result.deleted.items())))
    else:
        click.echo(str(result))  # "nothing to prune" / "deleted ..."


COMMANDS = [run, check_config, db, health, stats, prune]
