"""Channel types, one module each: its options (TypedDict), their check, and its send.

Importing this package registers every type with ``monitor.deliver.base`` (to build channels)
and with ``monitor.config`` (to check a config's ``[[channel]]`` entries). A new type is a new
module here that calls ``register(ChannelType(...))``, plus its line below.
"""

from monitor.deliver.channels import (
    apprise,
    discord,
    email,
    matrix,
    ntfy,
    slack,
    teams,
    telegram,
    webhook,
)

__all__ = ["apprise", "discord", "email", "matrix", "ntfy", "slack", "teams", "telegram", "webhook"]
