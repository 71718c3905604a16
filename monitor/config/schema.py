"""Every setting of ``config.toml``, declared once: its type, default, check and meaning.

The tables (``[monitor]``, ``[fetch]``, ...) and entries (``[[source]]``, ``[[rule]]``, ...) are
frozen dataclasses, constructible in code (tests, benches) and validated from TOML by
``monitor.config.loader``, which turns their problems into ``file:line: entry: problem``. Each
field carries its check (``setting(default, check, meaning)``): a function that returns the value
converted ("5m" -> 300.0) or raises ValueError with a message a user can act on; a message
starting with "must" gets the key's name in front of it. The checks run at construction, so a
table built in code is checked the same way as one read from the file.

Why not pydantic models (they were, until issue 15): every check here is our own function
already, and building the nine models' schemas cost more CPU at import (~35 ms, plus ~55 ms to
import pydantic) than the rest of ``check-config`` except click; a command or the daemon's
start-up waits for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from monitor.util import parse_duration

T = TypeVar("T")
Check = Callable[[Any], Any]


def _count(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"must be a positive whole number, got {v!r}")
    return v


def _flag(v: object) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _opt_flag(v: object) -> bool | None:
    return None if v is None else _flag(v)


def _text(v: object) -> str:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, got {v!r}")
    return v


def _opt_text(v: object) -> str | None:
    return None if v is None else _text(v)


def _zone(v: object) -> str | None:
    if v is None:
        return None
    from zoneinfo import ZoneInfo

    if isinstance(v, str) and v:
        try:
            ZoneInfo(v)
            return v
        except (ValueError, KeyError, OSError):
            pass
    raise ValueError(f"unknown time zone {v!r} (an IANA name such as 'Europe/Rome')")


def _language(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str) and re.match(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$", v):
        return v
    raise ValueError(f"language must be a code such as 'it' or 'pt-BR', got {v!r}")


def _http_url(v: object) -> str:
    if not isinstance(v, str) or not re.match(r"^https?://[^/\s]+", v.strip()):
        raise ValueError(f"'url' must be an http(s) URL, got {v!r}")
    return v.strip()


def _listen(v: object) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not re.match(r"^(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}$", v) \
            or not 0 < int(v.rpartition(":")[2]) < 65536:
        raise ValueError(f"listen must be \"host:port\", e.g. \"127.0.0.1:8080\", got {v!r}")
    return v


def _share(v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 1:
        raise ValueError(f"min_containment must be a number in (0, 1], got {v!r}")
    return float(v)


def _names(v: object) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple) or not all(isinstance(c, str) for c in v):
        raise ValueError("'channels' must be a list of channel names")
    return tuple(v)


def _texts(v: object) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple) or not all(isinstance(t, str) and t.strip() for t in v):
        raise ValueError("must be a list of texts or .txt file paths")
    return tuple(t.strip() for t in v)


def _aliases(v: object) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not v or not all(isinstance(a, str) and a.strip() for a in v):
        raise ValueError("'aliases' must be a non-empty list of strings")
    return tuple(v)


def _mapping(v: object) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ValueError(f"must be a table of keys, got {v!r}")
    return v


def _one_of(*choices: str) -> Check:
    def check(v: object) -> str:
        if v not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}, got {v!r}")
        return str(v)
    return check


def _duration(v: object) -> float:
    return parse_duration(v)


_ZERO = re.compile(r"\s*0+(?:\.0*)?\s*[smhd]?\s*")


def _hold(v: object) -> float:
    """A wait that may be none ("0s"), and at most an hour: an alert held longer is late news."""
    if (isinstance(v, str) and _ZERO.fullmatch(v)) or (isinstance(v, int | float) and not isinstance(v, bool) and v == 0):
        return 0.0
    seconds = parse_duration(v)
    if seconds > 3600:
        raise ValueError(f"must be at most 1h (an alert held longer is late news): {v!r}")
    return seconds


DAY = 86400.0


def setting(default: T, check: Check, doc: str = "") -> T:
    """A setting with a default: its check and its meaning (the text a user reads in the docs)."""
    return field(default=default, metadata={"check": check, "doc": doc})


def needed(check: Check, doc: str = "") -> Any:
    """A setting without a default (an entry without it is a problem: "missing 'url'")."""
    return field(metadata={"check": check, "doc": doc})


class Invalid(ValueError):
    """The problems of one table or entry, as (key, message); key "" for the entry as a whole."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{k}: {m}" if k else m for k, m in problems))
        self.problems = problems


