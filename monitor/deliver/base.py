"""Channel registry: each type declares its config keys, a validator and a sender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from monitor.alerts.render import AlertMessage


class DeliveryError(Exception):
    """The channel did not accept the message; the delivery stays pending and is retried."""


class Channel(Protocol):
    name: str

    async def send(self, msg: AlertMessage) -> None: ...


def _email_problems(opts: Mapping[str, Any]) -> list[str]:
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
    return p


def _webhook_problems(opts: Mapping[str, Any]) -> list[str]:
    url = opts.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return [f"'url' must be an http(s) URL, got {url!r}"]
    headers = opts.get("headers", {})
    if not isinstance(headers, dict):
        return ["'headers' must be a table of strings"]
    return []


CHANNEL_KEYS: dict[str, set[str]] = {
    "email": {"host", "port", "username", "password", "from", "to", "tls", "timeout"},
    "webhook": {"url", "headers", "secret", "timeout"},
}
_VALIDATORS = {"email": _email_problems, "webhook": _webhook_problems}


def validate_channel(ctype: str, opts: Mapping[str, Any]) -> list[str]:
    if ctype not in CHANNEL_KEYS:
        return [f"unknown type {ctype!r} (known: {', '.join(sorted(CHANNEL_KEYS))})"]
    problems = [f"unknown key {k!r}" for k in opts if k not in CHANNEL_KEYS[ctype]]
    return problems + _VALIDATORS[ctype](opts)


def build_channel(name: str, ctype: str, opts: Mapping[str, Any]) -> Channel:
    if ctype == "email":
        from monitor.deliver.email import EmailChannel
        return EmailChannel(name, opts)
    if ctype == "webhook":
        from monitor.deliver.webhook import WebhookChannel
        return WebhookChannel(name, opts)
    raise ValueError(f"unknown channel type {ctype!r}")
