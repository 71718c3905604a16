"""What the stages add to the config schema, registered by each stage when it is imported.

``monitor.config`` knows the shape of the file (tables, entries, durations, names) but not the
rule language, the channel types or the alert policy: those belong to the stages. So that config
imports none of them, each stage hands its checks to config at import time::

    from monitor import config

    # deliver (one call per channel type; r-flow: keep this next to each channel's send):
    config.register_channel_type("webhook", keys={"url", "headers", "secret"}, check=webhook_problems)
    # match:
    config.register_query_check(lambda query, entities: problem_or_None)
    config.register_alias_check(lambda alias: problem_or_None)
    # alerts: the extra keys a [[rule]] takes and their check
    config.register_rule_options({"mode", "digest", "timezone"}, check=RulePolicy.problems)
    # sources: a source type and its own keys
    config.register_source_type("sitemap", keys={"window"}, check=sitemap_problems)

Every ``check`` gets the entry's options (a mapping, ``${ENV}`` already expanded) and returns
problem strings without file, line or entry name (config adds those; a message that starts with a
quoted key, e.g. ``"'tls' must be ..."``, is placed on that key's line). A check must not raise.
Unknown keys are reported by config itself, with a "did you mean" hint, from ``keys``.

``monitor.stages`` imports every stage once, so that a program (CLI, daemon, tests) loading a
config gets all their checks. The registry is written only at import and read by every load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

OptionsCheck = Callable[[Mapping[str, Any]], list[str]]
QueryCheck = Callable[[str, Mapping[str, Any]], "str | None"]
AliasCheck = Callable[[str], "str | None"]


@dataclass(frozen=True)
class EntryType:
    """A channel or source type: its own keys and the check of their values."""

    name: str
    keys: frozenset[str]
    check: OptionsCheck | None = None


@dataclass
class Registry:
    channel_types: dict[str, EntryType] = field(default_factory=dict)
    channel_common_keys: set[str] = field(default_factory=set)
    channel_checks: list[OptionsCheck] = field(default_factory=list)  # every channel, any type
    source_types: dict[str, EntryType] = field(default_factory=dict)
    query_checks: list[QueryCheck] = field(default_factory=list)
    alias_checks: list[AliasCheck] = field(default_factory=list)
    rule_option_keys: set[str] = field(default_factory=set)
    rule_checks: list[OptionsCheck] = field(default_factory=list)

    def channel_keys(self, ctype: str) -> frozenset[str]:
        return self.channel_types[ctype].keys | self.channel_common_keys


REGISTRY = Registry()


def register_channel_type(name: str, keys: Iterable[str] = (), check: OptionsCheck | None = None,
                          registry: Registry = REGISTRY) -> None:
    """A channel ``type``: its keys and the check of their values."""
    registry.channel_types[name] = EntryType(name, frozenset(keys), check)


def register_channel_common(keys: Iterable[str], check: OptionsCheck | None = None,
                            registry: Registry = REGISTRY) -> None:
    """Keys every channel takes whatever its type (templates, quiet hours, rate limit), and their check."""
    registry.channel_common_keys.update(keys)
    if check is not None:
        registry.channel_checks.append(check)


def register_source_type(name: str, keys: Iterable[str] = (), check: OptionsCheck | None = None,
                         registry: Registry = REGISTRY) -> None:
    """A source ``type`` and the keys only it takes (kept in ``SourceConfig.options``)."""
    registry.source_types[name] = EntryType(name, frozenset(keys), check)


def register_query_check(check: QueryCheck, registry: Registry = REGISTRY) -> None:
    """``check(query, entities)``: why a rule's query is invalid (caret lines welcome), or None."""
    registry.query_checks.append(check)


def register_alias_check(check: AliasCheck, registry: Registry = REGISTRY) -> None:
    """``check(alias)``: why an entity alias can never match, or None."""
    registry.alias_checks.append(check)


def register_rule_options(keys: Iterable[str], check: OptionsCheck | None = None,
                          registry: Registry = REGISTRY) -> None:
    """Extra ``[[rule]]`` keys (kept in ``RuleConfig.options``) and their check."""
    registry.rule_option_keys.update(keys)
    if check is not None:
        registry.rule_checks.append(check)
