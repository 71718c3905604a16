"""What a valid config will not do that its author probably expects: said by ``check-config``
and when the daemon starts, never refused (a rule kept only to be read in the console is a
choice; a rule that was meant to alert and silently never does is a lost alert)."""

from __future__ import annotations

from monitor.config.schema import Config


def advice(config: Config) -> list[str]:
    """One sentence per thing the config leaves undone, naming the entry."""
    out: list[str] = []
    where = config.path.name
    if not config.sources:
        out.append(f"{where}: no [[source]]: nothing is polled (add one, or `monitor add-source URL`)")
    if not config.rules:
        out.append(f"{where}: no [[rule]]: articles are stored, nothing alerts")
    used = {c for r in config.rules for c in r.channels} | {config.monitor.source_errors_to}
    for r in config.rules:
        if not r.channels:
            out.append(f"{where}: rule {r.name!r} has no channels: its matches are stored and shown in the "
                       f"console and `monitor backtest`, never sent")
    for c in config.channels:
        if c.name not in used:
            out.append(f"{where}: channel {c.name!r} is named by no rule (nor by [monitor] source_errors_to): "
                       f"nothing is sent through it")
    return out