class _Checked:
    """Base of the tables and entries: each field's check runs at construction, converting its
    value in place; when every field passed, ``_whole`` checks them together."""

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for f in fields(self):  # type: ignore[arg-type]
            try:
                object.__setattr__(self, f.name, f.metadata["check"](getattr(self, f.name)))
            except ValueError as exc:
                problems.append((f.name, str(exc)))
        if not problems:
            try:
                self._whole()
            except ValueError as exc:
                problems.append(("", str(exc)))
        if problems:
            raise Invalid(problems)

    def _whole(self) -> None:
        """Checks of settings together, after each one's own (may adjust them)."""


def check_entry(cls: type[T], values: Mapping[str, Any]) -> tuple[T | None, list[tuple[str, str, str]]]:
    """``cls(**values)`` and every problem found on the way, as (kind, key, message): kind is
    "missing", "unknown" or "invalid" (key "" for the entry as a whole). Every key is checked
    (not only up to the first problem): a user fixing a config wants the whole list at once.

    Each field's check runs once: by the construction (``_Checked``, which reports every field's
    problem too) when the keys are right, else here, as no entry is built. (Checking here and
    again in the construction ran every check twice per entry: 5,000 rules.)"""
    known = fields(cls)  # type: ignore[arg-type]
    names = {f.name for f in known}
    unknown = [("unknown", k, "") for k in values if k not in names]
    if not unknown and all(f.name in values or f.default is not MISSING or f.default_factory is not MISSING
                           for f in known):
        try:
            return cls(**values), []
        except Invalid as exc:
            return None, [("invalid", k, m) for k, m in exc.problems]
    problems: list[tuple[str, str, str]] = []
    for f in known:
        if f.name in values:
            try:
                f.metadata["check"](values[f.name])
            except ValueError as exc:
                problems.append(("invalid", f.name, str(exc)))
        elif f.default is MISSING and f.default_factory is MISSING:
            problems.append(("missing", f.name, ""))
    return None, problems + unknown


@dataclass(frozen=True)
class MonitorSettings(_Checked):
    """``[monitor]``: the database, the operator, delivery and the daemon's own rhythm."""

    database: str = setting("sqlite:///monitor.db", _text,
                            "SQLAlchemy URL; a relative SQLite path is relative to the config file")
    contact: str = setting("", _text, "mailto: or URL put into the User-Agent")
    delivery_interval: float = setting(30.0, _duration, "how often pending deliveries are sent")
    retry_delay: float = setting(30.0, _duration, "first retry of a failed delivery; doubles each attempt, capped at 1 h")
    source_errors_to: str | None = setting(None, _opt_text, "channel told when a source breaks or recovers")
    delivery_max_attempts: int = setting(30, _count, "then the delivery is dead")
    delivery_dead_after: float = setting(DAY, _duration, "or when it is this old")
    delivery_lease: float = setting(300.0, _duration,
                                    "a delivery claimed by an instance that died is taken over after this")
    claim_interval: float = setting(1.0, _duration, "how often the daemon claims due sources")
    lease: float = setting(60.0, _duration, "how long a source claim holds without renewal")
    max_polls: int = setting(20, _count, "polls running at once per instance")
    shutdown_deadline: float = setting(30.0, _duration, "how long a stop waits for work in flight")
    alert_max_age: float = setting(
        2 * DAY, _duration,
        "older articles (by publication date, else first seen) are stored, grouped and searchable "
        "but never alert: a new source's backlog does not flood the channels")
    alert_hold: float = setting(
        60.0, _hold,
        "an alert waits this long before it is sent, so that reports of one event that arrive "
        "together (become one story only once a later report links them) send one alert; 0: at once")


