"""The config: a leaf every stage may import, importing none of them.

- ``load_config(path)`` reads ``config.toml`` and returns a frozen ``Config`` or raises
  ``ConfigError`` listing every problem as ``file:line: entry: problem``.
- ``monitor.config.schema`` declares each setting once (type, default, meaning).
- Stages add their own checks (channel types, rule syntax, alert policy, source types) through
  the ``register_*`` functions at import; see ``monitor.config.registry`` for the shapes.
"""

from monitor.config.loader import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    ConfigError,
    config_path,
    did_you_mean,
    load_config,
)
from monitor.config.registry import (
    REGISTRY,
    Registry,
    register_alias_check,
    register_channel_common,
    register_channel_type,
    register_query_check,
    register_rule_options,
    register_source_type,
)
from monitor.config.schema import (
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
    resolve_database_url,
)
from monitor.util import parse_duration

__all__ = [
    "DEFAULT_CONFIG", "ENV_CONFIG", "REGISTRY", "ChannelConfig", "Config", "ConfigError", "DedupSettings",
    "EntityConfig", "FetchSettings", "HttpSettings", "MonitorSettings", "Registry", "RetentionSettings",
    "RuleConfig", "SourceConfig", "config_path", "did_you_mean", "load_config", "parse_duration",
    "register_alias_check", "register_channel_common", "register_channel_type", "register_query_check",
    "register_rule_options", "register_source_type", "resolve_database_url",
]
