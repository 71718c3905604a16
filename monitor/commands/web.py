"""``monitor web``: the web console on its own, against the config's database (for a box that
only reads, or while the daemon runs elsewhere). A saved rule reaches a daemon running on the
same SQLite database through SIGHUP (its pid is in the database's lock file)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.config import Config

log = logging.getLogger(__name__)


def daemon_pid(database_url: str) -> int | None:
    """The pid of a daemon holding this SQLite database's instance lock (None: none running)."""
    from monitor.store.leases import InstanceLock

    path = InstanceLock(database_url).path
    if path is None or not path.exists():
        return None
    with open(path, "r+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a daemon is running, and the file names it
            text = f.read().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def signal_daemon(config: Config) -> tuple[bool, str]:
    pid = daemon_pid(config.database_url)
    if pid is None:
        if config.database_url.startswith("sqlite"):
            return False, "No daemon is running on this database; it reads the config when it starts."
        return False, ("Send SIGHUP to the daemons on this PostgreSQL database (systemctl reload monitor) "
                       "to apply it; they read it at their next start anyway.")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        return False, f"Could not signal the daemon (pid {pid}): {exc.strerror or exc}."
    return True, f"Sent SIGHUP to the daemon (pid {pid}); it reloads the config after validating it."


@click.command()
@click.option("--listen", metavar="HOST:PORT", help="Where to serve (default: [http] listen, else 127.0.0.1:8080).")
@click.pass_context
def web(ctx: click.Context, listen: str | None) -> None:
    """Serve the web console (and /healthz, /readyz, /metrics) until Ctrl-C or SIGTERM."""
    from monitor.commands.common import database, load_config_or_exit
    from monitor.config import HttpSettings

    config = load_config_or_exit(ctx)
    where = listen or config.http.listen or "127.0.0.1:8080"
    host, port = HttpSettings(listen=where).host_port
    with database(config, migrate=True) as engine:  # it writes (feedback, feed tokens)
        _serve(ctx, config, engine, host, port, where)


def _serve(ctx: click.Context, config: Config, engine: Engine, host: str, port: int, where: str) -> None:
    from monitor.config import load_config
    from monitor.ops import logs
    from monitor.web import AccessError, Console, Passwords, WebServer

    current = {"config": config}

    def set_config(new: Config) -> None:
        current["config"] = new
        logs.set_secrets(new.secrets)

    def reload() -> tuple[bool, str]:
        # The console's own view follows the file too (it may have been edited by hand).
        try:
            set_config(load_config(Path(current["config"].path)))
        except Exception as exc:  # keep showing the previous config
            log.warning("config not re-read: %s", exc)
        return signal_daemon(current["config"])

    console = Console(engine=engine, config=lambda: current["config"], reload=reload,
                      passwords=Passwords.from_env(), set_config=set_config)
    try:
        server = WebServer(host, port, console)
    except (OSError, AccessError) as exc:
        click.echo(f"cannot serve the console on {where}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}",
                   err=True)
        ctx.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    log.info("web console on http://%s:%d/ (database %s)", host, server.port, logs.redact(config.database_url))
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.stop()


COMMANDS = [web]
