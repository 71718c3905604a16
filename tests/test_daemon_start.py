"""The daemon's start-up window: its first polls go out before the scheduler exists, which starts
when they are done (or ``FIRST_POLLS_AHEAD`` later). A stop, a SIGHUP or a console reload that
arrives in that window is honoured as it would be once running.

The daemon runs in the test's own process so that the window can be held open for as long as the
test needs: the first poll's feed answers only when the test releases it, and the window's time
limit is lifted (it would otherwise close 0.5 s after the claim, whatever the machine's load).
Signals are real ones, sent to this process; the test moves on from what the daemon has done (a
request arrived, a log line, the stop event), never from a sleep.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import select

import monitor.daemon
from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.ops import systemd
from monitor.store import Source, session_scope
from tests.harness import source, write_config
from tests.newsroom import rss
from tests.servers import Page, Request, Site

WAIT = 60.0  # seconds any step may take on a loaded machine; only a failing test waits that long


class HeldFeed:
    """A feed that answers only once the test releases it: the daemon's first poll, and with it
    the start-up window, lasts until then."""

    def __init__(self, site: Site, path: str = "/held.xml") -> None:
        self.url = site.url(path)
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._body = rss(site, [])
        site.pages[path] = self._answer

    def _answer(self, req: Request) -> Page:
        self.arrived.set()
        self.release.wait(2 * WAIT)
        return Page(self._body, "application/rss+xml")


@pytest.fixture
def notified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """What the daemon tells systemd, in order (no socket: the calls themselves are recorded)."""
    calls: list[tuple[str, ...]] = []

    def notify(*states: str) -> bool:
        calls.append(states)
        return True

    monkeypatch.setattr(systemd, "notify", notify)
    # The window ends when the held feed is released, not FIRST_POLLS_AHEAD after the claim.
    monkeypatch.setattr(monitor.daemon, "FIRST_POLLS_AHEAD", 10 * WAIT)
    yield calls
    gc.unfreeze()  # the daemon froze what start-up made (monitor.collector)


def _config(path: Path, feed: HeldFeed, *blocks: str, monitor: str = 'claim_interval = "0.2s"') -> Path:
    return write_config(path, f"sqlite:///{path.parent / 'monitor.db'}", source("held", feed.url), *blocks,
                        monitor=monitor, fetch='timeout = "120s"\nread_timeout = "120s"')


async def _until(cond: Callable[[], object], run: asyncio.Task[int], what: str) -> None:
    """Wait for ``cond`` (checked on the daemon's own loop), failing if the daemon exits first."""
    async def check() -> None:
        while not cond():
            assert not run.done(), f"the daemon exited before {what}"
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(check(), WAIT)
    except TimeoutError:
        pytest.fail(f"the daemon took over {WAIT:.0f} s {what}")


def _start(daemon: Daemon, feed: HeldFeed,
           in_window: Callable[[asyncio.Task[int]], Awaitable[None]],
           then: Callable[[asyncio.Task[int]], Awaitable[None]]) -> int:
    """Run the daemon; once its first poll has reached the held feed, ``in_window``; then release
    the feed and ``then``; return the daemon's exit status."""
    async def go() -> int:
        run = asyncio.create_task(daemon.run())
        try:
            await _until(feed.arrived.is_set, run, "its first poll")
            assert daemon.scheduler is None  # in the window
            await in_window(run)
            assert daemon.scheduler is None  # still in it: the poll is held
            feed.release.set()
            await then(run)
            return await asyncio.wait_for(run, WAIT)
        finally:
            feed.release.set()
            if not run.done():
                daemon.stop_event.set()
                await asyncio.wait_for(asyncio.shield(run), WAIT)
    return asyncio.run(go())


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "monitor.daemon"]


