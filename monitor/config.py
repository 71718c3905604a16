"""Load and validate ``config.toml``.

Every problem is collected (not just the first) and reported with the file, the line and the
entry's name, because a user fixing a config wants the whole list in one go.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = "config.toml"
ENV_CONFIG = "MONITOR_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """Raised with every problem found in a config, each already naming its place."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_duration(value: object) -> float:
    """Seconds from ``"5m"``, ``"90s"``, ``"1h"``, ``"2d"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"duration must be positive: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f'not a duration: {value!r} (write e.g. "90s", "5m", "1h")')
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {value!r}")
    return seconds


@dataclass(frozen=True)
class MonitorSettings:
    database: str = "sqlite:///monitor.db"
    contact: str = ""
    delivery_interval: float = 30.0
    retry_delay: float = 30.0  # first retry of a failed delivery; doubles each attempt
    source_errors_to: str | None = None
    delivery_max_attempts: int = 30  # then the delivery is dead
    delivery_dead_after: float = 86400.0  # or when it is this old
    delivery_lease: float = 300.0  # a claim by an instance that died is taken over after this
    # Daemon (ops): how often due sources are claimed, how long a claim holds without renewal,
    # how many polls run at once per instance, how long a stop waits for work in flight.
    claim_interval: float = 1.0
    lease: float = 60.0
    max_polls: int = 20
    shutdown_deadline: float = 30.0


@dataclass(frozen=True)
class FetchSettings:
    allow_private_networks: bool = False
    timeout: float = 60.0  # the whole request, headers to last byte
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # silence between two reads
    max_bytes: int = 10 * 1024 * 1024  # decoded
    max_redirects: int = 5
    user_agent: str | None = None
    per_host: int = 2
    concurrency: int = 20
    # Server hints (Cache-Control max-age, Expires, RSS <ttl>) may lengthen a source's interval,
    # clamped to [min_interval, max_interval]; they never shorten the interval the user set.
    min_interval: float = 60.0
    max_interval: float = 6 * 3600.0
    max_backoff: float = 6 * 3600.0  # cap of the exponential backoff after failures
    broken_after: int = 5  # consecutive failures before the "source broken" notice
    robots: bool = True  # honour robots.txt for HTML listing and article pages


@dataclass(frozen=True)
class HttpSettings:
    listen: str | None = None  # "host:port" for /healthz, /readyz, /metrics; off when None

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True)
class RetentionSettings:
    articles: float = 30 * 86400.0  # articles without a match are deleted after this
    alerts: float = 365 * 86400.0  # matches, alerts, deliveries (and their articles) after this
    interval: float = 3600.0  # how often the daemon prunes


@dataclass(frozen=True)
class SourceConfig:
    name: str
    url: str
    type: str = "feed"
    interval: float = 300.0
    full_text: bool = True
    allow_private_networks: bool | None = None
    robots: bool | None = None  # None: [fetch] robots
    options: Mapping[str, Any] = field(default_factory=dict)
    timezone: str | None = None  # IANA zone for the source's dates that carry none
    language: str | None = None  # e.g. "pl": hints the encoding and the usual time zone


@dataclass(frozen=True)
class EntityConfig:
    name: str
    aliases: tuple[str, ...]
    inflect: bool = False


@dataclass(frozen=True)
class RuleConfig:
    name: str
    query: str
    channels: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    realert: str = "never"  # or "new_statement": alert again for a story's new matching sentence


@dataclass(frozen=True)
class DedupSettings:
    window: float = 7 * 86400.0  # how far back a new article is compared for copies
    min_containment: float = 0.42  # share of the shorter text's word trigrams found in the other


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    path: Path
    monitor: MonitorSettings
    fetch: FetchSettings
    sources: tuple[SourceConfig, ...]
    rules: tuple[RuleConfig, ...]
    channels: tuple[ChannelConfig, ...]
    entities: tuple[EntityConfig, ...] = ()
    http: HttpSettings = HttpSettings()
    retention: RetentionSettings = RetentionSettings()
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
        return resolve_database_url(self.monitor.database, self.path.parent)


def resolve_database_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


# Known keys per table. Channel types add their own keys (see monitor.deliver).
SOURCE_KEYS = {"name", "url", "type", "interval", "full_text", "allow_private_networks", "robots", "timezone",
               "language"}
SOURCE_TYPE_KEYS: dict[str, set[str]] = {"feed": set(), "html": {"links"}, "sitemap": {"window"}}
RULE_KEYS = {"name", "query", "channels", "mode", "digest", "timezone", "realert"}
RULE_OPTION_KEYS = {"mode", "digest", "timezone"}  # kept in RuleConfig.options
REALERT_VALUES = ("never", "new_statement")
DEDUP_KEYS = {"window", "min_containment"}
ENTITY_KEYS = {"aliases", "inflect"}
MONITOR_KEYS = {"database", "contact", "delivery_interval", "retry_delay", "source_errors_to",
                "delivery_max_attempts", "delivery_dead_after", "delivery_lease",
                "claim_interval", "lease", "max_polls", "shutdown_deadline"}
FETCH_KEYS = {"allow_private_networks", "timeout", "connect_timeout", "read_timeout", "max_bytes",
              "max_redirects", "user_agent", "per_host", "concurrency", "min_interval", "max_interval",
              "max_backoff", "broken_after", "robots"}
HTTP_KEYS = {"listen"}
RETENTION_KEYS = {"articles", "alerts", "interval"}
TOP_KEYS = {"monitor", "fetch", "source", "rule", "channel", "entity", "http", "retention", "dedup"}

# Hooks that later stages register to validate their own part of the config, so that this module
# does not need to know every channel type or the rule language. Each returns problem strings.
ChannelValidator = Callable[[str, Mapping[str, Any]], list[str]]
CHANNEL_TYPES: dict[str, tuple[set[str], ChannelValidator | None]] = {}


class _Locator:
    """Finds the line of the n-th ``[[table]]`` entry and of a key inside it, for messages."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def entry_line(self, table: str, index: int) -> int | None:
        pat = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]")
        seen = -1
        for i, line in enumerate(self.lines):
            if pat.match(line):
                seen += 1
                if seen == index:
                    return i + 1
        return None

    def table_line(self, table: str) -> int | None:
        pat = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        for i, line in enumerate(self.lines):
            if pat.match(line):
                return i + 1
        return None

    def key_line(self, start: int | None, key: str) -> int | None:
        if start is None:
            return None
        pat = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for i in range(start, len(self.lines)):
            line = self.lines[i]
            if re.match(r"^\s*\[", line):
                break
            if pat.match(line):
                return i + 1
        return start

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


