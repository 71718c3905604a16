"""SMTP delivery (stdlib smtplib in a worker thread: it is robust and supports every TLS mode).

Message-IDs are derived from the delivery key, so a repeat after a crash carries the same
Message-ID (mail clients fold it), and a later alert on the same story names the first one's
Message-ID in In-Reply-To/References, so the story reads as one thread.

smtplib's ``timeout`` is per socket operation: a server sending one byte every 2 s never trips
it. The channel's ``timeout`` is therefore a deadline for the whole session, enforced by shutting
the socket down (a watchdog timer in the thread, or at once when the worker gives up or the
daemon stops), so the thread ends instead of outliving the delivery and the process.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.alerts.marks import stable_id
from monitor.deliver.base import (
    ChannelType,
    DeliveryError,
    _ssl_context,
    channel_timeout,
    register,
    templates_for,
)

if TYPE_CHECKING:
    import smtplib
    import ssl

    from monitor.alerts.render import AlertMessage


class EmailChannel:
    type = "email"
    threads = True

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
        self.timeout = channel_timeout(opts)
        self.templates = templates_for(opts)
        self.ca_file: str | None = opts.get("ca_file")

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """Made with the first message, not when the daemon starts: loading the system's CAs
        costs ~25 ms of CPU, on the way to the first poll (issue 15). ``ca_file``: trust a
        private CA (or a self-signed server certificate) besides the system's; without one,
        the process's one context of the system's CAs (``base._ssl_context``), not a copy per
        channel."""
        if self.ca_file is None:
            return _ssl_context()
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    def message_id(self, delivery_key: str) -> str:
        domain = self.sender.rpartition("@")[2].strip("> ") or "monitor.local"
        return f"<{stable_id(delivery_key)}@{domain}>"

    def build(self, msg: AlertMessage, now: datetime | None = None) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = self.templates.render(msg, "subject")
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m["Date"] = format_datetime(now or datetime.now(UTC))
        m["Message-ID"] = self.message_id(msg.delivery_key)
        if msg.thread_root_key:
            root = self.message_id(msg.thread_root_key)
            m["In-Reply-To"] = root
            m["References"] = root
        m["X-Monitor-Delivery"] = msg.delivery_id
        m["Auto-Submitted"] = "auto-generated"
        m.set_content(self.templates.render(msg, "text"))
        m.add_alternative(self.templates.render(msg, "html"), subtype="html")
        return m

    def _send_sync(self, m: EmailMessage, session: _Session) -> None:
        import smtplib  # here: check-config imports every channel module for its checks

        smtp: smtplib.SMTP
        if self.tls == "ssl":
            smtp = smtplib.SMTP_SSL(timeout=self.timeout, context=self.ssl_context)
        else:
            smtp = smtplib.SMTP(timeout=self.timeout)
        smtp._host = self.host  # type: ignore[attr-defined]  # connect() does not set it; TLS checks the certificate against it
        session.smtp = smtp
        session.watch(self.timeout)
        try:
            if session.killed.is_set():
                raise TimeoutError("stopped before connecting")
            smtp.connect(self.host, self.port)
            if self.tls == "starttls":
                smtp.starttls(context=self.ssl_context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(m)
            with contextlib.suppress(Exception):
                smtp.quit()
        except Exception as exc:
            if session.killed.is_set():
                raise TimeoutError(f"no complete SMTP session within {self.timeout:g} s") from exc
            raise
        finally:
            session.done.set()
            smtp.close()

    async def send(self, msg: AlertMessage) -> None:
        import asyncio  # here: check-config imports every channel module for its checks
        import smtplib

        session = _Session()
        try:
            await asyncio.to_thread(self._send_sync, self.build(msg), session)
        except asyncio.CancelledError:
            session.kill()  # the worker's deadline or shutdown: end the thread's session now
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: login refused ({exc.smtp_code})",
                                permanent=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Never include credentials: only the server address and the error.
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc


class _Session:
    """One SMTP session's socket, and a watcher that shuts it down at the deadline or when
    ``kill`` is called (checked every 0.1 s, so a socket opened after the kill is closed too)."""

    def __init__(self) -> None:
        self.smtp: smtplib.SMTP | None = None
        self.killed = threading.Event()
        self.done = threading.Event()

    def kill(self) -> None:
        self.killed.set()

    def watch(self, deadline: float) -> None:
        end = time.monotonic() + deadline

        def run() -> None:
            while not self.done.wait(0.1):
                if self.killed.is_set() or time.monotonic() >= end:
                    self.killed.set()
                    sock = self.smtp.sock if self.smtp is not None else None
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=run, name="smtp-deadline", daemon=True).start()


# "from" is a Python keyword, hence the functional form.
EmailOptions = TypedDict("EmailOptions", {
    "host": str,
    "port": int,  # default 587 (465 with tls = "ssl")
    "username": str,
    "password": str,
    "from": str,
    "to": str | list[str],
    "tls": str,  # "none", "starttls" (default) or "ssl"
    "ca_file": str,  # a private CA (or self-signed server certificate) to trust besides the system's
}, total=False)


def problems(opts: Mapping[str, Any]) -> list[str]:
    p = []
    for k in ("host", "from", "to"):
        if k not in opts:
            p.append(f"missing {k!r}")
    to = opts.get("to")
    if to is not None and not (isinstance(to, list) and to and all(isinstance(x, str) for x in to)) and not isinstance(to, str):
        p.append("'to' must be an address or a list of addresses")
    if opts.get("tls", "starttls") not in ("none", "starttls", "ssl"):
        p.append(f"'tls' must be \"none\", \"starttls\" or \"ssl\", got {opts.get('tls')!r}")
    port = opts.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        p.append(f"'port' must be a port number, got {port!r}")
    if ("username" in opts) != ("password" in opts):
        p.append("'username' and 'password' go together")
    ca_file = opts.get("ca_file")
    if ca_file is not None:
        # Checked here because the channel's TLS context is made with its first message.
        import ssl

        try:
            if not isinstance(ca_file, str):
                raise TypeError("not a path")
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError, TypeError) as exc:
            p.append(f"'ca_file' must be a PEM file of CA certificates, got {ca_file!r} ({exc})")
    return p


register(ChannelType("email", EmailOptions, problems, EmailChannel))
