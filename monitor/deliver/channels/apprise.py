"""Any Apprise URL (``type = "apprise"``, ``url = "..."``): the long tail of services.

Apprise is synchronous and reports only success or failure, so it runs in a worker thread and
its own log lines (which say why) are captured into the error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from monitor.deliver.base import (
    ChannelType,
    DeliveryError,
    channel_timeout,
    register,
    templates_for,
)

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class AppriseChannel:
    type = "apprise"
    threads = False

    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.url: str = opts["url"]
        self.timeout = channel_timeout(opts)
        self.templates = templates_for(opts)

    def _notify(self, title: str, body: str) -> list[str] | None:
        import apprise  # imported when used: it is large, and most setups have no apprise channel

        ap = apprise.Apprise()
        if not ap.add(self.url):
            return ["Apprise does not understand the URL"]
        cap = _Capture()
        logger = logging.getLogger("apprise")
        logger.addHandler(cap)
        try:
            ok = ap.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
        finally:
            logger.removeHandler(cap)
        return None if ok else (cap.lines or ["the service refused the notification"])

    async def send(self, msg: AlertMessage) -> None:
        import asyncio  # here: check-config imports every channel module for its checks

        title = self.templates.render(msg, "subject")
        body = self.templates.render(msg, "text").strip()
        try:
            problems = await asyncio.wait_for(asyncio.to_thread(self._notify, title, body), self.timeout + 5)
        except TimeoutError as exc:
            raise DeliveryError(f"apprise {self.name}: no answer within {self.timeout:.0f} s") from exc
        if problems:
            # The URL may hold a token: report the scheme only.
            detail = "; ".join(problems).replace(self.url, "<url>")[:300]
            raise DeliveryError(f"apprise {self.name} ({self.url.split('://', 1)[0]}): {detail}")


class AppriseOptions(TypedDict, total=False):
    url: str  # any Apprise URL: "mailto://...", "tgram://...", ...


def problems(opts: Mapping[str, Any]) -> list[str]:
    url = opts.get("url")
    if not isinstance(url, str) or "://" not in url:
        return [f"'url' must be an Apprise URL like \"mailto://...\" or \"tgram://...\", got {url!r}"]
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        scheme = url.split("://", 1)[0]
        return [f"'url': Apprise does not understand this URL (scheme {scheme!r})"]
    return []


register(ChannelType("apprise", AppriseOptions, problems, AppriseChannel))
