"""CLI commands, grouped by what a user does. Each module lists its click commands in COMMANDS:

- ``sources``: add-source, import-opml, sources
- ``articles``: articles, stories, extract
- ``rules``: test-rule, backtest
- ``alerts``: alerts (and alerts retry), test-channel
- ``operations``: run, check-config, db upgrade, health, stats, prune
- ``web``: web (the console on its own)

Modules import only click at the top (stages inside each command), so ``monitor --help`` is quick.
Every command loads the config through ``commands.common.load_config``; read-only commands open
the database without migrating it.
"""

from __future__ import annotations

import click

from monitor.commands import alerts, articles, operations, rules, sources, web


def all_commands() -> list[click.Command]:
    return [*operations.COMMANDS, *sources.COMMANDS, *articles.COMMANDS, *rules.COMMANDS, *alerts.COMMANDS,
            *web.COMMANDS]
