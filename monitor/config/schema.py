"""Every setting of ``config.toml``, declared once: its type, default and meaning.

The tables (``[monitor]``, ``[fetch]``, ...) and entries (``[[source]]``, ``[[rule]]``, ...) are
pydantic dataclasses: frozen, constructible in code (tests, benches) and validated from TOML by
``monitor.config.loader``, which turns pydantic's errors into ``file:line: entry: problem``.
Validators raise ValueError with a message a user can act on; a message starting with "must" gets
the key's name in front of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass as stdlib_dataclass
from dataclasses import field as stdlib_field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from monitor.util import parse_duration

_STRICT = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


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
    from zoneinfo import ZoneInfo

    if v is None:
        return None
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


Duration = Annotated[float, BeforeValidator(parse_duration)]
Count = Annotated[int, BeforeValidator(_count)]
Flag = Annotated[bool, BeforeValidator(_flag)]
OptFlag = Annotated[bool | None, BeforeValidator(_opt_flag)]
Text = Annotated[str, BeforeValidator(_text)]
OptText = Annotated[str | None, BeforeValidator(_opt_text)]

DAY = 86400.0


def doc(text: str) -> Any:
    """A setting's meaning, kept with its declaration (pydantic's field description)."""
    return Field(description=text)


@dataclass(frozen=True, config=_STRICT)
class MonitorSettings:
    """``[monitor]``: the database, the operator, delivery and the daemon's own rhythm."""

    database: Annotated[Text, doc("SQLAlchemy URL; a relative SQLite path is relative to the config file")] = "sqlite:///monitor.db"
    contact: Annotated[Text, doc("mailto: or URL put into the User-Agent")] = ""
    delivery_interval: Annotated[Duration, doc("how often pending deliveries are sent")] = 30.0
    retry_delay: Annotated[Duration, doc("first retry of a failed delivery; doubles each attempt, capped at 1 h")] = 30.0
    source_errors_to: Annotated[OptText, doc("channel told when a source breaks or recovers")] = None
    delivery_max_attempts: Annotated[Count, doc("then the delivery is dead")] = 30
    delivery_dead_after: Annotated[Duration, doc("or when it is this old")] = DAY
    delivery_lease: Annotated[Duration, doc("a delivery claimed by an instance that died is taken over after this")] = 300.0
    claim_interval: Annotated[Duration, doc("how often the daemon claims due sources")] = 1.0
    lease: Annotated[Duration, doc("how long a source claim holds without renewal")] = 60.0
    max_polls: Annotated[Count, doc("polls running at once per instance")] = 20
    shutdown_deadline: Annotated[Duration, doc("how long a stop waits for work in flight")] = 30.0
    alert_max_age: Annotated[Duration, doc(
        "older articles (by publication date, else first seen) are stored, grouped and searchable "
        "but never alert: a new source's backlog does not flood the channels")] = 2 * DAY


@dataclass(frozen=True, config=_STRICT)
class FetchSettings:
    """``[fetch]``: how pages and feeds are requested."""

    allow_private_networks: Annotated[Flag, doc("loopback and private addresses are refused unless true")] = False
    timeout: Annotated[Duration, doc("the whole request, headers to last byte")] = 60.0
    connect_timeout: Annotated[Duration, doc("at most `timeout`")] = 10.0
    read_timeout: Annotated[Duration, doc("silence between two reads; at most `timeout`")] = 20.0
    max_bytes: Annotated[Count, doc("decoded bytes; larger responses are cut off with an error")] = 10 * 1024 * 1024
    max_redirects: Count = 5
    user_agent: Annotated[OptText, doc("default: monitor/VERSION (+project URL; contact)")] = None
    per_host: Annotated[Count, doc("requests at once to one host")] = 2
    concurrency: Annotated[Count, doc("requests at once in all")] = 20
    # Server hints (Cache-Control max-age, Expires, RSS <ttl>) may lengthen a source's interval,
    # clamped to [min_interval, max_interval]; they never shorten the interval the user set.
    min_interval: Duration = 60.0
    max_interval: Duration = 6 * 3600.0
    max_backoff: Annotated[Duration, doc("cap of the exponential backoff after failures")] = 6 * 3600.0
    broken_after: Annotated[Count, doc("consecutive failures before the 'source broken' notice")] = 5
    robots: Annotated[Flag, doc("honour robots.txt for HTML listing and article pages")] = True
    max_links_per_poll: Annotated[Count, doc(
        "new article links fetched per poll of a listing page or sitemap; the rest are fetched by the "
        "next polls, which come after at most min_interval and never send back validators")] = 100

    @model_validator(mode="after")
    def _within_total(self) -> FetchSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        # The connect and read timeouts are parts of the whole request: never longer than it.
        object.__setattr__(self, "connect_timeout", min(self.timeout, self.connect_timeout))
        object.__setattr__(self, "read_timeout", min(self.timeout, self.read_timeout))
        return self


