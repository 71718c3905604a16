"""The long-running service: a claim loop over due sources, driven by APScheduler.

Every ``claim_interval`` the daemon leases the sources that are due (``next_poll_at`` reached,
not disabled, not leased by a live instance) and polls each one once; the fetch stage then writes
the next ``next_poll_at``. Several instances on one PostgreSQL database split the sources this
way (``monitor.store.leases``); on SQLite one instance holds the database. The other periodic
jobs (delivery, lease renewal, retention, the systemd watchdog) run on the same in-process
scheduler, which is never shared between instances.

Signals: SIGTERM/SIGINT stop claiming, let work in flight finish within ``shutdown_deadline``,
release the leases and exit 0 (received while starting, before the daemon says it runs: it never
says so). SIGHUP reloads the config after validating it (received while starting: once running).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import monitor.stages  # noqa: F401  (every stage's config checks, for reloads)
from monitor import collector
from monitor.config import Config, ConfigError, SourceConfig, load_config
from monitor.embed.check import EmbedderUnavailable
from monitor.fetch import load_tls_in_background
from monitor.ops import logs, systemd
from monitor.pipeline import Pipeline, PollReport
from monitor.store.db import DatabaseNotWritable, create_db_engine, upgrade, write_health
from monitor.store.leases import (
    AlreadyRunning,
    InstanceLock,
    claim_due_sources,
    release_leases,
    renew_leases,
    spread_first_polls,
)
from monitor.util import human_duration, instance_id, plural

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.web import Console

log = logging.getLogger(__name__)

FIRST_POLLS_AHEAD = 0.5  # seconds the first claim's polls run before the scheduler is started


def _counts(cfg: Config) -> str:
    """``3 sources, 1 rule, 2 channels``: what a config holds, as start-up and reload say it."""
    return ", ".join(plural(n, w) for n, w in ((len(cfg.sources), "source"), (len(cfg.rules), "rule"),
                                                (len(cfg.channels), "channel")))


def _intervals(cfg: Config) -> dict[str, float]:
    """Seconds between runs of each periodic job (but the watchdog's), by job id: what start-up
    schedules and what a reload reschedules. A lease is renewed three times in its life."""
    return {"claim": cfg.monitor.claim_interval, "renew": max(cfg.monitor.lease / 3, 0.5),
            "deliver": cfg.monitor.delivery_interval, "retention": cfg.retention.interval}


def _sync_sources(pipeline: Pipeline) -> None:
    try:
        pipeline.sync_sources()
    except IntegrityError:
        # Another instance inserted the same new source at the same moment; it exists now.
        pipeline.sync_sources()
    n, window = spread_first_polls(pipeline.engine, {sc.name: sc.interval for sc in pipeline.config.sources})
    if n:
        log.info("%s never polled: %s", plural(n, "source"), "polling them now" if window < 1
                 else f"first polls spread over the next {human_duration(window)}")


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.engine = create_db_engine(config.database_url)
        self.owner = instance_id()
        self.lock = InstanceLock(config.database_url)
        self.pipeline: Pipeline | None = None
        self.scheduler: AsyncIOScheduler | None = None
        # The Prometheus counters (monitor.ops.metrics), kept only where /metrics is served
        # ([http] listen, read at start): nobody else reads them, and prometheus_client is then
        # not imported on the way to the first poll.
        self.metrics: ModuleType | None = None
        self.stop_event = asyncio.Event()
        self.polls: dict[int, asyncio.Task[None]] = {}  # source id -> its poll
        self.background: set[asyncio.Task[object]] = set()  # deliveries, retention, reloads
        self._claim_lock = asyncio.Lock()
        # Two quick SIGHUPs: the second reload waits for the first, so they never interleave
        # (each load keeps its own secrets; the last config read wins, whole).
        self._reload_lock = asyncio.Lock()
        self._backlog = False
        self._failing: dict[str, str] = {}  # job name -> its last error, while it keeps failing
        self._hup_pending = False  # a SIGHUP arrived before the scheduler existed
        self._set_sources(config)

    def _set_sources(self, config: Config) -> None:
        self.source_configs: dict[str, SourceConfig] = {sc.name: sc for sc in config.sources}
        self.intervals: dict[str, float] = {sc.name: sc.interval for sc in config.sources}

    # -- the claim loop --------------------------------------------------------------------
    async def _claim(self) -> None:
        """Lease due sources up to the free poll slots and start a poll for each."""
        if self.stop_event.is_set() or self.pipeline is None or self._claim_lock.locked():
            return
        async with self._claim_lock:
            free = self.config.monitor.max_polls - len(self.polls)
            if free <= 0:
                self._backlog = True
                return
            claims = await asyncio.to_thread(claim_due_sources, self.engine, self.owner, self.intervals,
                                             limit=free, lease=self.config.monitor.lease)
            self._backlog = len(claims) == free
            if self.stop_event.is_set():  # a stop arrived while claiming: give them back at once
                await asyncio.to_thread(release_leases, self.engine, self.owner, [c.source_id for c in claims])
                return
            gone = [c.source_id for c in claims if c.name not in self.source_configs]
            if gone:  # removed by a reload while claiming
                await asyncio.to_thread(release_leases, self.engine, self.owner, gone)
            for c in claims:
                sc = self.source_configs.get(c.name)
                if sc is None:
                    continue
                if c.taken_over_from:
                    if self.metrics is not None:
                        self.metrics.TAKEOVERS.inc()
                    log.info("source %s (%s): lease of %s expired; taking the source over", c.source_id,
                             c.name, c.taken_over_from, extra={"source_id": c.source_id})
                self.polls[c.source_id] = asyncio.create_task(self._poll(c.source_id, sc, self.pipeline),
                                                              name=f"poll:{c.source_id}")

    async def _poll(self, source_id: int, sc: SourceConfig, pipeline: Pipeline) -> None:
        token = logs.SOURCE_ID.set(source_id)
        started = time.monotonic()
        released = False
        try:
            # The transaction recording the poll also ends the lease (one commit, not two).
            report = await pipeline.poll(sc, release_lease=self.owner)
            released = report.lease_released
            if self.metrics is not None:
                self.metrics.observe_poll(report.status, time.monotonic() - started, report.new_articles,
                                          report.alerts, report.deferred)
            if report.alerts and pipeline.alert_hold > 0:  # due then (the periodic run is a fallback)
                asyncio.get_running_loop().call_later(pipeline.alert_hold + 0.05, self._kick_delivery)
            elif report.alerts:
                self._kick_delivery()
        except asyncio.CancelledError:
            raise  # shutdown past its deadline; the shutdown releases every lease
        except Exception:
            if self.metrics is not None:
                self.metrics.observe_poll("error", time.monotonic() - started, 0, 0, 0)
            log.exception("source %s (%s): poll failed unexpectedly; retried after its interval",
                          source_id, sc.name)
        finally:
            logs.SOURCE_ID.reset(token)
            self.polls.pop(source_id, None)
        if not released:
            try:
                await asyncio.to_thread(release_leases, self.engine, self.owner, [source_id])
            except Exception as exc:  # the lease then simply expires
                log.warning("source %s: lease not released (%s); it expires on its own", source_id, exc)
        if self._backlog:
            self._kick(self._claim)

    async def _renew(self) -> None:
        if self.polls:
            await asyncio.to_thread(renew_leases, self.engine, self.owner, list(self.polls),
                                    self.config.monitor.lease)

    # -- other periodic jobs -----------------------------------------------------------------
    async def _deliver(self) -> None:
        """Wake the delivery lanes: every channel not busy starts sending what is due at once,
        and a busy one looks again before it ends (``Deliverer.wake``). Returns without waiting
        for them: a channel hanging in a send (a mail server that never answers, up to its
        ``timeout``) must not hold the next wake-up, and with it the other channels' new alerts
        and retries. Each lane is watched in ``background`` (a stop waits for it; its failure is
        logged as this job's).

        Claiming between instances is the delivery stage's job (leases in the outbox)."""
        if self.pipeline is None:
            return
        for lane in await self.pipeline.deliverer.wake(keep_connections=True):
            self._watch(lane)

    def _watch(self, lane: asyncio.Task[None]) -> None:
        """Keep a delivery lane in ``background`` until it ends, its failure logged as a failure
        of ``deliver``. Added at once, not when the watch first runs: a stop arriving meanwhile
        counts it among the work in flight, and cancels it past the deadline (its send's claim
        is then handed back, not lost)."""
        task: asyncio.Task[object] = asyncio.create_task(self._logged("deliver", lambda: lane),
                                                         context=contextvars.Context())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _retention(self) -> None:
        from monitor.ops.retention import prune

        result = await asyncio.to_thread(prune, self.engine, self.config.retention)
        if result.total:
            log.info("retention: %s", result)

    def _watchdog(self) -> None:
        systemd.notify("WATCHDOG=1")

    def _kick_delivery(self) -> None:
        self._kick(self._deliver)

    def _kick(self, job: Callable[[], Awaitable[None]]) -> None:
        if not self.stop_event.is_set():
            # A fresh context: a delivery kicked from a poll is not about that poll's source.
            task: asyncio.Task[object] = asyncio.create_task(self._tracked(job), context=contextvars.Context())
            self.background.add(task)
            task.add_done_callback(self.background.discard)

    def _periodic(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.background.add(task)
            try:
                await self._tracked(job)
            except asyncio.CancelledError:
                if not self.stop_event.is_set():
                    raise
                # Cancelled by the stop past its deadline, which says so: no error for the scheduler.
            finally:
                if task is not None:
                    self.background.discard(task)
        return run

    async def _tracked(self, job: Callable[[], Awaitable[None]]) -> None:
        if self.stop_event.is_set() and job is not self._deliver:
            return
        await self._logged(getattr(job, "__name__", "job").strip("_"), job)

    async def _logged(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job``, logging its failure under ``name``."""
        try:
            await job()
        except Exception as exc:
            # A database outage fails every job every second: the first failure with its
            # traceback, repeats of the same error as one line, and a line when it recovers.
            summary = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if self._failing.get(name) == summary:
                log.debug("%s failed again: %s", name, summary)
            else:
                log.exception("%s failed", name)
            self._failing[name] = summary
        else:
            if self._failing.pop(name, None) is not None:
                log.info("%s works again", name)

    # -- readiness ---------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        if self.scheduler is None or not self.scheduler.running or self.stop_event.is_set():
            return False, "scheduler not running"
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return False, f"database unreachable: {type(exc).__name__}"
        writes_ok, why = write_health(self.engine).ready()
        if not writes_ok:
            return False, why
        return True, f"ready: {len(self.polls)} polls in flight"

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> int:
        # First thing: a stop that arrives during start-up (migrations can take a while) is then
        # a clean stop once started, not a kill.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        try:
            self.lock.acquire()
            try:
                return await self._run()
            finally:
                self.lock.release()
        except (AlreadyRunning, DatabaseNotWritable) as exc:
            log.error("not starting: %s", exc)
            return 1

    async def _run(self) -> int:
        cfg = self.config
        # The fetcher's TLS context (the CA bundle, read without the interpreter lock) loads on a
        # thread beside the schema check, the pipeline and the source sync: the first request
        # waits for it otherwise, as those no longer take long enough to hide it (issue 15).
        load_tls_in_background()
        await asyncio.to_thread(upgrade, self.engine)
        try:
            self.pipeline = Pipeline(cfg, self.engine, alert_hold=cfg.monitor.alert_hold)
        except EmbedderUnavailable as exc:  # refuse to start rather than drop about() clauses
            log.error("not starting: %s", exc)
            self.engine.dispose()
            return 1
        await asyncio.to_thread(_sync_sources, self.pipeline)
        http = None
        if cfg.http.listen:
            from monitor.ops import metrics
            from monitor.web import AccessError, WebServer

            host, port = cfg.http.host_port
            self.metrics = metrics
            metrics.attach_database(self.engine)
            try:
                http = WebServer(host, port, self._console(asyncio.get_running_loop())).start()
            except (OSError, AccessError) as exc:
                why = exc.strerror or exc if isinstance(exc, OSError) else exc
                log.error("[http] listen = %r: cannot listen there: %s", cfg.http.listen, why)
                await self.pipeline.aclose()
                self.engine.dispose()
                return 1
            base = f"http://{host}:{http.port}" if ":" not in host else f"http://[{host}]:{http.port}"
            log.info("http: web console at %s/ (and /healthz, /readyz, /metrics)", base)

        collector.freeze()  # what start-up imported lives as long as the process
        gc.enable()  # off during start-up (`monitor run`)
        # The first claim before the scheduler exists: APScheduler, and multiprocessing which its
        # thread-pool executor imports, are ~25-40 ms of CPU the first polls' requests no longer
        # wait for. The scheduler starts once those polls are done, or FIRST_POLLS_AHEAD later
        # (deliveries and the other jobs wait that long at most).
        await self._tracked(self._claim)
        if self.polls:
            await asyncio.wait(list(self.polls.values()), timeout=FIRST_POLLS_AHEAD)
        # A stop that arrived while starting stops here: the daemon never said it was running
        # (no "monitor running", no READY=1 to systemd), and no scheduler is started for it.
        scheduler = None if self.stop_event.is_set() else self._start_scheduler()
        await self.stop_event.wait()

        systemd.notify("STOPPING=1", "STATUS=stopping")
        if scheduler is not None:
            # No new runs; those in progress (a delivery run, a claim) are work in flight like the
            # polls. Not shutdown() yet: APScheduler's asyncio executor cancels its running jobs
            # at once, a delivery in flight included, with an ERROR and a traceback for each.
            scheduler.pause()
        self.pipeline.deliverer.stop()  # the delivery in flight finishes; no new claims
        inflight: set[asyncio.Task[object]] = set(self.polls.values()) | set(self.background)
        deadline = self.config.monitor.shutdown_deadline
        log.info("stopping: no new claims; finishing %s in flight (deadline %s)", plural(len(inflight), "job"),
                 human_duration(deadline))
        if inflight:
            _, pending = await asyncio.wait(inflight, timeout=deadline)
            if pending:
                log.warning("stopping: %s still running after %s; cancelled", plural(len(pending), "job"),
                            human_duration(deadline))
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        if scheduler is not None:
            scheduler.shutdown(wait=False)  # none of its runs is left
        released = await asyncio.to_thread(release_leases, self.engine, self.owner)
        if released:
            log.info("released %s", plural(released, "source lease"))
        if http is not None:
            http.stop()
            if self.metrics is not None:
                self.metrics.detach_database()
        await self.pipeline.aclose()
        pool = sys.modules.get("monitor.extract.pool")  # imported with the first page to extract
        if pool is not None:
            await asyncio.to_thread(pool.shutdown)
        self.engine.dispose()
        log.info("stopped")
        return 0

    def _start_scheduler(self) -> AsyncIOScheduler:
        """Start the periodic jobs and say the daemon is running (log, systemd's READY=1).

        Built from the config current now, not the one read at start: a console reload during
        the first polls has already swapped it, and nothing reschedules the jobs for it later.
        A SIGHUP that arrived while starting is reloaded from here (it had no jobs to reschedule)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # not for `run --once`

        cfg = self.config
        self.scheduler = scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        now = datetime.now(UTC)
        # Claim guards itself against running twice at once (a lock), and a delivery run only
        # wakes the channels' lanes (each at most once), so the scheduler may start them while a
        # previous run is still busy.
        every = _intervals(cfg)
        scheduler.add_job(self._periodic(self._claim), "interval", seconds=every["claim"],
                          next_run_time=now, id="claim", max_instances=2)
        scheduler.add_job(self._periodic(self._renew), "interval", seconds=every["renew"], id="renew")
        scheduler.add_job(self._periodic(self._deliver), "interval", seconds=every["deliver"],
                          next_run_time=now, id="deliver", max_instances=2)
        scheduler.add_job(self._periodic(self._retention), "interval", seconds=every["retention"],
                          next_run_time=now + timedelta(seconds=min(60.0, every["retention"])), id="retention")
        wd = systemd.watchdog_interval()
        if wd:
            scheduler.add_job(self._watchdog, "interval", seconds=wd, next_run_time=now, id="watchdog")
        scheduler.start()
        log.info("monitor running: %s (instance %s)", _counts(cfg), self.owner)
        if not cfg.rules:
            log.warning("no [[rule]] in %s: articles are stored and grouped, but nothing will alert", cfg.path)
        systemd.notify("READY=1", f"STATUS=running: {len(cfg.sources)} sources", f"MAINPID={os.getpid()}")
        # The extraction workers start with the first page to extract (see monitor.extract.pool).
        if self._hup_pending:
            self._hup_pending = False
            log.info("reloading %s (SIGHUP received while starting)", cfg.path)
            self._start_reload()
        return scheduler

    def _console(self, loop: asyncio.AbstractEventLoop) -> Console:
        """The web console, reading this daemon's config and reloading it as SIGHUP does."""
        from monitor.web import Console, Passwords

        def reload() -> tuple[bool, str]:
            if self.stop_event.is_set():
                return False, "The daemon is stopping; the saved config applies at its next start."
            log.info("web console saved %s: reloading", self.config.path)
            ok = asyncio.run_coroutine_threadsafe(self.reload(), loop).result(timeout=120)
            return ok, ("The running daemon reloaded it." if ok else
                        "The running daemon rejected it (see its log) and keeps the previous config.")

        return Console(engine=self.engine, config=lambda: self.config, reload=reload, ready=self.ready,
                       passwords=Passwords.from_env())

    def _on_stop(self, sig: signal.Signals) -> None:
        if not self.stop_event.is_set():
            log.info("received %s", sig.name)
        self.stop_event.set()

    def _on_hup(self) -> None:
        if self.stop_event.is_set():
            log.info("received SIGHUP while stopping: ignored")
        elif self.scheduler is None:
            # Migrations, or the first polls: the reload runs once the scheduler exists, whose
            # jobs it reschedules (and before that, during migrations, there is no pipeline yet).
            self._hup_pending = True
            log.info("received SIGHUP while starting: reloading %s once started", self.config.path)
        else:
            log.info("received SIGHUP: reloading %s", self.config.path)
            self._start_reload()

    def _start_reload(self) -> None:
        task: asyncio.Task[object] = asyncio.create_task(self.reload())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def reload(self) -> bool:
        """Swap in a new config after validating it; any problem keeps the running one."""
        async with self._reload_lock:
            # A console reload while starting (the first polls' window) tells systemd nothing:
            # READY=1 is start-up's to send, once the scheduler runs, and never if a stop came first.
            tell = self.scheduler is not None
            if tell:
                systemd.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                return await self._reload()
            finally:
                if tell:
                    systemd.notify("READY=1", f"STATUS=running: {len(self.config.sources)} sources")

    def _count_reload(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.RELOADS.labels(result).inc()

    async def _reload(self) -> bool:
        old_cfg, old = self.config, self.pipeline
        try:
            new_cfg = await asyncio.to_thread(load_config, old_cfg.path)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("config reload: %s", p)
            log.error("config reload rejected (%d problems); still running the previous config",
                      len(exc.problems))
            self._count_reload("rejected")
            return False
        if new_cfg.database_url != old_cfg.database_url:
            log.error("config reload rejected: [monitor] database changed; restart to switch databases")
            self._count_reload("rejected")
            return False
        try:
            pipeline = Pipeline(new_cfg, self.engine, alert_hold=new_cfg.monitor.alert_hold)
            await asyncio.to_thread(pipeline.prepare)  # the new rules compile before the swap
            await asyncio.to_thread(_sync_sources, pipeline)
        except Exception as exc:
            log.error("config reload rejected: %s: %s; still running the previous config", type(exc).__name__, exc)
            self._count_reload("rejected")
            return False
        if new_cfg.http != old_cfg.http:
            log.warning("config reload: [http] changes take effect at the next restart")
        logs.set_secrets(new_cfg.secrets)
        self.config, self.pipeline = new_cfg, pipeline
        self._set_sources(new_cfg)
        if old is not None:
            # The old config's delivery lanes claim nothing more; each channel's lane under the
            # new one starts once the old one's send in flight ends (one send at a time on a
            # channel), and goes on with what the old one left at once, not at the next run.
            pipeline.deliverer.follow(old.deliverer)
            self._kick_delivery()
        if self.scheduler is not None:
            for job_id, seconds in _intervals(new_cfg).items():
                self.scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
        self._count_reload("ok")
        log.info("config reloaded: %s", _counts(new_cfg))
        if old is not None:
            # Polls started before the swap still use the old pipeline; close it after them.
            using_old = [t for t in self.polls.values() if not t.done()]

            async def close_old() -> None:
                nonlocal old
                if using_old:
                    await asyncio.wait(using_old)
                assert old is not None
                await old.aclose()
                old = None
                # Start-up's and prepare()'s freeze put the old pipeline (compiled rules, story
                # index, fetcher: objects in reference cycles) out of the collector's reach:
                # handed back and collected once, or every reload would keep it for good.
                collector.release()
            self._kick(close_old)
        return True


async def run_once(config: Config, everything: bool) -> int:
    lock = InstanceLock(config.database_url)
    engine = create_db_engine(config.database_url)
    try:
        lock.acquire()
        upgrade(engine)
    except (AlreadyRunning, DatabaseNotWritable) as exc:
        log.error("not starting: %s", exc)
        engine.dispose()
        lock.release()
        return 1
    try:
        try:
            pipeline = Pipeline(config, engine)  # no alert_hold: it delivers after its last poll
        except EmbedderUnavailable as exc:
            log.error("not starting: %s", exc)
            return 1
        gc.enable()  # off during start-up (`monitor run`)
        try:
            reports = await pipeline.run_once(everything=everything, last=True)
        finally:
            await pipeline.aclose()
    finally:
        engine.dispose()
        lock.release()
    return once_summary(reports)


EXIT_ALL_SOURCES_FAILED = 3  # `run --once`: every source it polled failed (an outage cron should see)


def once_summary(reports: list[PollReport]) -> int:
    """Log what one cycle did and choose its exit status: 0, or 3 when every polled source failed."""
    failed = [r for r in reports if r.status == "error"]
    deferred = sum(r.deferred for r in reports)
    # Entries the database refused for now (``EntryDeferred``): cron's log says the next run takes them.
    left = f"; {plural(deferred, 'new entry')} left to the next poll" if deferred else ""
    updated = sum(r.updated_articles for r in reports)  # read again, their entries having changed
    log.info("run finished: %s polled, %d failed, %s%s, %s created%s", plural(len(reports), "source"), len(failed),
             plural(sum(r.new_articles for r in reports), "new article"),
             f", {plural(updated, 'updated article')}" if updated else "",
             plural(sum(r.alerts for r in reports), "alert"), left)
    if failed and len(failed) == len(reports):
        reasons = "; ".join(f"{r.source}: {r.error}" for r in failed[:3]) + ("; ..." if len(failed) > 3 else "")
        log.error("every source polled failed (%s): exiting with status %d", reasons, EXIT_ALL_SOURCES_FAILED)
        return EXIT_ALL_SOURCES_FAILED
    return 0