# Environment variables whose values are taken for secrets (kept out of every log line).
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|WEBHOOK|HOOK_URL|DSN|DATABASE", re.I)
# The secret values expanded by the load in progress (load_config is not re-entrant on a thread).
_expanded_secrets: list[str] = []


def _expand_env(value: Any, problems: list[str], where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                problems.append(f"{where}: environment variable {name} is not set")
                return ""
            if _SECRET_NAME.search(name) and len(env[name]) >= 4:
                _expanded_secrets.append(env[name])
            return env[name]
        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [_expand_env(v, problems, where, env) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v, problems, where, env) for k, v in value.items()}
    return value


def _secret_values(data: Mapping[str, Any], database: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """Secrets to redact from logs: ${ENV} values with secret-like names, channel passwords and
    tokens, webhook URLs (chat webhooks carry their token in the URL), the database password."""
    found = set(_expanded_secrets)
    for ch in data.get("channel", []) if isinstance(data.get("channel"), list) else []:
        if isinstance(ch, dict):
            for k, v in ch.items():
                if isinstance(v, str) and re.search(r"pass|secret|token|key|url", k, re.I):
                    v = _ENV_REF.sub(lambda m: env.get(m.group(1), ""), v)
                    if len(v) >= 4:
                        found.add(v)
    m = re.match(r"^[a-z+]+://[^:/@]*:([^@]+)@", database)
    if m:
        found.add(m.group(1))
    return tuple(sorted(found, key=len, reverse=True))


def config_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError listing every problem."""
    # Imported here: the rule language and channels import config types themselves.
    from monitor.alerts.policy import RulePolicy
    from monitor.deliver import validate_channel
    from monitor.match import QuerySyntaxError, compile_query
    from monitor.match.query import entity_alias_problem

    path = Path(path)
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: config is not UTF-8: {exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc

    loc = _Locator(path, text)
    problems: list[str] = []

    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"{path}: unknown top-level key {key!r} (known: {', '.join(sorted(TOP_KEYS))})")

    def table(name: str, keys: set[str]) -> dict[str, Any]:
        raw = data.get(name, {})
        line = loc.table_line(name)
        if not isinstance(raw, dict):
            problems.append(f"{loc.where(line)}: [{name}] must be a table")
            return {}
        for k in raw:
            if k not in keys:
                problems.append(f"{loc.where(loc.key_line(line, k))}: [{name}]: unknown key {k!r}")
        return _expand_env({k: v for k, v in raw.items() if k in keys}, problems, loc.where(line), env)

    _expanded_secrets.clear()
    mon = table("monitor", MONITOR_KEYS)
    fet = table("fetch", FETCH_KEYS)
    htt = table("http", HTTP_KEYS)
    ret = table("retention", RETENTION_KEYS)
    monitor = MonitorSettings()
    fetch = FetchSettings()
    try:
        monitor = MonitorSettings(
            database=str(mon.get("database", monitor.database)),
            contact=str(mon.get("contact", "")),
            delivery_interval=parse_duration(mon.get("delivery_interval", 30)),
            retry_delay=parse_duration(mon.get("retry_delay", 30)),
            source_errors_to=mon.get("source_errors_to"),
            delivery_max_attempts=_int(mon.get("delivery_max_attempts", 30), "delivery_max_attempts"),
            delivery_dead_after=parse_duration(mon.get("delivery_dead_after", "24h")),
            delivery_lease=parse_duration(mon.get("delivery_lease", "5m")),
            claim_interval=parse_duration(mon.get("claim_interval", monitor.claim_interval)),
            lease=parse_duration(mon.get("lease", monitor.lease)),
            max_polls=_int(mon.get("max_polls", monitor.max_polls), "max_polls"),
            shutdown_deadline=parse_duration(mon.get("shutdown_deadline", monitor.shutdown_deadline)),
        )
    except ValueError as exc:
        problems.append(f"{loc.where(loc.table_line('monitor'))}: [monitor]: {exc}")
    try:
        total = parse_duration(fet.get("timeout", fetch.timeout))
        fetch = FetchSettings(
            allow_private_networks=_bool(fet.get("allow_private_networks", False), "allow_private_networks"),
            timeout=total,
            connect_timeout=min(total, parse_duration(fet.get("connect_timeout", fetch.connect_timeout))),
            read_timeout=min(total, parse_duration(fet.get("read_timeout", fetch.read_timeout))),
            max_bytes=_int(fet.get("max_bytes", fetch.max_bytes), "max_bytes"),
            max_redirects=_int(fet.get("max_redirects", fetch.max_redirects), "max_redirects"),
            user_agent=fet.get("user_agent"),
            per_host=_int(fet.get("per_host", fetch.per_host), "per_host"),
            concurrency=_int(fet.get("concurrency", fetch.concurrency), "concurrency"),
            min_interval=parse_duration(fet.get("min_interval", fetch.min_interval)),
            max_interval=parse_duration(fet.get("max_interval", fetch.max_interval)),
            max_backoff=parse_duration(fet.get("max_backoff", fetch.max_backoff)),
            broken_after=_int(fet.get("broken_after", fetch.broken_after), "broken_after"),
            robots=_bool(fet.get("robots", True), "robots"),
        )
        if fetch.min_interval > fetch.max_interval:
            raise ValueError("min_interval is longer than max_interval")
    except ValueError as exc:
        problems.append(f"{loc.where(loc.table_line('fetch'))}: [fetch]: {exc}")
    ded = table("dedup", DEDUP_KEYS)
    dedup = DedupSettings()
    try:
        mc = ded.get("min_containment", dedup.min_containment)
        if isinstance(mc, bool) or not isinstance(mc, int | float) or not 0 < mc <= 1:
            raise ValueError(f"min_containment must be a number in (0, 1], got {mc!r}")
        dedup = DedupSettings(window=parse_duration(ded.get("window", "7d")), min_containment=float(mc))
    except ValueError as exc:
        problems.append(f"{loc.where(loc.table_line('dedup'))}: [dedup]: {exc}")

    http = HttpSettings()
    listen = htt.get("listen")
    if listen is not None:
        if not isinstance(listen, str) or not re.match(r"^(\[[0-9a-fA-F:]+\]|[\w.-]*):\d{1,5}$", listen) \
                or not 0 < int(listen.rpartition(":")[2]) < 65536:
            problems.append(f"{loc.where(loc.key_line(loc.table_line('http'), 'listen'))}: [http]: "
                            f"listen must be \"host:port\", e.g. \"127.0.0.1:8080\", got {listen!r}")
        else:
            http = HttpSettings(listen=listen)
    retention = RetentionSettings()
    try:
        retention = RetentionSettings(
            articles=parse_duration(ret.get("articles", retention.articles)),
            alerts=parse_duration(ret.get("alerts", retention.alerts)),
            interval=parse_duration(ret.get("interval", retention.interval)),
        )
        if retention.alerts < retention.articles:
            problems.append(f"{loc.where(loc.table_line('retention'))}: [retention]: alerts must be kept "
                            f"at least as long as articles")
    except ValueError as exc:
        problems.append(f"{loc.where(loc.table_line('retention'))}: [retention]: {exc}")

    def entries(name: str) -> list[tuple[int, int | None, dict[str, Any]]]:
        raw = data.get(name, [])
        if not isinstance(raw, list):
            problems.append(f"{path}: {name} must be written [[{name}]]")
            return []
        return [(i, loc.entry_line(name, i), e) for i, e in enumerate(raw)]

    def label(kind: str, index: int, entry: Mapping[str, Any]) -> str:
        name = entry.get("name")
        return f"{kind} {name!r}" if isinstance(name, str) and name else f"{kind} #{index + 1}"

    # Channels first: rules refer to them.
    channels: list[ChannelConfig] = []
    for i, line, raw in entries("channel"):
        lab = label("channel", i, raw)
        where = loc.where(line)
        e = {k: _expand_env(v, problems, f"{loc.where(loc.key_line(line, k))}: {lab}", env) for k, v in raw.items()}
        name, ctype = e.get("name"), e.get("type")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: {lab}: missing 'name'")
            continue
        if not isinstance(ctype, str):
            problems.append(f"{where}: {lab}: missing 'type'")
            continue
        for msg in validate_channel(ctype, {k: v for k, v in e.items() if k not in ("name", "type")}):
            problems.append(f"{where}: {lab}: {msg}")
        if any(c.name == name for c in channels):
            problems.append(f"{where}: {lab}: duplicate channel name")
        channels.append(ChannelConfig(name=name, type=ctype, options={k: v for k, v in e.items() if k not in ("name", "type")}))
    channel_names = {c.name for c in channels}

    entities: list[EntityConfig] = []
    raw_entities = data.get("entity", {})
    if not isinstance(raw_entities, dict):
        problems.append(f"{path}: entities are written [entity.NAME] with aliases = [...]")
        raw_entities = {}
    for ename, e in raw_entities.items():
        where = loc.where(loc.table_line(f"entity.{ename}"))
        if not isinstance(e, dict):
            problems.append(f"{where}: entity {ename!r} must be a table")
            continue
        for k in e:
            if k not in ENTITY_KEYS:
                problems.append(f"{where}: entity {ename!r}: unknown key {k!r}")
        aliases = e.get("aliases")
        if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
            problems.append(f"{where}: entity {ename!r}: 'aliases' must be a non-empty list of strings")
            continue
        usable = []
        for a in aliases:
            alias_problem = entity_alias_problem(a)
            if alias_problem:
                # Reported once here; rules naming the entity use its other aliases.
                problems.append(f"{loc.where(loc.key_line(loc.table_line(f'entity.{ename}'), 'aliases'))}: "
                                f"entity {ename!r}: alias {a!r}: {alias_problem}")
            else:
                usable.append(a)
        entities.append(EntityConfig(name=ename, aliases=tuple(usable or aliases), inflect=bool(e.get("inflect", False))))
    entity_map = {e.name: e for e in entities}

    sources: list[SourceConfig] = []
    for i, line, raw in entries("source"):
        lab = label("source", i, raw)
        where = loc.where(line)
        e = {k: _expand_env(v, problems, f"{loc.where(loc.key_line(line, k))}: {lab}", env) for k, v in raw.items()}
        stype = e.get("type", "feed")
        allowed = SOURCE_KEYS | SOURCE_TYPE_KEYS.get(stype, set())
        for k in e:
            if k not in allowed:
                problems.append(f"{loc.where(loc.key_line(line, k))}: {lab}: unknown key {k!r}")
        if stype not in SOURCE_TYPE_KEYS:
            problems.append(f"{where}: {lab}: unknown type {stype!r} (known: {', '.join(SOURCE_TYPE_KEYS)})")
        url = e.get("url")
        if not isinstance(url, str) or not url.strip():
            problems.append(f"{where}: {lab}: missing 'url'")
            continue
        if not re.match(r"^https?://[^/\s]+", url.strip()):
            problems.append(f"{loc.where(loc.key_line(line, 'url'))}: {lab}: 'url' must be an http(s) URL, got {url!r}")
            continue
        name = e.get("name") or url
        if any(s.name == name for s in sources):
            problems.append(f"{where}: {lab}: duplicate source name")
        try:
            interval = parse_duration(e.get("interval", "5m"))
        except ValueError as exc:
            problems.append(f"{loc.where(loc.key_line(line, 'interval'))}: {lab}: interval: {exc}")
            continue
        apn = e.get("allow_private_networks")
        robots = e.get("robots")
        for key, value in (("allow_private_networks", apn), ("robots", robots), ("full_text", e.get("full_text"))):
            if value is not None and not isinstance(value, bool):
                problems.append(f"{loc.where(loc.key_line(line, key))}: {lab}: {key} must be true or false, got {value!r}")
        problems.extend(f"{loc.where(loc.key_line(line, k))}: {lab}: {msg}"
                        for k, msg in _source_option_problems(stype, e))
        tz = e.get("timezone")
        if tz is not None and not _valid_zone(tz):
            problems.append(f"{loc.where(loc.key_line(line, 'timezone'))}: {lab}: unknown time zone {tz!r} (an IANA name such as 'Europe/Rome')")
        slang = e.get("language")
        if slang is not None and not (isinstance(slang, str) and re.match(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$", slang)):
            problems.append(f"{loc.where(loc.key_line(line, 'language'))}: {lab}: language must be a code such as 'it' or 'pt-BR', got {slang!r}")
        sources.append(SourceConfig(
            name=str(name), url=url.strip(), type=stype, interval=interval,
            full_text=bool(e.get("full_text", True)),
            allow_private_networks=None if apn is None else bool(apn),
            robots=None if robots is None else bool(robots),
            options={k: v for k, v in e.items() if k not in SOURCE_KEYS},
            timezone=tz if isinstance(tz, str) else None, language=slang if isinstance(slang, str) else None,
        ))

    rules: list[RuleConfig] = []
    for i, line, raw in entries("rule"):
        lab = label("rule", i, raw)
        where = loc.where(line)
        e = {k: _expand_env(v, problems, f"{loc.where(loc.key_line(line, k))}: {lab}", env) for k, v in raw.items()}
        for k in e:
            if k not in RULE_KEYS:
                problems.append(f"{loc.where(loc.key_line(line, k))}: {lab}: unknown key {k!r}")
        name, query = e.get("name"), e.get("query")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: {lab}: missing 'name'")
            continue
        if any(r.name == name for r in rules):
            problems.append(f"{where}: {lab}: duplicate rule name")
        if not isinstance(query, str) or not query.strip():
            problems.append(f"{where}: {lab}: missing 'query'")
            continue
        try:
            compile_query(query, entity_map)
        except QuerySyntaxError as exc:
            problems.append(f"{loc.where(loc.key_line(line, 'query'))}: {lab}: {exc.describe()}")
        chans = e.get("channels", [])
        if isinstance(chans, str):
            chans = [chans]
        if not isinstance(chans, list) or not all(isinstance(c, str) for c in chans):
            problems.append(f"{where}: {lab}: 'channels' must be a list of channel names")
            chans = []
        for c in chans:
            if c not in channel_names:
                known = ", ".join(sorted(channel_names)) or "none defined"
                problems.append(f"{loc.where(loc.key_line(line, 'channels'))}: {lab}: unknown channel {c!r} (known: {known})")
        realert = e.get("realert", "never")
        if realert not in REALERT_VALUES:
            problems.append(f"{loc.where(loc.key_line(line, 'realert'))}: {lab}: realert must be one of "
                            f"{', '.join(repr(v) for v in REALERT_VALUES)}, got {realert!r}")
            realert = "never"
        rule_opts = {k: v for k, v in e.items() if k not in RULE_KEYS or k in RULE_OPTION_KEYS}
        for msg in RulePolicy.problems(rule_opts):
            problems.append(f"{where}: {lab}: {msg}")
        rules.append(RuleConfig(name=name, query=query, channels=tuple(chans), options=rule_opts, realert=realert))

    if monitor.source_errors_to and monitor.source_errors_to not in channel_names:
        problems.append(f"{loc.where(loc.table_line('monitor'))}: [monitor]: source_errors_to names unknown channel {monitor.source_errors_to!r}")

    if problems:
        raise ConfigError(problems)
    return Config(path=path.resolve(), monitor=monitor, fetch=fetch, sources=tuple(sources),
                  rules=tuple(rules), channels=tuple(channels), entities=tuple(entities),
                  http=http, retention=retention, secrets=_secret_values(data, monitor.database, env), dedup=dedup)


def _source_option_problems(stype: object, e: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, message) for bad type-specific source options (html ``links``, sitemap ``window``)."""
    out: list[tuple[str, str]] = []
    links = e.get("links")
    if stype == "html" and links is not None:
        if not isinstance(links, str) or not links.strip():
            out.append(("links", "links must be a CSS selector string"))
        else:
            import soupsieve

            try:
                soupsieve.compile(links)
            except Exception as exc:
                out.append(("links", f"links is not a valid CSS selector: {exc}"))
    if stype == "sitemap" and "window" in e:
        try:
            parse_duration(e["window"])
        except ValueError as exc:
            out.append(("window", f"window: {exc}"))
    return out


def _bool(v: object, name: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be true or false, got {v!r}")
    return v


def _int(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ValueError(f"{name} must be a positive whole number, got {v!r}")
    return v


def _valid_zone(name: object) -> bool:
    from zoneinfo import ZoneInfo

    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return False
    return True
