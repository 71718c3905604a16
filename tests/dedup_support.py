"""Loopback outlets for the dedup tests and bench: each outlet is a Site with a feed and pages,
and the real pipeline (fetch, extract, dedup, match, outbox, delivery) runs in-process."""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from monitor.config import Config, load_config
from monitor.pipeline import Pipeline, PollReport
from monitor.store import create_db_engine, upgrade
from tests.harness import source, webhook_channel, write_config
from tests.newsroom import rss
from tests.servers import Page, Site


@dataclass
class Outlet:
    name: str
    site: Site
    items: list[tuple[str, str, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # an empty feed from the start: a 404 would put the source into backoff
        self.site.pages["/feed.xml"] = Page(rss(self.site, []), "application/rss+xml; charset=utf-8")

    def publish(self, path: str, title: str, body: bytes, when: datetime | None = None) -> str:
        """Serve a page and list it in the outlet's feed; returns its URL."""
        self.site.pages[path] = Page(body)
        self.items.insert(0, (path, title, when or datetime(2025, 9, 24, 8, tzinfo=UTC) + timedelta(minutes=len(self.items))))
        self.site.pages["/feed.xml"] = Page(rss(self.site, self.items), "application/rss+xml; charset=utf-8")
        return self.site.url(path)


def simple_page(title: str, paragraphs: list[str], header: str = "", footer: list[str] | None = None) -> bytes:
    e = html.escape
    body = "\n".join(f"<p>{e(p)}</p>" for p in [*paragraphs, *(footer or [])])
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<meta property="article:published_time" content="2025-09-24T10:15:00+00:00"></head>
<body><header><p>{e(header)}</p></header><main><article><h1>{e(title)}</h1>
{body}
</article></main></body></html>""".encode()


def outlets_config(path: Path, database_url: str, outlets: list[Outlet], rules: str, hook_url: str,
                   extra: str = "") -> Path:
    """Every outlet's feed, the given rules (TOML) and a webhook channel "hook"; ``extra`` holds
    more top-level tables (e.g. ``[dedup]``)."""
    return write_config(path, database_url, *(source(o.name, o.site.url("/feed.xml")) for o in outlets), rules,
                        webhook_channel("hook", hook_url), tables=extra)


class Runner:
    """The pipeline in-process on one config; ``cycle()`` polls every source and delivers."""

    def __init__(self, config_path: Path):
        self.config: Config = load_config(config_path, env={})
        self.engine: Engine = create_db_engine(self.config.database_url)
        upgrade(self.engine)

    def cycle(self, sources: list[str] | None = None) -> list[PollReport]:
        async def go() -> list[PollReport]:
            p = Pipeline(self.config, self.engine)
            try:
                p.sync_sources()
                todo = [sc for sc in self.config.sources if sources is None or sc.name in sources]
                reports = [await p.poll(sc, force=True) for sc in todo]  # one after another: arrival order is known
                await p.deliver()
                return reports
            finally:
                await p.aclose()
        return asyncio.run(go())

    def close(self) -> None:
        self.engine.dispose()
