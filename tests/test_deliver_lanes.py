"""One hanging channel holds only itself: each channel's lane runs on its own, so a mail server
that accepts the connection and never answers (not even its greeting) holds neither the
webhook's new alerts nor its retries, up to the mail channel's ``timeout`` or beyond; and a
busy channel stays one lane (one SMTP session at a time), across a reload too."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from monitor.deliver.base import build_channel
from monitor.deliver.worker import Deliverer, DeliverySettings
from monitor.store import Delivery, session_scope
from tests.deliver_helpers import add_alerts, store
from tests.harness import email_channel, rule, source, start_daemon, webhook_channel, write_config
from tests.servers import Page, Request, Site, wait_for

BOUND = 30.0  # seconds: an upper bound on "promptly" for a loaded machine, far below the mail's hang


class BlackHole:
    """A TCP server on loopback that accepts every connection and never writes a byte (no SMTP
    greeting): an SMTP client waits for it until its own deadline."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self.accepted.append(conn)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.accepted)

    def open_connections(self) -> int:
        """Connections the client has not closed (a peek that finds no EOF)."""
        n = 0
        with self._lock:
            for conn in self.accepted:
                conn.setblocking(False)
                try:
                    n += conn.recv(1, socket.MSG_PEEK) != b""
                except BlockingIOError:
                    n += 1  # nothing to read and no EOF: still open
                except OSError:
                    pass
        return n

    def stop(self) -> None:
        self.sock.close()
        with self._lock:
            for conn in self.accepted:
                conn.close()


def _refuse_first(site: Site, path: str) -> None:
    """``path`` answers its first POST with a 500 (a flaky receiver: retried), then 200."""
    def respond(req: Request) -> Page:
        first = len(site.posts(path)) == 1  # (the request is recorded before it is answered)
        return Page(b"busy" if first else b"{}", "text/plain" if first else "application/json", 500 if first else 200)
    site.pages[path] = respond


def test_a_webhook_is_not_held_by_a_mail_server_that_never_answers(database_url: str, webhook: Site) -> None:
    """Deliverer level, on both backends. The mail lane's first send hangs (60 s deadline);
    meanwhile the webhook's first attempt fails (500), a new alert reaches it at the next
    wake-up, and its retry at the wake-up after it falls due, all while the one SMTP session
    still hangs; the mail channel's second alert waits for its lane (no second session). A stop
    then cancels the hanging send: its delivery is handed back, pending, not lost."""
    engine = store(database_url)
    hole = BlackHole()
    _refuse_first(webhook, "/hook")
    clock = [datetime.now(UTC)]
    channels = {"mail": build_channel("mail", "email", {"host": "127.0.0.1", "port": hole.port, "tls": "none",
                                                       "from": "monitor@loopback.test", "to": ["a@loopback.test"],
                                                       "timeout": "60s"}),
                "hook": build_channel("hook", "webhook", {"url": webhook.url("/hook")})}
    w = Deliverer(engine, channels, DeliverySettings(retry_delay=30), clock=lambda: clock[0])

    def lane(tasks: list[asyncio.Task[None]], name: str) -> asyncio.Task[None]:
        found = [t for t in tasks if t.get_name() == f"deliver:{name}"]
        assert len(found) == 1, [t.get_name() for t in tasks]
        return found[0]

    async def scenario() -> None:
        add_alerts(engine, 1, ("mail", "hook"))
        clock[0] = datetime.now(UTC)  # (the alerts are due from their creation)
        first = await w.wake()
        mail = lane(first, "mail")
        # The webhook's lane ends after its refused attempt, the mail's still waits for a greeting.
        await asyncio.wait_for(lane(first, "hook"), BOUND)
        assert len(webhook.posts("/hook")) == 1
        assert await asyncio.to_thread(wait_for, lambda: hole.connections == 1, BOUND)
        assert not mail.done()

        add_alerts(engine, 1, ("mail", "hook"), first=1)
        clock[0] = datetime.now(UTC)
        t0 = time.monotonic()
        second = await w.wake()
        # The busy mail lane is told to look again, not started twice.
        assert {t.get_name() for t in second} == {"deliver:hook", "deliver:(unconfigured channels)"}
        await asyncio.wait_for(lane(second, "hook"), BOUND)
        new_alert = time.monotonic() - t0
        assert [r.body.count(b"Story 1") > 0 for r in webhook.posts("/hook")] == [False, True]

        clock[0] += timedelta(hours=1)  # the refused attempt's retry falls due
        t0 = time.monotonic()
        third = await w.wake()
        await asyncio.wait_for(lane(third, "hook"), BOUND)
        retry = time.monotonic() - t0
        assert len(webhook.posts("/hook")) == 3 and webhook.posts("/hook")[2].body.count(b"Story 0")

        # All that while the one SMTP session hung: one session, never a second beside it.
        assert not mail.done() and hole.connections == 1 and hole.open_connections() == 1
        print(f"webhook while the mail hangs: new alert {new_alert:.2f} s, retry {retry:.2f} s after the wake-up")
        assert new_alert < BOUND and retry < BOUND, (new_alert, retry)

        w.stop()  # as the daemon's stop past its deadline: the send in flight is cancelled
        mail.cancel()
        await asyncio.gather(mail, return_exceptions=True)
        assert await asyncio.to_thread(wait_for, lambda: hole.open_connections() == 0, BOUND)
        await w.aclose()

    try:
        asyncio.run(scenario())
        with session_scope(engine) as s:
            rows = sorted((d.channel, d.status, d.attempts) for d in s.exec(select(Delivery)).all())
        # The webhook: both sent (the first on its second attempt). The mail: the hanging send
        # handed back (no attempt counted), the second never claimed.
        assert rows == [("hook", "sent", 1), ("hook", "sent", 2), ("mail", "pending", 0), ("mail", "pending", 0)], rows
    finally:
        hole.stop()
        engine.dispose()


