"""CLI commands by area. Each module has ``register(cli)``; add yours to MODULES."""

from __future__ import annotations

import importlib

import click

MODULES: list[str] = [
    "deliver",
    "extract",
    "ops",
    "story",
    "fetch",
    "match",
]


def register_all(cli: click.Group) -> None:
    for name in MODULES:
        importlib.import_module(f"monitor.commands.{name}").register(cli)
