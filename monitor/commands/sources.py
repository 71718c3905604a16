"""Sources: ``monitor add-source URL``, ``monitor import-opml FILE`` (config entries for new
sources) and ``monitor sources`` (each source's polling state)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.commands.common import (
    JSON_HELP,
    cut,
    database,
    echo_json_array,
    load_config,
    load_config_or_exit,
)
from monitor.util import plural

if TYPE_CHECKING:
    from monitor.config import Config


def _config_if_any(ctx: click.Context) -> Config | None:
    """The config when there is one (its [fetch] settings and contact apply); these commands
    also work before a config exists."""
    return load_config(ctx, "optional")


@click.command("add-source")
@click.argument("url")
@click.option("--allow-private-networks", is_flag=True, help="Allow a loopback or private address.")
@click.pass_context
def add_source(ctx: click.Context, url: str, allow_private_networks: bool) -> None:
    """Find how to watch URL (its feed, the page as a listing, or a sitemap) and print the
    [[source]] entry to add to the config."""
    from monitor.config import FetchSettings
    from monitor.fetch import Fetcher, FetchError
    from monitor.sources.discover import describe, unique_names

    config = _config_if_any(ctx)
    settings = config.fetch if config else FetchSettings()

    def already(u: str) -> str | None:
        return next((sc.name for sc in config.sources if sc.url == u), None) if config else None

    async def main() -> str:
        async with Fetcher(settings, config.monitor.contact if config else "") as fetcher:
            entry = await describe(fetcher, url, True if allow_private_networks else None)
        if already(entry.url) is not None:
            return ""  # said below
        unique_names([entry], {s.name for s in config.sources} if config else set())
        if allow_private_networks:
            entry.comments.append("a private address: add allow_private_networks = true")
        return entry.toml()

    if config and (name := already(url)) is not None:
        click.echo(f"{config.path} already has {url} (source {name!r}): nothing to add", err=True)
        return
    import asyncio

    try:
        text = asyncio.run(main())
    except (FetchError, ValueError) as exc:
        reason = str(exc).removeprefix(f"{url}: ")  # fetch errors start with the URL already
        click.echo(f"cannot add {url}: {reason}", err=True)
        ctx.exit(1)
    if not text and config:
        click.echo(f"{config.path} already watches this feed: {url} leads to a source there; nothing to add",
                   err=True)
        return
    click.echo(text, nl=False)


@click.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--append", is_flag=True, help="Append the new entries to the config file instead of printing them.")
@click.pass_context
def import_opml(ctx: click.Context, file: Path, append: bool) -> None:
    """Turn a feed reader's OPML export into [[source]] entries (URLs already in the config are
    skipped)."""
    from monitor.sources.discover import opml_entries, unique_names

    config = _config_if_any(ctx)
    try:
        entries = opml_entries(file.read_bytes())
    except ValueError as exc:
        click.echo(f"{file}: {exc}", err=True)
        ctx.exit(2)
    known = {s.url for s in config.sources} if config else set()
    new = unique_names([e for e in entries if e.url not in known],
                       {s.name for s in config.sources} if config else set())
    text = "\n".join(e.toml() for e in new)
    skipped = len(entries) - len(new)
    if append:
        if config is None:
            raise click.UsageError("--append needs a config file (--config PATH)")
        with config.path.open("a", encoding="utf-8") as f:
            f.write(f"\n# imported from {file.name}\n{text}")
        click.echo(f"{plural(len(new), 'source')} appended to {config.path}"
                   + (f", {skipped} already there" if skipped else ""), err=True)
        return
    click.echo(text, nl=False)
    click.echo(plural(len(new), "source") + (f", {skipped} already in the config" if skipped else ""), err=True)


def _iso(dt: datetime | None) -> str | None:
    from monitor.util import aware

    return None if dt is None else aware(dt).isoformat(timespec="seconds")


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.option("--reset", "reset", multiple=True, metavar="NAME",
              help="Poll NAME at the next run: clear its backoff, Retry-After and 410 mark (repeatable).")
@click.pass_context
def sources(ctx: click.Context, as_json: bool, reset: tuple[str, ...]) -> None:
    """Each source's polling state: where it is polled, when next, failures, broken or disabled."""
    from sqlmodel import select

    from monitor.store import Source, session_scope
    from monitor.store.page_health import page_health
    from monitor.store.source_table import source_warnings, stored_url
    from monitor.util import aware, human_delta, human_duration

    config = load_config_or_exit(ctx)
    with database(config) as engine, session_scope(engine) as s:
        rows = {r.name: r for r in s.exec(select(Source)).all()}
        health = page_health(s.connection(), [r.id for sc in config.sources if sc.full_text
                                              and (r := rows.get(sc.name)) is not None and r.id is not None])
        for name in reset:
            row = rows.get(name)
            if row is None:
                raise click.BadParameter(f"no stored source named {name!r} (known: {', '.join(sorted(rows)) or 'none'})",
                                         param_hint="--reset")
            row.next_poll_at = None
            row.disabled_at = None
            row.disabled_reason = None
            s.add(row)
            click.echo(f"{name}: will be polled at the next run", err=True)
        now = datetime.now(UTC)
        items: list[dict[str, Any]] = []
        lines: dict[str, str] = {}  # source -> its pages' health, for a person
        for sc in config.sources:
            r = rows.get(sc.name)
            if r is None:
                items.append({"name": sc.name, "type": sc.type, "url": stored_url(sc.url), "state": "new"})
                continue
            nxt = aware(r.next_poll_at)
            state = ("disabled" if r.disabled_at else "broken" if r.broken_since
                     else "failing" if r.consecutive_failures else "ok" if r.last_polled_at else "new")
            items.append({
                # As stored (secrets masked); masked again for a row stored before that, which
                # the next `monitor run` rewrites (``sync_source_row``).
                "name": sc.name, "type": sc.type, "url": stored_url(r.url),
                "config_url": stored_url(r.config_url) if r.config_url and r.config_url != r.url else None,
                "state": state, "consecutive_failures": r.consecutive_failures,
                "last_status": r.last_status, "last_polled_at": _iso(r.last_polled_at),
                "last_success_at": _iso(r.last_success_at),
                "next_poll_at": _iso(nxt), "next_poll_in_seconds": round((nxt - now).total_seconds()) if nxt else None,
                "broken_since": _iso(r.broken_since), "disabled_at": _iso(r.disabled_at),
                "last_error": r.disabled_reason or r.last_error,
                # what the last poll that read it noticed without failing (entries skipped, ...)
                "last_warnings": source_warnings(r.last_warnings), "last_warnings_at": _iso(r.last_warnings_at),
            })
            if (h := health.get(r.id or 0)) is not None:
                items[-1] |= {"recent_articles": h.recent, "recent_without_page": h.without_page,
                              "recent_page_error": h.last_reason}
                lines[sc.name] = h.line()
    if as_json:
        echo_json_array(items)
        return
    if not items:
        click.echo(f"no sources in {config.path}", err=True)
    for it in items:
        when = it.get("next_poll_in_seconds")
        due = "-" if it["state"] == "disabled" else "due" if when is None or when <= 0 else f"in {human_duration(when)}"
        last = f", polled {human_delta(datetime.fromisoformat(it['last_polled_at']), now)}" if it.get("last_polled_at") else ""
        line = f"{cut(it['name'], 28):28}  {it['state']:8}  {due:>10}  {it['url']}{last}"
        if it.get("last_error"):  # cut at a word; --json has the whole text
            line += f"\n{'':28}  ! {cut(str(it['last_error']), 100)}"
        if it.get("last_warnings"):  # the first of the last read's warnings (--json: all of them)
            more = len(it["last_warnings"]) - 1
            line += f"\n{'':28}  ? {cut(it['last_warnings'][0], 100)}" + (f" (and {more} more)" if more else "")
        if it["name"] in lines:  # the source's pages are not read: why (--json: recent_*)
            line += f"\n{'':28}  ~ {cut(lines[it['name']], 100)}"
        click.echo(line)


COMMANDS = [add_source, import_opml, sources]
