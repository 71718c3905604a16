"""Read ``config.toml``, expand ``${ENV}``, validate against the schema and the stages' checks.

Every problem is collected (not just the first) and reported with the file, the line and the
entry's name, because a user fixing a config wants the whole list in one go. A load keeps all its
state (problems, secrets found) in one ``_Load`` object, so two loads at once cannot mix.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar

from monitor.clean import redact, secret_set
from monitor.config.registry import REGISTRY, Registry
from monitor.config.schema import (
    TABLES,
    TOP_KEYS,
    ChannelConfig,
    Config,
    DedupSettings,
    EntityConfig,
    FetchSettings,
    HttpSettings,
    MonitorSettings,
    RetentionSettings,
    RuleConfig,
    SourceConfig,
    check_entry,
)

DEFAULT_CONFIG = "config.toml"
ENV_CONFIG = "MONITOR_CONFIG"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Which values are secrets (hidden from logs, errors, the database and every console page).
# A value is one when the key it is written under says so, or, for a ``${NAME}`` reference, when
# the variable's name does: ``url = "https://x/feed?token=${FEED_TOKEN}"`` hides the token and
# nothing else. A host, a port, a user name or an address taken from the environment is an
# ordinary setting and is shown as it is: hiding every ${ENV} value hid them as substrings of
# every log line ("16 *** created" for SMTP_USERNAME=alerts, "http://***:18080/" for a host).
_SECRET_KEY = re.compile(r"pass|secret|token|key|auth|credential|cookie", re.I)
# A channel's URL carries its credential (a Slack/Teams/Discord webhook's path, an Apprise URL),
# as do its request headers (Authorization, an API key under any name): a ${VAR} in either is
# a secret, and a URL written literally too.
_CHANNEL_SECRET_KEY = re.compile(_SECRET_KEY.pattern + r"|url|headers", re.I)
_SECRET_NAME = _SECRET_KEY  # a variable's name says it the same way: SMTP_PASSWORD, FEED_TOKEN, API_KEY
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@/\s]+)@", re.I)

T = TypeVar("T")


class ConfigError(Exception):
    """Raised with every problem found in a config, each already naming its place."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def config_path(explicit: str | None) -> Path:
    """The config to use: ``--config``, else ``$MONITOR_CONFIG``, else ``./config.toml``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'timeout'?)`` for a near miss of a known key, else ``""``."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.7)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Locator:
    """Finds the line of a ``[table]``, the n-th ``[[table]]`` entry and a key inside it."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()
        self._entries: dict[str, list[int]] = {}  # table -> its entries' lines, found once

    def entry_line(self, table: str, index: int) -> int | None:
        hits = self._entries.get(table)
        if hits is None:  # one scan per table, not per entry (10,000 rules: 10,000 scans)
            pat = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]")
            hits = self._entries[table] = [i + 1 for i, line in enumerate(self.lines) if pat.match(line)]
        return hits[index] if index < len(hits) else None

    def table_line(self, table: str) -> int | None:
        pat = re.compile(r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        return next((i + 1 for i, line in enumerate(self.lines) if pat.match(line)), None)

    def key_line(self, start: int | None, key: str) -> int | None:
        """The line of ``key = ...`` in the table starting at line ``start`` (1-based; 0 or
        None: the top of the file); the table's own line when the key is not written."""
        pat = re.compile(r"^\s*(" + re.escape(key) + r"|\"" + re.escape(key) + r"\")\s*=")
        for i in range(start or 0, len(self.lines)):
            line = self.lines[i]
            if re.match(r"^\s*\[", line):
                break
            if pat.match(line):
                return i + 1
        return start

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def _keyed(key: str, msg: str, name_durations: bool) -> str:
    """Put the key's name in front of a message that does not say it already."""
    if msg.startswith("must "):
        return f"{key} {msg}"
    if name_durations and msg.startswith(("not a duration", "duration must")):
        return f"{key}: {msg}"
    return msg


class _Load:
    def __init__(self, path: Path, text: str, data: dict[str, Any], env: Mapping[str, str], registry: Registry):
        self.path, self.data, self.env, self.reg = path, data, env, registry
        self.loc = _Locator(path, text)
        self.problems: list[str] = []
        self.secrets: set[str] = set()

    # -- helpers ------------------------------------------------------------------------------
    def add(self, line: int | None, label: str, msg: str) -> None:
        self.problems.append(f"{self.loc.where(line)}: {label}: {msg}" if label else f"{self.loc.where(line)}: {msg}")

    def expand(self, value: Any, line: Callable[[], int | None], label: str, secret: bool = False,
               secret_key: re.Pattern[str] = _SECRET_KEY) -> Any:
        """``${NAME}`` replaced by the environment; a missing variable is a problem (at ``line()``,
        looked up only then). The value of a reference is a secret when ``secret`` (the key it is
        written under is secret-like) or when the variable's name is (``SMTP_PASSWORD``,
        ``FEED_TOKEN``); a URL's password (``user:pw@host``) always is."""
        if isinstance(value, str):
            def sub(m: re.Match[str]) -> str:
                name = m.group(1)
                if name not in self.env:
                    self.add(line(), label, f"environment variable {name} is not set")
                    return ""
                found = self.env[name]
                if secret or _SECRET_NAME.search(name):
                    self.secrets.add(found)
                elif pw := _URL_PASSWORD.match(found.strip()):
                    self.secrets.add(pw.group(1))
                return found
            return _ENV_REF.sub(sub, value)
        if isinstance(value, list):
            return [self.expand(v, line, label, secret, secret_key) for v in value]
        if isinstance(value, dict):
            return {k: self.expand(v, line, label, secret or bool(secret_key.search(str(k))), secret_key)
                    for k, v in value.items()}
        return value

    def expand_entry(self, raw: Mapping[str, Any], start: int | None, label: str,
                     secret_key: re.Pattern[str] = _SECRET_KEY) -> dict[str, Any]:
        """Each key's value expanded; ``secret_key`` says which keys hold secrets (a channel's
        are more: its URL and headers carry credentials)."""
        # A key's line is looked up only for a problem: finding it compiles a pattern and scans
        # the entry, which was most of a valid config's load (issue 15).
        return {k: self.expand(v, functools.partial(self.loc.key_line, start, k), label,
                               bool(secret_key.search(k)), secret_key) for k, v in raw.items()}

    def unknown_keys(self, entry: Mapping[str, Any], known: Iterable[str], start: int | None, label: str) -> None:
        known = set(known)
        for k in entry:
            if k not in known:
                self.add(self.loc.key_line(start, k), label, f"unknown key {k!r}{did_you_mean(k, known)}")

    def validate(self, cls: type[T], values: dict[str, Any], start: int | None, label: str,
                 name_durations: bool = True) -> T | None:
        """``cls(**values)`` checked by the schema; each problem becomes a located one."""
        entry, problems = check_entry(cls, values)
        for kind, key, msg in problems:
            line = self.loc.key_line(start, key) if key else start
            if kind == "unknown":
                known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
                self.add(line, label, f"unknown key {key!r}{did_you_mean(key, known)}")
            elif kind == "missing":
                self.add(start, label, f"missing {key!r}")
            else:
                self.add(line, label, _keyed(key, msg, name_durations))
        return entry

    def check(self, checks: Iterable[Callable[[Mapping[str, Any]], list[str]]], opts: Mapping[str, Any],
              start: int | None, label: str) -> None:
        """A stage's checks; a message starting with a key ('tls' must...) goes to that key's line."""
        for c in checks:
            for msg in c(opts):
                m = re.match(r"^'?([\w-]+)", msg)
                line = self.loc.key_line(start, m.group(1)) if m and m.group(1) in opts else start
                self.add(line, label, msg)

    def entries(self, name: str) -> list[tuple[int | None, str, dict[str, Any]]]:
        """(line, label, raw entry) of each ``[[name]]``."""
        raw = self.data.get(name, [])
        if not isinstance(raw, list):
            self.problems.append(f"{self.path}: {name} must be written [[{name}]]")
            return []
        out = []
        for i, e in enumerate(raw):
            line = self.loc.entry_line(name, i)
            n = e.get("name") if isinstance(e, dict) else None
            label = f"{name} {n!r}" if isinstance(n, str) and n else f"{name} #{i + 1}"
            if not isinstance(e, dict):
                self.add(line, label, "must be a table")
                continue
            out.append((line, label, e))
        return out

    # -- the parts of a config ------------------------------------------------------------------
    def table(self, name: str, cls: type[T]) -> T:
        raw = self.data.get(name, {})
        line = self.loc.table_line(name)
        label = f"[{name}]"
        if not isinstance(raw, dict):
            self.add(line, "", f"{label} must be a table")
            return cls()
        values = self.expand_entry(raw, line, label)
        return self.validate(cls, values, line, label, name_durations=False) or cls()

    def channels(self) -> list[ChannelConfig]:
        out: list[ChannelConfig] = []
        seen: set[str] = set()
        for line, label, raw in self.entries("channel"):
            e = self.expand_entry(raw, line, label, _CHANNEL_SECRET_KEY)
            opts = {k: v for k, v in e.items() if k not in ("name", "type")}
            ch = self.validate(ChannelConfig, {"name": e.get("name"), "type": e.get("type"), "options": opts},
                               line, label)
            if ch is None:
                continue
            if self.reg.channel_types:
                known_types = self.reg.channel_types
                if ch.type not in known_types:
                    self.add(self.loc.key_line(line, "type"), label,
                             f"unknown type {ch.type!r}{did_you_mean(ch.type, known_types)} "
                             f"(known: {', '.join(sorted(known_types))})")
                else:
                    self.unknown_keys(opts, self.reg.channel_keys(ch.type), line, label)
                    ctype = known_types[ch.type]
                    self.check([c for c in (ctype.check, *self.reg.channel_checks) if c], opts, line, label)
            if ch.name in seen:  # a set: 10,000 rules were 50 M comparisons
                self.add(line, label, "duplicate channel name")
            seen.add(ch.name)
            out.append(ch)
        return out

    def entities(self) -> list[EntityConfig]:
        raw_entities = self.data.get("entity", {})
        if not isinstance(raw_entities, dict):
            self.problems.append(f"{self.path}: entities are written [entity.NAME] with aliases = [...]")
            return []
        out: list[EntityConfig] = []
        for name, e in raw_entities.items():
            line = self.loc.table_line(f"entity.{name}")
            label = f"entity {name!r}"
            if not isinstance(e, dict):
                self.add(line, label, "must be a table")
                continue
            ent = self.validate(EntityConfig, {"name": name, **self.expand_entry(e, line, label)}, line, label)
            if ent is None:
                continue
            usable = []
            for alias in ent.aliases:
                problem = next((p for c in self.reg.alias_checks if (p := c(alias))), None)
                if problem:  # reported once here; rules naming the entity use its other aliases
                    self.add(self.loc.key_line(line, "aliases"), label, f"alias {alias!r}: {problem}")
                else:
                    usable.append(alias)
            out.append(EntityConfig(name=ent.name, aliases=tuple(usable) or ent.aliases, inflect=ent.inflect,
                                    display=ent.display))
        return out

    def sources(self) -> list[SourceConfig]:
        out: list[SourceConfig] = []
        seen: set[str] = set()
        types = self.reg.source_types
        for line, label, raw in self.entries("source"):
            e = self.expand_entry(raw, line, label)
            stype = e.get("type", "feed")
            own = types[stype].keys if isinstance(stype, str) and stype in types else frozenset()
            if types and isinstance(stype, str) and stype not in types:  # not a string: the schema says so
                self.add(self.loc.key_line(line, "type"), label,
                         f"unknown type {stype!r} (known: {', '.join(types)})")
            # Keys of another type are unknown here: `links` belongs to type = "html".
            opts = {k: v for k, v in e.items() if k in own}
            values = {k: v for k, v in e.items() if k not in own}
            url = e.get("url")
            values.setdefault("name", "")
            if not values["name"] and isinstance(url, str):
                values["name"] = url.strip()
            values["options"] = opts
            if "options" in e:
                self.add(self.loc.key_line(line, "options"), label, "unknown key 'options'")
                continue
            sc = self.validate(SourceConfig, values, line, label)
            if isinstance(stype, str) and stype in types:
                self.check([c for c in (types[stype].check,) if c], opts, line, label)
            if sc is None:
                continue
            if sc.name in seen:  # a set: 10,000 rules were 50 M comparisons
                self.add(line, label, "duplicate source name")
            seen.add(sc.name)
            out.append(sc)
        return out

    def rules(self, channel_names: set[str], entities: list[EntityConfig]) -> list[RuleConfig]:
        out: list[RuleConfig] = []
        seen: set[str] = set()
        entity_map = {en.name: en for en in entities}
        option_keys = self.reg.rule_option_keys
        for line, label, raw in self.entries("rule"):
            e = self.expand_entry(raw, line, label)
            opts = {k: v for k, v in e.items() if k in option_keys}
            values = {k: v for k, v in e.items() if k not in option_keys}
            if "options" in e:
                self.add(self.loc.key_line(line, "options"), label, "unknown key 'options'")
                continue
            rule = self.validate(RuleConfig, {**values, "options": opts}, line, label)
            query = e.get("query")
            if isinstance(query, str) and query.strip():
                for qc in self.reg.query_checks:
                    problem = qc(query, entity_map)
                    if problem:
                        self.add(self.loc.key_line(line, "query"), label, problem)
            elif isinstance(query, str):  # the key is there: "missing" sent users looking for it
                self.add(self.loc.key_line(line, "query"), label, "'query' is empty")
            self.check(self.reg.rule_checks, opts, line, label)
            if rule is None:
                continue
            rule = self.example_files(rule, line, label)
            if rule.name in seen:  # a set: 10,000 rules were 50 M comparisons
                self.add(line, label, "duplicate rule name")
            seen.add(rule.name)
            for c in rule.channels:
                if c not in channel_names:
                    known = ", ".join(sorted(channel_names)) or "none defined"
                    self.add(self.loc.key_line(line, "channels"), label,
                             f"unknown channel {c!r}{did_you_mean(c, channel_names)} (known: {known})")
            out.append(rule)
        return out

    def example_files(self, rule: RuleConfig, line: int | None, label: str) -> RuleConfig:
        """``examples``/``counterexamples`` entries ending in .txt are files (relative to the
        config), one sentence per non-empty line ('#' starts a comment line): read them now.
        A rule without such files is the rule itself (its replacement, checks and all, and the
        config's path resolved were, for every rule, the third run of its checks)."""
        if not any(item.lower().endswith(".txt") for item in (*rule.examples, *rule.counterexamples)):
            return rule
        base = self.path.resolve().parent
        out: dict[str, tuple[str, ...]] = {}
        for key in ("examples", "counterexamples"):
            texts: list[str] = []
            for item in getattr(rule, key):
                if not item.lower().endswith(".txt"):
                    texts.append(item)
                    continue
                path = base / item
                try:
                    lines = path.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    reason = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc})"
                    self.add(self.loc.key_line(line, key), label, f"{key} file {item!r} {reason} (looked for {path})")
                    continue
                texts.extend(t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#"))
            out[key] = tuple(texts)
        return replace(rule, examples=out["examples"], counterexamples=out["counterexamples"])

    def secret_values(self, database: str) -> tuple[str, ...]:
        """Secrets to redact from logs, errors and pages: the ${ENV} values found secret (see
        ``expand``), a channel's passwords, tokens and URLs (chat webhooks carry their token in
        the URL) and its secret-named headers even when written literally, the database password."""
        found = set(self.secrets)
        channels = self.data.get("channel", [])
        for ch in channels if isinstance(channels, list) else []:
            if not isinstance(ch, dict):
                continue
            headers = ch.get("headers")
            values = [*(v for k, v in ch.items() if _CHANNEL_SECRET_KEY.search(k)),
                      *(v for k, v in (headers.items() if isinstance(headers, dict) else ())
                        if _SECRET_KEY.search(str(k)))]
            for v in values:
                if isinstance(v, str):
                    v = _ENV_REF.sub(lambda m: self.env.get(m.group(1), ""), v)
                    if len(v) >= 4:
                        found.add(v)
        m = re.match(r"^[a-z+]+://[^:/@]*:([^@]+)@", database)
        if m:
            found.add(m.group(1))
        return tuple(sorted(found, key=len, reverse=True))

    def run(self) -> Config:
        for key in self.data:
            if key not in TOP_KEYS:
                self.problems.append(f"{self.path}: unknown top-level key {key!r}{did_you_mean(key, TOP_KEYS)} "
                                     f"(known: {', '.join(sorted(TOP_KEYS))})")
        monitor = self.table("monitor", MonitorSettings)
        fetch = self.table("fetch", FetchSettings)
        http = self.table("http", HttpSettings)
        retention = self.table("retention", RetentionSettings)
        dedup = self.table("dedup", DedupSettings)
        assert set(TABLES) == {"monitor", "fetch", "http", "retention", "dedup"}
        channels = self.channels()  # first: rules refer to them
        names = {c.name for c in channels}
        entities = self.entities()
        sources = self.sources()
        rules = self.rules(names, entities)
        if monitor.source_errors_to and monitor.source_errors_to not in names:
            self.add(self.loc.key_line(self.loc.table_line("monitor"), "source_errors_to"), "[monitor]",
                     f"source_errors_to names unknown channel {monitor.source_errors_to!r}")
        if self.problems:
            # A problem may quote a value (an invalid URL from ${WEBHOOK_URL}): never print it.
            hidden = secret_set(self.secret_values(monitor.database))
            raise ConfigError([redact(p, hidden) for p in self.problems])
        return Config(path=self.path.resolve(), monitor=monitor, fetch=fetch, sources=tuple(sources),
                      rules=tuple(rules), channels=tuple(channels), entities=tuple(entities), http=http,
                      retention=retention, secrets=self.secret_values(monitor.database), dedup=dedup)


def load_config(path: Path | str, env: Mapping[str, str] | None = None, registry: Registry = REGISTRY) -> Config:
    """Read, expand and validate a config file; raise ConfigError listing every problem.

    The stages' own checks (rule syntax, channel types, alert policy) are those registered with
    ``registry``; ``import monitor.stages`` registers them all.
    """
    path = Path(path)
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
    return _Load(path, text, data, os.environ if env is None else env, registry).run()
