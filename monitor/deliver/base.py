"""Channel registry: each type declares its config keys, a validator and a sender.

Every channel also takes the common keys: template overrides (``subject``, ``text``, ``html``,
``digest_*``, ``notice_*``), ``quiet_hours``, ``timezone``, ``rate_limit``, ``digest`` (where
rate-limit overflow goes) and ``timeout``.
"""

from __future__ import annotations

import importlib
import re
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from monitor import config
from monitor.alerts.policy import CHANNEL_POLICY_KEYS, ChannelPolicy
from monitor.alerts.render import TEMPLATE_KEYS, AlertMessage, Templates
from monitor.util import parse_duration, retry_after_seconds


class DeliveryError(Exception):
    """The channel did not accept the message.

    ``permanent``: retrying cannot help (the platform rejected the request itself), so the
    delivery goes to dead at once instead of retrying for a day. ``retry_after``: the platform
    asked us to wait this many seconds (HTTP 429).
    """

    def __init__(self, message: str, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    name: str
    type: str
    templates: Templates
    threads: bool  # wants the first message of the story (email In-Reply-To)

    async def send(self, msg: AlertMessage) -> None: ...


COMMON_KEYS = TEMPLATE_KEYS | CHANNEL_POLICY_KEYS | {"timeout"}


def _url_problem(opts: Mapping[str, Any], key: str = "url") -> list[str]:
    url = opts.get(key)
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        return [f"{key!r} must be an http(s) URL, got {url!r}"]
    return []


def _required(*keys: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def check(opts: Mapping[str, Any]) -> list[str]:
        return [f"missing {k!r}" for k in keys if not (isinstance(opts.get(k), str | int) and str(opts.get(k)))]
    return check


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
    p = _url_problem(opts)
    headers = opts.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        p.append("'headers' must be a table of strings")
    if "secret" in opts and not (isinstance(opts["secret"], str) and opts["secret"]):
        p.append("'secret' must be a non-empty string")
    return p


def _matrix_problems(opts: Mapping[str, Any]) -> list[str]:
    p = _url_problem(opts, "homeserver") + _required("access_token", "room_id")(opts)
    room = opts.get("room_id")
    if isinstance(room, str) and not room.startswith(("!", "#")):
        p.append(f"'room_id' must look like \"!abc:example.org\", got {room!r}")
    return p


def _ntfy_problems(opts: Mapping[str, Any]) -> list[str]:
    p = _url_problem(opts)
    url = opts.get("url")
    if not p and isinstance(url, str) and "topic" not in opts and not httpx.URL(url).path.strip("/"):
        p.append("'url' must end in the topic, e.g. \"https://ntfy.sh/my-alerts\"")
    pr = opts.get("priority")
    if pr is not None and pr not in (1, 2, 3, 4, 5, "min", "low", "default", "high", "max", "urgent"):
        p.append(f"'priority' must be 1-5 or min/low/default/high/max, got {pr!r}")
    return p


def _apprise_problems(opts: Mapping[str, Any]) -> list[str]:
    url = opts.get("url")
    if not isinstance(url, str) or "://" not in url:
        return [f"'url' must be an Apprise URL like \"mailto://...\" or \"tgram://...\", got {url!r}"]
    import apprise

    if apprise.Apprise.instantiate(url) is None:
        scheme = url.split("://", 1)[0]
        return [f"'url': Apprise does not understand this URL (scheme {scheme!r})"]
    return []


# type -> (module, class, keys, validator)
_TYPES: dict[str, tuple[str, str, set[str], Callable[[Mapping[str, Any]], list[str]]]] = {
    "email": ("email", "EmailChannel",
              {"host", "port", "username", "password", "from", "to", "tls", "ca_file"}, _email_problems),
    "webhook": ("webhook", "WebhookChannel", {"url", "headers", "secret"}, _webhook_problems),
    "slack": ("chat", "SlackChannel", {"url"}, _url_problem),
    "telegram": ("chat", "TelegramChannel", {"token", "chat_id", "api_url"},
                 lambda o: _required("token", "chat_id")(o) + (_url_problem(o, "api_url") if "api_url" in o else [])),
    "discord": ("chat", "DiscordChannel", {"url", "username"}, _url_problem),
    "teams": ("chat", "TeamsChannel", {"url"}, _url_problem),
    "matrix": ("chat", "MatrixChannel", {"homeserver", "access_token", "room_id"}, _matrix_problems),
    "ntfy": ("chat", "NtfyChannel", {"url", "topic", "token", "priority", "tags"}, _ntfy_problems),
    "apprise": ("apprise_channel", "AppriseChannel", {"url"}, _apprise_problems),
}
CHANNEL_KEYS: dict[str, set[str]] = {t: keys | COMMON_KEYS for t, (_, _, keys, _) in _TYPES.items()}


def _common_problems(opts: Mapping[str, Any]) -> list[str]:
    """Keys every channel takes: timeout, quiet hours, rate limit, digest, templates."""
    problems = []
    if "timeout" in opts:
        try:
            parse_duration(opts["timeout"])
        except ValueError as exc:
            problems.append(f"'timeout': {exc}")
    return problems + ChannelPolicy.problems(opts) + Templates.problems(opts)


def validate_channel(ctype: str, opts: Mapping[str, Any]) -> list[str]:
    """Every problem of one channel's options (the config loader reports the same, with lines)."""
    if ctype not in _TYPES:
        return [f"unknown type {ctype!r} (known: {', '.join(sorted(_TYPES))})"]
    problems = [f"unknown key {k!r}" for k in opts if k not in CHANNEL_KEYS[ctype]]
    return problems + _TYPES[ctype][3](opts) + _common_problems(opts)


config.register_channel_common(COMMON_KEYS, _common_problems)
for _type, (_, _, _keys, _check) in _TYPES.items():
    config.register_channel_type(_type, keys=_keys, check=_check)


def build_channel(name: str, ctype: str, opts: Mapping[str, Any]) -> Channel:
    if ctype not in _TYPES:
        raise ValueError(f"unknown channel type {ctype!r}")
    module, cls, _, _ = _TYPES[ctype]
    factory = getattr(importlib.import_module(f"monitor.deliver.{module}"), cls)
    channel: Channel = factory(name, opts)
    return channel


def channel_timeout(opts: Mapping[str, Any], default: float = 30.0) -> float:
    return parse_duration(opts["timeout"]) if "timeout" in opts else default


def templates_for(opts: Mapping[str, Any]) -> Templates:
    from monitor.alerts.policy import zone

    tz = zone(opts["timezone"]) if "timezone" in opts else None
    return Templates({k: v for k, v in opts.items() if k in TEMPLATE_KEYS}, tz)


def _retry_after_in_body(resp: httpx.Response) -> float | None:
    """Telegram (parameters.retry_after, s), Discord (retry_after, s), Matrix (retry_after_ms)."""
    try:
        data = resp.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for value, scale in ((data.get("retry_after_ms"), 0.001), (data.get("retry_after"), 1.0),
                         ((data.get("parameters") or {}).get("retry_after"), 1.0)):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * scale
    return None


_SSL: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every platform request: building one (loading the CA bundle) costs
    tens of milliseconds, more than a whole request to a nearby webhook."""
    global _SSL
    if _SSL is None:
        _SSL = ssl.create_default_context()
    return _SSL


async def post(channel: str, method: str, url: str, timeout: float, **kwargs: Any) -> httpx.Response:
    """One HTTP request to a platform; non-2xx becomes a DeliveryError (never logs secrets:
    only the channel name and the status, because tokens often sit in webhook URLs)."""
    from monitor.fetch.client import user_agent

    headers = {"User-Agent": user_agent(), **kwargs.pop("headers", {})}
    try:
        async with httpx.AsyncClient(timeout=timeout, verify=_ssl_context()) as client:
            resp = await client.request(method, url, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{channel}: {type(exc).__name__}: {exc}".replace(url, "<url>")) from exc
    if resp.status_code >= 300:
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        if retry_after is None and resp.status_code == 429:
            retry_after = _retry_after_in_body(resp)
        detail = resp.text[:200].replace("\n", " ")
        permanent = resp.status_code in (400, 401, 403, 410, 413, 422)
        raise DeliveryError(f"{channel}: HTTP {resp.status_code}: {detail}", permanent=permanent,
                            retry_after=retry_after)
    return resp