@dataclass(frozen=True)
class FetchSettings(_Checked):
    """``[fetch]``: how pages and feeds are requested."""

    allow_private_networks: bool = setting(False, _flag, "loopback and private addresses are refused unless true")
    timeout: float = setting(60.0, _duration, "the whole request, headers to last byte")
    connect_timeout: float = setting(10.0, _duration, "at most `timeout`")
    read_timeout: float = setting(20.0, _duration, "silence between two reads; at most `timeout`")
    max_bytes: int = setting(10 * 1024 * 1024, _count, "decoded bytes; larger responses are cut off with an error")
    max_redirects: int = setting(5, _count)
    user_agent: str | None = setting(None, _opt_text, "default: monitor/VERSION (+project URL; contact)")
    per_host: int = setting(2, _count, "requests at once to one host")
    concurrency: int = setting(20, _count, "requests at once in all")
    # Server hints (Cache-Control max-age, Expires, RSS <ttl>) may lengthen a source's interval,
    # clamped to [min_interval, max_interval]; they never shorten the interval the user set.
    min_interval: float = setting(60.0, _duration)
    max_interval: float = setting(6 * 3600.0, _duration)
    max_backoff: float = setting(6 * 3600.0, _duration, "cap of the exponential backoff after failures")
    broken_after: int = setting(5, _count, "consecutive failures before the 'source broken' notice")
    robots: bool = setting(True, _flag, "honour robots.txt for HTML listing and article pages")
    reread_updates: bool = setting(
        True, _flag,
        "an article whose feed entry changed (its title, content or updated date) is fetched and matched "
        "again, while within alert_max_age: a statement added to a developing story alerts")
    max_links_per_poll: int = setting(
        100, _count,
        "new article links fetched per poll of a listing page or sitemap; the rest are fetched by the "
        "next polls, which come after at most min_interval and never send back validators")

    def _whole(self) -> None:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        # The connect and read timeouts are parts of the whole request: never longer than it.
        object.__setattr__(self, "connect_timeout", min(self.timeout, self.connect_timeout))
        object.__setattr__(self, "read_timeout", min(self.timeout, self.read_timeout))


@dataclass(frozen=True)
class HttpSettings(_Checked):
    """``[http]``: the daemon's /healthz, /readyz and /metrics."""

    listen: str | None = setting(None, _listen, '"host:port"; off when absent')

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class RetentionSettings(_Checked):
    """``[retention]``: what is deleted when."""

    articles: float = setting(30 * DAY, _duration, "articles without a match are deleted after this")
    alerts: float = setting(365 * DAY, _duration, "matches, alerts, deliveries (and their articles) after this")
    interval: float = setting(3600.0, _duration, "how often the daemon prunes")

    def _whole(self) -> None:
        if self.alerts < self.articles:
            raise ValueError("alerts must be kept at least as long as articles")


@dataclass(frozen=True)
class DedupSettings(_Checked):
    """``[dedup]``: how copies of one story are recognised."""

    window: float = setting(7 * DAY, _duration, "how far back a new article is compared for copies")
    min_containment: float = setting(0.42, _share, "share of the shorter text's word trigrams found in the other")
    events: bool = setting(True, _flag, "reports of one event in any language or wording join one story "
                                        "(loads the sentence model)")
    event_window: float = setting(3 * DAY, _duration, "reports of one event are published within this of each other")


