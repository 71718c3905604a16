"""The long-running service: APScheduler drives polls and deliveries; signals stop it cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import select

from monitor.config import Config, SourceConfig
from monitor.pipeline import Pipeline, _aware
from monitor.store.db import create_db_engine, session_scope, upgrade
from monitor.store.models import Source

log = logging.getLogger(__name__)
SHUTDOWN_DEADLINE = 60.0


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.engine = create_db_engine(config.database_url)
        self.pipeline: Pipeline | None = None
        self.stop_event = asyncio.Event()
        self.inflight: set[asyncio.Task[object]] = set()

    async def _tracked(self, fn: Callable[[], Awaitable[object]], what: str) -> None:
        if self.stop_event.is_set():
            return
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            await fn()
        except Exception:
            log.exception("%s failed", what)
        finally:
            if task is not None:
                self.inflight.discard(task)

    def _poll_job(self, sc: SourceConfig) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            assert self.pipeline is not None
            pipeline = self.pipeline
            await self._tracked(lambda: pipeline.poll(sc), f"poll of {sc.name}")
            await self._tracked(pipeline.deliver, "delivery")
        return job

    async def run(self) -> int:
        upgrade(self.engine)
        self.pipeline = pipeline = Pipeline(self.config, self.engine)
        pipeline.sync_sources()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1,
                                                                 "misfire_grace_time": None})
        now = datetime.now(UTC)
        with session_scope(self.engine) as s:
            next_at = {r.name: r.next_poll_at for r in s.exec(select(Source)).all()}
        for i, sc in enumerate(self.config.sources):
            first = next_at.get(sc.name)
            # Keep the stored schedule (no burst after a restart); spread never-polled sources.
            start = max(_aware(first), now) if first else now + timedelta(seconds=min(i * 0.2, 10))
            scheduler.add_job(self._poll_job(sc), "interval", seconds=sc.interval, next_run_time=start,
                              id=f"poll:{sc.name}", name=f"poll {sc.name}")
        scheduler.add_job(lambda: self._tracked(pipeline.deliver, "delivery"), "interval",
                          seconds=self.config.monitor.delivery_interval, next_run_time=now, id="deliver")
        scheduler.start()
        log.info("monitor running: %d sources, %d rules, %d channels", len(self.config.sources),
                 len(self.config.rules), len(self.config.channels))
        await self.stop_event.wait()
        log.info("stopping: finishing %d jobs in flight", len(self.inflight))
        scheduler.shutdown(wait=False)
        if self.inflight:
            _, pending = await asyncio.wait(set(self.inflight), timeout=SHUTDOWN_DEADLINE)
            for t in pending:
                t.cancel()
        await pipeline.aclose()
        self.engine.dispose()
        log.info("stopped")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        self.stop_event.set()


async def run_once(config: Config, everything: bool) -> int:
    engine = create_db_engine(config.database_url)
    upgrade(engine)
    pipeline = Pipeline(config, engine)
    try:
        reports = await pipeline.run_once(everything=everything)
    finally:
        await pipeline.aclose()
        engine.dispose()
    failed = [r for r in reports if r.status == "error"]
    log.info("run finished: %d sources polled, %d failed", len(reports), len(failed))
    return 0
