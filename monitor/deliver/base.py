"""What every channel shares: the Channel interface, DeliveryError, the registry of channel types
(each type lives in its own module under ``monitor/deliver/channels/`` and registers itself), the
common keys and the HTTP request helper.

Every channel also takes the common keys: template overrides (``subject``, ``text``, ``html``,
``digest_*``, ``notice_*``), ``quiet_hours``, ``timezone``, ``rate_limit``, ``digest`` (where
rate-limit overflow goes) and ``timeout``.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from monitor import config, user_agent
from monitor.alerts.marks import TEMPLATE_KEYS
from monitor.alerts.policy import CHANNEL_POLICY_KEYS, ChannelPolicy, RulePolicy
from monitor.util import parse_duration, retry_after_seconds

if TYPE_CHECKING:
    import ssl

    import httpx

    from monitor.alerts.render import AlertMessage, Templates


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
    timeout: float  # seconds for the whole delivery (the worker's deadline)

    async def send(self, msg: AlertMessage) -> None: ...


COMMON_KEYS = TEMPLATE_KEYS | CHANNEL_POLICY_KEYS | {"timeout"}


def url_problem(opts: Mapping[str, Any], key: str = "url") -> list[str]:
    url = opts.get(key)
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        return [f"{key!r} must be an http(s) URL, got {url!r}"]
    return []


def required(*keys: str) -> Callable[[Mapping[str, Any]], list[str]]:
    def check(opts: Mapping[str, Any]) -> list[str]:
        return [f"missing {k!r}" for k in keys if not (isinstance(opts.get(k), str | int) and str(opts.get(k)))]
    return check


@dataclass(frozen=True)
class ChannelType:
    """One ``type`` of channel, declared in its own module under ``monitor/deliver/channels/``:
    its options (a TypedDict: every key it takes besides the common ones, with its type), the
    check of their values, and the class that sends."""

    name: str
    options: type
    check: Callable[[Mapping[str, Any]], list[str]]
    factory: Callable[[str, Mapping[str, Any]], Channel]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.options.__annotations__)


TYPES: dict[str, ChannelType] = {}  # filled by each channel module at import (monitor.deliver.channels)


def register(channel_type: ChannelType) -> None:
    """Make a channel type known here (to build it) and to the config loader (to check it)."""
    TYPES[channel_type.name] = channel_type
    config.register_channel_type(channel_type.name, keys=channel_type.keys, check=channel_type.check)


def _common_problems(opts: Mapping[str, Any]) -> list[str]:
    """Keys every channel takes: timeout, quiet hours, rate limit, digest, templates."""
    problems = []
    if "timeout" in opts:
        try:
            parse_duration(opts["timeout"])
        except ValueError as exc:
            problems.append(f"'timeout': {exc}")
    problems += ChannelPolicy.problems(opts)
    if TEMPLATE_KEYS.intersection(opts):
        # Only a template override needs the renderer (the pydantic payloads, Jinja2): a config
        # without one is checked without importing them.
        from monitor.alerts.render import Templates

        problems += Templates.problems(opts)
    return problems


def validate_channel(ctype: str, opts: Mapping[str, Any]) -> list[str]:
    """Every problem of one channel's options (the config loader reports the same, with lines)."""
    if ctype not in TYPES:
        return [f"unknown type {ctype!r} (known: {', '.join(sorted(TYPES))})"]
    known = TYPES[ctype].keys | COMMON_KEYS
    problems = [f"unknown key {k!r}" for k in opts if k not in known]
    return problems + TYPES[ctype].check(opts) + _common_problems(opts)


config.register_channel_common(COMMON_KEYS, _common_problems)


def build_channel(name: str, ctype: str, opts: Mapping[str, Any]) -> Channel:
    if ctype not in TYPES:
        raise ValueError(f"unknown channel type {ctype!r}")
    return TYPES[ctype].factory(name, opts)


def delivery_parts(cfg: Any) -> tuple[dict[str, Channel], dict[str, RulePolicy], dict[str, ChannelPolicy]]:
    """A config's channels and alert policies, built: what may refuse a config at start. The
    pipeline builds them with itself and the delivery worker later (``Deliverer.from_config``)."""
    return ({c.name: build_channel(c.name, c.type, c.options) for c in cfg.channels},
            {r.name: RulePolicy.from_options(r.options) for r in cfg.rules},
            {c.name: ChannelPolicy.from_options(c.options) for c in cfg.channels})


