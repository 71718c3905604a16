"""Command line: ``monitor [--config PATH] COMMAND``; the commands live in ``monitor.commands``."""

from __future__ import annotations

import click

from monitor import __version__
from monitor.commands import all_commands


@click.group()
@click.option("--config", "config", metavar="PATH", help="Config file (default: $MONITOR_CONFIG or ./config.toml).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
              default="INFO", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="MONITOR_LOG_FORMAT", help="json: one JSON object per line (for log shippers).")
@click.version_option(__version__, prog_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_level: str, log_format: str) -> None:
    """News-monitoring and alert daemon."""
    from pathlib import Path

    from monitor.ops import logs

    logs.setup(log_level, log_format)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = Path(config) if config else None


for _command in all_commands():
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="monitor")
