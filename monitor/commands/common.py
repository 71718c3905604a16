"""What every command shares: the one config loader and the database opener.

Kept light (click only at import) so that ``monitor --help`` does not load the stages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import click

from monitor.util import plural

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.config import Config


def config_path(ctx: click.Context) -> Path:
    """``--config``, else ``$MONITOR_CONFIG``, else ``./config.toml``."""
    root = ctx.find_root()
    explicit = root.obj.get("config_path") if isinstance(root.obj, dict) else None
    if explicit is not None:
        return Path(explicit)
    from monitor.config import config_path as default_path

    return default_path(None)


def _no_config(path: Path) -> str:
    return (f"no config at {path.resolve()}: give one with `monitor --config PATH ...` or "
            f"MONITOR_CONFIG=PATH (default: ./config.toml)")


def load_config(ctx: click.Context, need: Literal["required", "optional", "lenient"] = "required") -> Config | None:
    """The one config loader of the CLI.

    ``required``: the validated config, or every problem printed and exit 2.
    ``optional``: as required when the file exists; None when there is none (add-source works
    before a config exists). ``lenient``: a config with problems gives a warning and None
    (test-rule --query and extract need no channels or secrets).
    """
    path = config_path(ctx)
    if need != "required" and not path.exists():
        return None
    _check_model_early(path)
    import monitor.stages  # noqa: F401  (each stage registers its config checks)
    from monitor.config import ConfigError
    from monitor.config import load_config as load
    from monitor.ops import logs

    try:
        config = load(path)
    except ConfigError as exc:
        if need == "lenient":
            click.echo(f"warning: {path} not used ({plural(len(exc.problems), 'problem')}; "
                       f"`monitor check-config` lists them)", err=True)
            return None
        if not path.exists():
            click.echo(_no_config(path), err=True)
        else:
            for p in exc.problems:
                click.echo(p, err=True)
            click.echo(f"{plural(len(exc.problems), 'problem')} in {path}", err=True)
        ctx.exit(2)
    logs.set_secrets(config.secrets)
    return config


def _check_model_early(path: Path) -> None:
    """An ``about()`` rule's config check needs the sentence model's package checked (hashing
    its 32 MB, ~25 ms of CPU): when the file mentions ``about(``, start that on a thread now, so
    it runs on the other core while the stages are imported; the rule's check then gets the
    same answer (a mention in a comment only checks the package once more for nothing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # the loader says what is wrong with the file
    if "about(" in text.lower():
        from monitor.embed.check import check_in_background

        check_in_background()


def load_config_or_exit(ctx: click.Context) -> Config:
    """The validated config, or its problems printed and exit 2."""
    config = load_config(ctx, "required")
    assert config is not None
    return config


@contextmanager
def database(config: Config, migrate: bool = False) -> Iterator[Engine]:
    """An engine on the config's database, disposed after use.

    Read-only commands (``migrate=False``) never change the schema: an old or missing one is a
    clear error naming ``monitor db upgrade``. Commands that write bring the schema up to date.
    """
    from sqlalchemy.exc import DBAPIError

    from monitor.store import (
        DatabaseNotWritable,
        SchemaOutdated,
        check_schema,
        create_db_engine,
        upgrade,
    )
    from monitor.store.db import not_writable

    url = config.database_url
    if not migrate and url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise click.ClickException(f"no database at {url[len('sqlite:///'):]} yet: run `monitor db upgrade` "
                                   f"(or `monitor run`, which creates it)")
    engine = create_db_engine(config.database_url)
    try:
        if migrate:
            upgrade(engine)
        else:
            try:
                check_schema(engine)
            except SchemaOutdated as exc:
                raise click.ClickException(f"{config.database_url}: {exc}") from exc
        yield engine
    except DatabaseNotWritable as exc:
        raise click.ClickException(str(exc)) from None
    except DBAPIError as exc:
        # A command that writes, on a database that refuses writes: its name and what to do.
        refused = not_writable(str(engine.url), exc)
        if refused is None:
            raise
        raise click.ClickException(str(refused)) from None
    finally:
        engine.dispose()


def cut(text: str | None, width: int) -> str:
    """``text`` on one line, cut at a word boundary with " …" to fit ``width`` (``--json`` has the
    whole text)."""
    from textwrap import shorten

    flat = " ".join((text or "").split())
    short = shorten(flat, width, placeholder=" …")
    if short.strip(" …") or not flat:
        return short
    return flat[:width - 1] + "…"  # one word longer than the width: cut inside it rather than show "…" alone


def say_if_cut(shown: int, limit: int, what: str) -> None:
    """On stderr (a pipe of the listing stays the listing): the list stopped at ``--limit``, and
    how to see more; a user counting rows would otherwise take the newest ``limit`` for all."""
    if shown >= limit:
        click.echo(f"(the newest {limit} {what}; --limit N shows more)", err=True)


def widths(values: list[str], least: int, most: int) -> int:
    """A column's width: its longest value's, between ``least`` (the header) and ``most``: two
    channels named "mail-blackhole" and "mail-refused" were both cut to "mail- …"."""
    return max(least, min(most, max((len(v) for v in values), default=0)))


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with its UTC offset (SQLite hands back naive UTC)."""
    from monitor.util import aware

    return None if dt is None else aware(dt).isoformat()


JSON_HELP = "One JSON array on stdout, one object per line inside it (see README: JSON output)."


class JsonArray:
    """``--json`` output, the same for every command that lists things: ONE JSON array on stdout.

    Items are written as they come (a backtest over a month streams), one compact object per
    line between ``[`` and ``]``, so the output is line-oriented for grep and still a single
    document for ``json.loads`` and ``jq '.[]'``. The closing ``]`` is written only when the
    command got to the end: output cut short by a crash does not parse, so it is never mistaken
    for a short, complete result. ``[]`` when there is nothing.
    """

    def __init__(self) -> None:
        self.count = 0

    def add(self, item: dict[str, Any]) -> None:
        click.echo(("[\n" if self.count == 0 else ",\n") + json.dumps(item, ensure_ascii=False), nl=False)
        self.count += 1

    def __enter__(self) -> JsonArray:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            click.echo("\n]" if self.count else "[]")


def echo_json_array(items: Iterable[dict[str, Any]]) -> None:
    """A whole list as ``--json`` prints it (see JsonArray)."""
    with JsonArray() as out:
        for it in items:
            out.add(it)