def test_a_stop_while_starting_stops_without_saying_running(tmp_path: Path, site: Site,
                                                           notified: list[tuple[str, ...]],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    feed = HeldFeed(site)
    daemon = Daemon(load_config(_config(tmp_path / "config.toml", feed)))

    async def stop(run: asyncio.Task[int]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        await _until(daemon.stop_event.is_set, run, "taking the SIGTERM")

    async def nothing(run: asyncio.Task[int]) -> None:
        pass

    with caplog.at_level(logging.INFO):
        assert _start(daemon, feed, stop, nothing) == 0
    said = _messages(caplog)
    assert "received SIGTERM" in said and said[-1] == "stopped", said
    assert not [m for m in said if m.startswith("monitor running")], said
    assert not [s for s in notified if "READY=1" in s], notified
    assert daemon.scheduler is None
    # The held poll was let finish, recorded, and its lease given back.
    with session_scope(daemon.engine) as s:
        held = s.exec(select(Source)).one()
    assert held.last_polled_at is not None and held.last_error is None and held.lease_owner is None


def test_a_sighup_while_starting_reloads_once_started(tmp_path: Path, site: Site,
                                                      notified: list[tuple[str, ...]],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    feed = HeldFeed(site)
    cfg = _config(tmp_path / "config.toml", feed)
    daemon = Daemon(load_config(cfg))
    site.pages["/second.xml"] = Page(rss(site, []), "application/rss+xml")

    def polled_second() -> bool:
        return any(r.path == "/second.xml" for r in site.requests)

    async def hup(run: asyncio.Task[int]) -> None:
        _config(cfg, feed, source("second", site.url("/second.xml")))
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: any("SIGHUP" in m for m in _messages(caplog)), run, "taking the SIGHUP")

    async def reloaded(run: asyncio.Task[int]) -> None:
        await _until(polled_second, run, "polling the source the reload added")
        assert len(daemon.config.sources) == 2
        daemon.stop_event.set()

    with caplog.at_level(logging.INFO):
        assert _start(daemon, feed, hup, reloaded) == 0
    said = _messages(caplog)
    assert "config reloaded: 2 sources, 0 rules, 0 channels" in said, said
    assert said.index("config reloaded: 2 sources, 0 rules, 0 channels") > \
        said.index(next(m for m in said if m.startswith("monitor running")))


def test_a_console_reload_while_starting_sets_the_schedule(tmp_path: Path, site: Site,
                                                           notified: list[tuple[str, ...]],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    feed = HeldFeed(site)
    cfg = _config(tmp_path / "config.toml", feed,
                  monitor='claim_interval = "7s"\ndelivery_interval = "11s"\nlease = "60s"\n'
                          '[retention]\ninterval = "2h"')
    daemon = Daemon(load_config(cfg))

    async def reload(run: asyncio.Task[int]) -> None:
        _config(cfg, feed, monitor='claim_interval = "13s"\ndelivery_interval = "17s"\nlease = "90s"\n'
                                   '[retention]\ninterval = "3h"')
        assert await daemon.reload()  # what the web console's save calls

    async def inspect(run: asyncio.Task[int]) -> None:
        await _until(lambda: daemon.scheduler is not None, run, "starting its scheduler")
        assert daemon.scheduler is not None
        assert intervals() == {"claim": 13, "renew": 30, "deliver": 17, "retention": 3 * 3600}
        # Once running, a reload reschedules every job, lease renewal included.
        _config(cfg, feed, monitor='claim_interval = "5s"\ndelivery_interval = "19s"\nlease = "120s"\n'
                                   '[retention]\ninterval = "4h"')
        assert await daemon.reload()
        assert intervals() == {"claim": 5, "renew": 40, "deliver": 19, "retention": 4 * 3600}
        daemon.stop_event.set()

    def intervals() -> dict[str, float]:
        assert daemon.scheduler is not None
        return {job.id: job.trigger.interval.total_seconds() for job in daemon.scheduler.get_jobs()}

    with caplog.at_level(logging.INFO):
        assert _start(daemon, feed, reload, inspect) == 0
    # systemd heard nothing of the reload before start-up's READY=1 (it would have taken that
    # reload's READY=1 as the daemon's).
    assert notified[0][0] == "READY=1" and f"MAINPID={os.getpid()}" in notified[0], notified
