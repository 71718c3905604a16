"""Email on a real aiosmtpd server: plain, STARTTLS with a self-signed certificate, AUTH,
implicit TLS, multipart, Date/Message-ID, threading, and an outage of three cycles."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.deliver.base import build_channel
from monitor.deliver.worker import Deliverer, DeliverySettings
from tests.deliver_helpers import QUOTE, add_alerts, self_signed_cert, statuses, store
from tests.servers import body_text, free_port


class Box:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append(envelope)
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def _send(url: str, tmp_path: Path, opts: dict[str, Any], n: int = 1) -> Any:
    engine = store(url)
    add_alerts(engine, n, ("mail",))
    channel = build_channel("mail", "email", {"host": "127.0.0.1", "from": "monitor@loopback.test",
                                              "to": ["analyst@loopback.test"], **opts})
    report = asyncio.run(Deliverer(engine, {"mail": channel}).run())
    return engine, report


def test_plain_smtp_multipart_with_date_message_id_and_highlight(tmp_path: Path) -> None:
    box = Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        engine, report = _send(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, {"port": port, "tls": "none"})
    finally:
        ctl.stop()
    assert report.sent == 1 and statuses(engine) == {"sent": 1}
    [m] = box.messages
    assert m["Subject"] == "[kz] Story 0 <b>&</b>"
    assert m["Date"] and m["Message-ID"].endswith("@loopback.test>")
    assert m.get_content_type() == "multipart/alternative"
    text = body_text(m, "plain")
    html = body_text(m, "html")
    assert "*venue for negotiations*" in text and "— the minister" in text
    assert "<mark>venue for negotiations</mark>" in html
    assert "Story 0 &lt;b&gt;&amp;&lt;/b&gt;" in html  # the title is escaped in HTML
    assert box.envelopes[0].rcpt_tos == ["analyst@loopback.test"]


def test_starttls_with_self_signed_certificate_and_auth(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    box = Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
                     auth_required=True, auth_require_tls=True, authenticator=_auth)
    ctl.start()
    try:
        opts = {"port": port, "tls": "starttls", "username": "alerts", "password": "s3cret",
                "ca_file": str(cert)}
        engine, report = _send(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, opts)
        assert report.sent == 1 and len(box.messages) == 1
        assert "Kazakhstan is ready to be a *venue" in body_text(box.messages[0], "plain")

        # A wrong password is refused by the server: the delivery fails and stays queued.
        engine2, report2 = _send(f"sqlite:///{tmp_path / 'm2.db'}", tmp_path, {**opts, "password": "nope"})
        assert report2.sent == 0 and report2.failed == 1 and statuses(engine2) == {"failed": 1}
        # Without trusting the self-signed certificate, the TLS handshake fails (no silent downgrade).
        engine3, report3 = _send(f"sqlite:///{tmp_path / 'm3.db'}", tmp_path,
                                 {k: v for k, v in opts.items() if k != "ca_file"})
        assert report3.failed == 1 and len(box.messages) == 1
    finally:
        ctl.stop()


def test_implicit_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    box = Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    ctl.start()
    try:
        _, report = _send(f"sqlite:///{tmp_path / 'm.db'}", tmp_path,
                          {"port": port, "tls": "ssl", "ca_file": str(cert)})
    finally:
        ctl.stop()
    assert report.sent == 1 and len(box.messages) == 1


def test_later_alert_on_the_same_story_threads_under_the_first(tmp_path: Path) -> None:
    box = Box()
    port = free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        engine = store(f"sqlite:///{tmp_path / 'm.db'}")
        channel = build_channel("mail", "email", {"host": "127.0.0.1", "port": port, "tls": "none",
                                                  "from": "monitor@loopback.test", "to": "a@loopback.test"})
        add_alerts(engine, 1, ("mail",), rule="first-rule")
        asyncio.run(Deliverer(engine, {"mail": channel}).run())
        # Another rule matches the same article later: same story, so it replies in the thread.
        from sqlmodel import select

        from monitor.alerts import enqueue_alert
        from monitor.match.types import RuleMatch, Statement
        from monitor.store import Article, Source, session_scope
        with session_scope(engine) as s:
            art = s.exec(select(Article)).one()
            src = s.exec(select(Source)).one()
            enqueue_alert(s, art, src, RuleMatch("second-rule", (), (Statement("body", 0, 5, QUOTE),)), ("mail",))
        add_alerts(engine, 1, ("mail",), rule="first-rule", first=1)  # a different story
        asyncio.run(Deliverer(engine, {"mail": channel}).run())
    finally:
        ctl.stop()
    first, second, other = box.messages
    assert second["In-Reply-To"] == first["Message-ID"] and second["References"] == first["Message-ID"]
    assert other["In-Reply-To"] is None
    assert len({m["Message-ID"] for m in box.messages}) == 3


def test_mail_server_down_three_cycles_then_up_sends_exactly_one_email_per_alert(
        tmp_path: Path, database_url: str) -> None:
    engine = store(database_url)
    add_alerts(engine, 3, ("mail",))
    port = free_port()
    now = [datetime.now(UTC)]
    channel = build_channel("mail", "email", {"host": "127.0.0.1", "port": port, "tls": "none",
                                              "from": "m@loopback.test", "to": "a@loopback.test",
                                              "timeout": "5s"})
    worker = Deliverer(engine, {"mail": channel}, DeliverySettings(retry_delay=60), clock=lambda: now[0])
    for cycle in range(3):
        report = asyncio.run(worker.run())
        # One attempt per cycle: the channel is not hammered (nor are other channels held up).
        assert report.failed == 1 and report.sent == 0, cycle
        assert statuses(engine) == {"failed": 1, "pending": 2}  # the oldest is retried first
        now[0] += timedelta(hours=2)
    box = Box()
    ctl = Controller(box, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        assert asyncio.run(worker.run()).sent == 3
        now[0] += timedelta(hours=2)
        assert asyncio.run(worker.run()).sent == 0
    finally:
        ctl.stop()
    assert statuses(engine) == {"sent": 3}
    assert sorted(m["Subject"] for m in box.messages) == [f"[kz] Story {i} <b>&</b>" for i in range(3)]
    engine.dispose()


@pytest.mark.parametrize("attempts_before", [29])
def test_a_delivery_dies_after_its_attempts_and_can_be_retried(tmp_path: Path, attempts_before: int) -> None:
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 1, ("mail",))
    channel = build_channel("mail", "email", {"host": "127.0.0.1", "port": free_port(), "tls": "none",
                                              "from": "m@loopback.test", "to": "a@loopback.test"})
    from sqlalchemy import update

    from monitor.store import Delivery, session_scope
    with session_scope(engine) as s:
        s.execute(update(Delivery).values(attempts=attempts_before))
    report = asyncio.run(Deliverer(engine, {"mail": channel}).run())
    assert report.dead == 1 and statuses(engine) == {"dead": 1}
    from monitor.alerts.outbox import retry
    with session_scope(engine) as s:
        assert retry(s, dead=True) == 1
    assert statuses(engine) == {"pending": 1}


def test_a_dead_mail_server_does_not_hold_up_other_channels(tmp_path: Path) -> None:
    from tests.servers import Page, Site

    site = Site().start()
    site.pages["/hook"] = Page(b"{}", "application/json")
    try:
        engine = store(f"sqlite:///{tmp_path / 'm.db'}")
        add_alerts(engine, 5, ("mail", "hook"))
        mail = build_channel("mail", "email", {"host": "127.0.0.1", "port": free_port(), "tls": "none",
                                               "from": "m@loopback.test", "to": "a@loopback.test"})
        hook = build_channel("hook", "webhook", {"url": site.url("/hook")})
        report = asyncio.run(Deliverer(engine, {"mail": mail, "hook": hook}).run())
    finally:
        site.stop()
    assert report.sent == 5 and report.failed == 1  # mail tried once this run, the rest wait
    assert statuses(engine) == {"sent": 5, "failed": 1, "pending": 4}


def test_an_unusable_ca_file_is_a_config_problem(tmp_path: Path) -> None:
    """The channel makes its TLS context with its first message (not on the way to the daemon's
    first poll), so the config check is what catches a CA file that cannot be used."""
    from monitor.deliver.base import validate_channel

    cert, _ = self_signed_cert(tmp_path)
    opts = {"host": "127.0.0.1", "from": "monitor@loopback.test", "to": "analyst@loopback.test"}
    assert validate_channel("email", {**opts, "ca_file": str(cert)}) == []
    (tmp_path / "not.pem").write_text("not a certificate\n", encoding="utf-8")
    for bad in (str(tmp_path / "missing.pem"), str(tmp_path / "not.pem")):
        [problem] = validate_channel("email", {**opts, "ca_file": bad})
        assert problem.startswith(f"'ca_file' must be a PEM file of CA certificates, got {bad!r}"), problem