@dataclass(frozen=True, config=_STRICT)
class HttpSettings:
    """``[http]``: the daemon's /healthz, /readyz and /metrics."""

    listen: Annotated[str | None, BeforeValidator(_listen), doc('"host:port"; off when absent')] = None

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True, config=_STRICT)
class RetentionSettings:
    """``[retention]``: what is deleted when."""

    articles: Annotated[Duration, doc("articles without a match are deleted after this")] = 30 * DAY
    alerts: Annotated[Duration, doc("matches, alerts, deliveries (and their articles) after this")] = 365 * DAY
    interval: Annotated[Duration, doc("how often the daemon prunes")] = 3600.0

    @model_validator(mode="after")
    def _alerts_outlive_articles(self) -> RetentionSettings:
        if self.alerts < self.articles:
            raise ValueError("alerts must be kept at least as long as articles")
        return self


@dataclass(frozen=True, config=_STRICT)
class DedupSettings:
    """``[dedup]``: how copies of one story are recognised."""

    window: Annotated[Duration, doc("how far back a new article is compared for copies")] = 7 * DAY
    min_containment: Annotated[float, BeforeValidator(_share), doc("share of the shorter text's word trigrams found in the other")] = 0.42
    events: Annotated[Flag, doc("reports of one event in any language or wording join one story (loads the sentence model)")] = True
    event_window: Annotated[Duration, doc("reports of one event are published within this of each other")] = 3 * DAY


@dataclass(frozen=True, config=_STRICT)
class SourceConfig:
    """``[[source]]``: one feed, site or sitemap. Keys of its ``type`` go into ``options``."""

    name: Text
    url: Annotated[str, BeforeValidator(_http_url)]
    type: Text = "feed"
    interval: Annotated[Duration, doc("how often it is polled")] = 300.0
    full_text: Annotated[Flag, doc("false: use the feed's own content, do not fetch pages")] = True
    allow_private_networks: Annotated[OptFlag, doc("default: [fetch] allow_private_networks")] = None
    robots: Annotated[OptFlag, doc("default: [fetch] robots")] = None
    options: Mapping[str, Any] = stdlib_field(default_factory=dict)
    timezone: Annotated[str | None, BeforeValidator(_zone), doc("IANA zone for the source's dates that carry none")] = None
    language: Annotated[str | None, BeforeValidator(_language), doc('e.g. "pl": hints the encoding and the usual time zone')] = None


@dataclass(frozen=True, config=_STRICT)
class EntityConfig:
    """``[entity.NAME]``: the aliases ``@NAME`` stands for in a query."""

    name: Text
    aliases: Annotated[tuple[str, ...], BeforeValidator(_aliases)]
    inflect: Annotated[Flag, doc("also match Russian, Ukrainian and Kazakh case forms")] = False
    display: Annotated[str | None, doc('name alerts show for a speaker who is this entity (default: the first alias)')] = None


@dataclass(frozen=True, config=_STRICT)
class RuleConfig:
    """``[[rule]]``: a query and where its alerts go. Alert-policy keys go into ``options``."""

    name: Text
    query: Text
    channels: Annotated[tuple[str, ...], BeforeValidator(_names)] = ()
    options: Mapping[str, Any] = stdlib_field(default_factory=dict)
    realert: Annotated[Literal["never", "new_statement"],
                       doc('"new_statement": alert again for a story\'s new matching sentence')] = "never"
    examples: Annotated[tuple[str, ...], BeforeValidator(_texts),
                        doc("sentences the rule's about() clauses must match (texts, or .txt files "
                            "of one per line, relative to the config): they calibrate the threshold")] = ()
    counterexamples: Annotated[tuple[str, ...], BeforeValidator(_texts),
                               doc("sentences they must not match (same forms)")] = ()


@dataclass(frozen=True, config=_STRICT)
class ChannelConfig:
    """``[[channel]]``: where alerts are sent; ``options`` are the keys of its ``type``."""

    name: Text
    type: Text
    options: Mapping[str, Any] = stdlib_field(default_factory=dict)


def resolve_database_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


@stdlib_dataclass(frozen=True)
class Config:
    """A whole validated config: the tables, the entries and the secrets to keep out of logs."""

    path: Path
    monitor: MonitorSettings
    fetch: FetchSettings
    sources: tuple[SourceConfig, ...]
    rules: tuple[RuleConfig, ...]
    channels: tuple[ChannelConfig, ...]
    entities: tuple[EntityConfig, ...] = ()
    http: HttpSettings = stdlib_field(default_factory=HttpSettings)
    retention: RetentionSettings = stdlib_field(default_factory=RetentionSettings)
    secrets: tuple[str, ...] = ()  # values that came from ${ENV} references: never logged
    dedup: DedupSettings = stdlib_field(default_factory=DedupSettings)

    def channel(self, name: str) -> ChannelConfig:
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config's folder."""
        return resolve_database_url(self.monitor.database, self.path.parent)


# Each table's key and its class, in the order problems are reported.
TABLES: dict[str, type] = {"monitor": MonitorSettings, "fetch": FetchSettings, "http": HttpSettings,
                           "retention": RetentionSettings, "dedup": DedupSettings}
TOP_KEYS = {*TABLES, "source", "rule", "channel", "entity"}
