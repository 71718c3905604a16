"""SMTP delivery (stdlib smtplib in a worker thread: it is robust and supports every TLS mode)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from monitor.alerts.render import AlertMessage, render_html, render_text
from monitor.deliver.base import DeliveryError


class EmailChannel:
    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.host: str = opts["host"]
        self.tls: str = opts.get("tls", "starttls")
        self.port: int = int(opts.get("port", 465 if self.tls == "ssl" else 587))
        self.username: str | None = opts.get("username")
        self.password: str | None = opts.get("password")
        self.sender: str = opts["from"]
        to = opts["to"]
        self.to: list[str] = [to] if isinstance(to, str) else list(to)
        self.timeout = float(opts.get("timeout", 30))

    def build(self, msg: AlertMessage) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = msg.subject
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m["Date"] = format_datetime(datetime.now(UTC))
        domain = self.sender.rpartition("@")[2] or "monitor.local"
        m["Message-ID"] = make_msgid(idstring=msg.delivery_key.replace(":", "."), domain=domain)
        m["X-Monitor-Delivery"] = msg.delivery_key
        m.set_content(render_text(msg))
        m.add_alternative(render_html(msg), subtype="html")
        return m

    def _send_sync(self, m: EmailMessage) -> None:
        ctx = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                smtp.starttls(context=ctx)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(m)
        finally:
            try:
                smtp.quit()
            except Exception:
                smtp.close()

    async def send(self, msg: AlertMessage) -> None:
        try:
            await asyncio.to_thread(self._send_sync, self.build(msg))
        except (OSError, smtplib.SMTPException) as exc:
            # Never include credentials: only the server address and the error.
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
