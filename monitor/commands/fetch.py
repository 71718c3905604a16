"""``monitor add-source URL`` and ``monitor import-opml FILE``: config entries for new sources."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from monitor.config import Config, FetchSettings


def register(cli: click.Group) -> None:
    cli.add_command(add_source)
    cli.add_command(import_opml)


def _config_if_any(ctx: click.Context) -> Config | None:
    """The config when there is one (its [fetch] settings and contact apply); these commands
    also work before a config exists."""
    from monitor.cli import load_config_or_exit

    path: Path = ctx.find_root().obj["config_path"]
    return load_config_or_exit(ctx) if path.exists() else None


@click.command("add-source")
@click.argument("url")
@click.option("--allow-private-networks", is_flag=True, help="Allow a loopback or private address.")
@click.pass_context
def add_source(ctx: click.Context, url: str, allow_private_networks: bool) -> None:
    """Find how to watch URL (its feed, the page as a listing, or a sitemap) and print the
    [[source]] entry to add to the config."""
    from monitor.fetch import Fetcher, FetchError
    from monitor.sources.discover import describe, unique_names

    config = _config_if_any(ctx)
    settings = config.fetch if config else FetchSettings()

    async def main() -> str:
        async with Fetcher(settings, config.monitor.contact if config else "") as fetcher:
            entry = await describe(fetcher, url, True if allow_private_networks else None)
        unique_names([entry], {s.name for s in config.sources} if config else set())
        if config and any(s.url == entry.url for s in config.sources):
            entry.comments.append(f"note: {config.path} already has a source with this URL")
        if allow_private_networks:
            entry.comments.append("a private address: add allow_private_networks = true")
        return entry.toml()

    try:
        click.echo(asyncio.run(main()), nl=False)
    except (FetchError, ValueError) as exc:
        click.echo(f"cannot add {url}: {exc}", err=True)
        ctx.exit(1)


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
        click.echo(f"{len(new)} sources appended to {config.path}" + (f", {skipped} already there" if skipped else ""), err=True)
        return
    click.echo(text, nl=False)
    click.echo(f"{len(new)} sources" + (f", {skipped} already in the config" if skipped else ""), err=True)