def _feed(title: str, guid: str) -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>n</title><link>http://example.org/</link>'
            f"<item><title>{title}</title><link>http://example.org/{guid}</link><guid>{guid}</guid>"
            f"<description>{title}.</description><pubDate>Wed, 24 Sep 2025 07:00:00 GMT</pubDate></item>"
            "</channel></rss>").encode()


def test_the_daemon_delivers_the_webhooks_alerts_and_retries_while_the_mail_server_hangs(
        tmp_path: Path, site: Site) -> None:
    """The QA repro, end to end: ``monitor run`` with a rule alerting a mail channel whose
    server accepts and never answers (10 min timeout) and a webhook whose first answer is a
    500. The webhook's retry arrives at the periodic run after it falls due, and a second
    alert (a source added by a SIGHUP reload) at once, while the first SMTP session still
    hangs; the mail channel never has two sessions, the reload's new lane included. SIGTERM
    then ends the hanging session within the shutdown deadline, and the mail alerts stay
    pending for the next start."""
    hole = BlackHole()
    site.pages["/first.xml"] = Page(_feed("Kazakhstan offers to mediate", "kz-1"), "application/rss+xml")
    site.pages["/second.xml"] = Page(_feed("Kazakhstan hosts the talks", "kz-2"), "application/rss+xml")
    _refuse_first(site, "/hook")
    db = tmp_path / "m.db"

    def config(*sources: str) -> Path:
        return write_config(tmp_path / "config.toml", f"sqlite:///{db}", *sources,
                            rule("kz", "Kazakhstan", ["mail-blackhole", "hook-ok"]),
                            email_channel("mail-blackhole", hole.port, timeout="10m"),
                            webhook_channel("hook-ok", site.url("/hook")),
                            monitor='delivery_interval = "1s"\nretry_delay = "1s"\nshutdown_deadline = "2s"',
                            tables="[dedup]\nevents = false\n")  # no sentence model to load

    first = source("first", site.url("/first.xml"), interval="1h", full_text=False)
    cfg = config(first)
    try:
        with start_daemon(cfg) as daemon:
            daemon.wait_running()
            assert wait_for(lambda: len(site.posts("/hook")) >= 1 and hole.connections >= 1, 120), \
                daemon.log_text()[-3000:]
            t0 = time.monotonic()
            # The refused alert's retry: due a second or so later, sent by the next periodic run.
            assert wait_for(lambda: len(site.posts("/hook")) >= 2, BOUND), daemon.log_text()[-3000:]
            retry = time.monotonic() - t0

            config(first, source("second", site.url("/second.xml"), interval="1h", full_text=False))
            t0 = time.monotonic()
            daemon.send_signal(signal.SIGHUP)
            assert wait_for(lambda: len(site.posts("/hook")) >= 3, BOUND), daemon.log_text()[-3000:]
            second = time.monotonic() - t0
            bodies = [r.body for r in site.posts("/hook")]
            assert b"mediate" in bodies[0] and b"mediate" in bodies[1] and b"hosts the talks" in bodies[2]
            # One SMTP session, still hanging: the new config's mail lane waits for the old one's.
            assert hole.connections == 1 and hole.open_connections() == 1
            assert "not delivered within" not in daemon.log_text()

            t0 = time.monotonic()
            code = daemon.stop(timeout=60)
            took = time.monotonic() - t0
        log = daemon.log_text()
        assert code == 0, log[-3000:]
        print(f"webhook while the mail hangs: retry {retry:.2f} s after the refused attempt, second alert "
              f"{second:.2f} s after SIGHUP; exit {took:.2f} s after SIGTERM")
        assert retry < BOUND and second < BOUND, (retry, second)
        assert took < BOUND, f"exited {took:.0f} s after SIGTERM (deadline 2 s)"
        with sqlite3.connect(db) as c:
            rows = c.execute("SELECT channel, status FROM delivery ORDER BY id").fetchall()
        assert sorted(rows) == [("hook-ok", "sent")] * 2 + [("mail-blackhole", "pending")] * 2, rows
    finally:
        hole.stop()
