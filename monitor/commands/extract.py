"""``monitor extract [--json] INPUT...``: what the pipeline would extract from a page.

Lets a user check a site before adding it as a source, or see why an alert quoted what it did.
Each INPUT is a URL (fetched through the same fetcher as the daemon, with the config's fetch
settings when a config file exists) or a path to a saved HTML file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from monitor.config import FetchSettings
from monitor.util import HTML_ACCEPT


def _settings(ctx: click.Context) -> tuple[FetchSettings, str]:
    """The config's fetch settings; defaults without a config. Extracting needs no channels or
    secrets, so a config that fails only on those must not stop it: its problems are shown."""
    from monitor.config import ConfigError, load_config

    path: Path = ctx.find_root().obj["config_path"]
    if not path.exists():
        return FetchSettings(), ""
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s), using default fetch settings "
                   f"(first: {exc.problems[0]})", err=True)
        return FetchSettings(), ""
    return config.fetch, config.monitor.contact


async def _fetch(urls: list[str], settings: FetchSettings, contact: str) -> dict[str, Any]:
    from monitor.fetch import Fetcher, FetchError

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


def register(cli: click.Group) -> None:
    @cli.command("extract")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per input per line.")
    @click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
    @click.pass_context
    def extract(ctx: click.Context, as_json: bool, inputs: tuple[str, ...]) -> None:
        """Extract article text and metadata from URLs or saved HTML files."""
        has_urls = any(i.lower().startswith(("http://", "https://")) for i in inputs)
        settings, contact = _settings(ctx) if has_urls else (FetchSettings(), "")
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