def channel_timeout(opts: Mapping[str, Any], default: float = 30.0) -> float:
    return parse_duration(opts["timeout"]) if "timeout" in opts else default


def templates_for(opts: Mapping[str, Any]) -> Templates:
    from monitor.alerts.policy import zone
    from monitor.alerts.templates import Templates

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
        import ssl

        _SSL = ssl.create_default_context()
    return _SSL


_CLIENTS: contextvars.ContextVar[dict[str, httpx.AsyncClient] | None] = contextvars.ContextVar(
    "delivery_clients", default=None)


@contextlib.asynccontextmanager
async def reuse_connections(kept: dict[str, httpx.AsyncClient] | None = None) -> AsyncIterator[None]:
    """Within this block each channel keeps one HTTP client, so its deliveries go over the
    connection its previous one opened (no TCP and TLS handshake per alert). One client per
    channel: a slow or hanging receiver holds only its own connections, never another's.

    ``kept``: the clients live on in this dict after the block (the next block given it goes
    on with their open connections), until ``close_clients``; without it they end with it."""
    clients: dict[str, httpx.AsyncClient] = {} if kept is None else kept
    token = _CLIENTS.set(clients)
    try:
        yield
    finally:
        _CLIENTS.reset(token)
        if kept is None:
            await close_clients(clients)


async def close_clients(clients: dict[str, httpx.AsyncClient]) -> None:
    """Close ``reuse_connections``'s kept clients (and forget them)."""
    while clients:
        await clients.popitem()[1].aclose()


async def post(channel: str, method: str, url: str, timeout: float, **kwargs: Any) -> httpx.Response:
    """One HTTP request to a platform; non-2xx becomes a DeliveryError (never logs secrets:
    only the channel name and the status, because tokens often sit in webhook URLs)."""
    import asyncio

    import httpx  # here, not at import: check-config imports every channel module

    headers = {"User-Agent": _USER_AGENT, **kwargs.pop("headers", {})}
    try:
        # ``timeout`` for the whole request, not per read: a trickling answer ends here too.
        clients = _CLIENTS.get()
        if clients is None:  # a one-off request (a test message from the CLI)
            async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout, verify=_ssl_context()) as client:
                resp = await client.request(method, url, headers=headers, **kwargs)
        else:
            shared = clients.get(channel)
            if shared is None:
                shared = clients[channel] = httpx.AsyncClient(verify=_ssl_context())
            async with asyncio.timeout(timeout):
                resp = await shared.request(method, url, headers=headers, timeout=timeout, **kwargs)
    except TimeoutError as exc:
        raise DeliveryError(f"{_where(channel, url)}: no complete answer within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{_where(channel, url)}: {type(exc).__name__}: {exc}".replace(url, "<url>")) from exc
    if resp.status_code < 300:
        return resp
    where = _where(channel, url)
    if resp.status_code < 400:
        # Redirects are not followed (a POST must not silently become a GET elsewhere). A
        # permanent one is a config change to make, not a failure to retry for a day.
        location = resp.headers.get("Location") or "(no Location header)"
        if resp.status_code in (301, 308):
            raise DeliveryError(f"{where}: HTTP {resp.status_code}: moved permanently to {location}; "
                                "update the channel's URL", permanent=True)
        raise DeliveryError(f"{where}: HTTP {resp.status_code}: redirected to {location}; not followed")
    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
    if retry_after is None and resp.status_code == 429:
        retry_after = _retry_after_in_body(resp)
    detail = resp.text[:200].replace("\n", " ")
    permanent = resp.status_code in (400, 401, 403, 410, 413, 422)
    raise DeliveryError(f"{where}: HTTP {resp.status_code}: {detail}", permanent=permanent,
                        retry_after=retry_after)


_USER_AGENT = user_agent()


def _where(channel: str, url: str) -> str:
    """The channel and the receiver's host, for an error (built only then: parsing the URL was
    work on every delivery). The host names the receiver, as mail errors name their server;
    the rest of the URL may carry a token, so it never appears."""
    import httpx

    return f"{channel} ({httpx.URL(url).host})"