@dataclass(frozen=True)
class SourceConfig(_Checked):
    """``[[source]]``: one feed, site or sitemap. Keys of its ``type`` go into ``options``."""

    name: str = needed(_text)
    url: str = needed(_http_url)
    type: str = setting("feed", _text)
    interval: float = setting(300.0, _duration, "how often it is polled")
    full_text: bool = setting(True, _flag, "false: use the feed's own content, do not fetch pages")
    allow_private_networks: bool | None = setting(None, _opt_flag, "default: [fetch] allow_private_networks")
    robots: bool | None = setting(None, _opt_flag, "default: [fetch] robots")
    options: Mapping[str, Any] = field(default_factory=dict, metadata={"check": _mapping, "doc": ""})
    timezone: str | None = setting(None, _zone, "IANA zone for the source's dates that carry none")
    language: str | None = setting(None, _language, 'e.g. "pl": hints the encoding and the usual time zone')


@dataclass(frozen=True)
class EntityConfig(_Checked):
    """``[entity.NAME]``: the aliases ``@NAME`` stands for in a query."""

    name: str = needed(_text)
    aliases: tuple[str, ...] = needed(_aliases)
    inflect: bool = setting(False, _flag, "also match Russian, Ukrainian and Kazakh case forms")
    display: str | None = setting(None, _opt_text,
                                  "name alerts show for a speaker who is this entity (default: the first alias)")


@dataclass(frozen=True)
class RuleConfig(_Checked):
    """``[[rule]]``: a query and where its alerts go. Alert-policy keys go into ``options``."""

    name: str = needed(_text)
    query: str = needed(_text)
    channels: tuple[str, ...] = setting((), _names)
    options: Mapping[str, Any] = field(default_factory=dict, metadata={"check": _mapping, "doc": ""})
    realert: Literal["never", "new_statement"] = setting(
        "never", _one_of("never", "new_statement"), '"new_statement": alert again for a story\'s new matching sentence')
    examples: tuple[str, ...] = setting((), _texts, "sentences the rule's about() clauses must match (texts, or .txt "
                                                    "files of one per line, relative to the config): they calibrate "
                                                    "the threshold")
    counterexamples: tuple[str, ...] = setting((), _texts, "sentences they must not match (same forms)")


@dataclass(frozen=True)
class ChannelConfig(_Checked):
    """``[[channel]]``: where alerts are sent; ``options`` are the keys of its ``type``."""

    name: str = needed(_text)
    type: str = needed(_text)
    options: Mapping[str, Any] = field(default_factory=dict, metadata={"check": _mapping, "doc": ""})


class DatabaseURL(str):
    """``[monitor] database`` as a URL, knowing the config file it was written in (``origin``):
    an engine made from it names that file and entry when the database cannot be used
    (``monitor.store.db.unusable``), whichever command or daemon made it."""

    origin: str

    def __new__(cls, url: str, origin: str = "") -> DatabaseURL:
        self = super().__new__(cls, url)
        self.origin = origin
        return self


def resolve_database_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


@dataclass(frozen=True)
class Config:
    """A whole validated config: the tables, the entries and the secrets to keep out of logs."""

    path: Path
    monitor: MonitorSettings
    fetch: FetchSettings
    sources: tuple[SourceConfig, ...]
    rules: tuple[RuleConfig, ...]
    channels: tuple[ChannelConfig, ...]
    entities: tuple[EntityConfig, ...] = ()
    http: HttpSettings = field(default_factory=HttpSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    secrets: tuple[str, ...] = ()  # values that came from ${ENV} references: never logged
    dedup: DedupSettings = field(default_factory=DedupSettings)

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config's folder."""
        return DatabaseURL(resolve_database_url(self.monitor.database, self.path.parent), str(self.path))


# Each table's key and its class, in the order problems are reported.
TABLES: dict[str, type] = {"monitor": MonitorSettings, "fetch": FetchSettings, "http": HttpSettings,
                           "retention": RetentionSettings, "dedup": DedupSettings}
TOP_KEYS = {*TABLES, "source", "rule", "channel", "entity"}
