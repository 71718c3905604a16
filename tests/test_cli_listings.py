"""What the listings print for a person at a terminal: whole channel names, and a word when a
list stopped at ``--limit`` (on stderr, so a pipe of the listing stays the listing)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from tests.deliver_helpers import add_alerts, store


def test_alerts_show_whole_channel_names_and_say_when_the_list_was_cut(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    engine = store(f"sqlite:///{db}")
    # two channels whose names share their start: both were cut to "mail- …"
    add_alerts(engine, 3, ("mail-blackhole", "mail-refused"), rule="kz-mediation-watch")
    engine.dispose()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "sqlite:///{db}"\n', encoding="utf-8")
    runner = CliRunner()
    every = runner.invoke(cli, ["--config", str(cfg), "alerts"], catch_exceptions=False)
    assert every.exit_code == 0
    rows = every.stdout.splitlines()[1:]
    assert len(rows) == 6
    assert sum("mail-blackhole" in r for r in rows) == 3 and sum("mail-refused" in r for r in rows) == 3
    assert all("kz-mediation-watch" in r for r in rows)
    assert "--limit" not in every.stderr  # all of them shown: nothing to say
    cut = runner.invoke(cli, ["--config", str(cfg), "alerts", "--limit", "4"], catch_exceptions=False)
    assert len(cut.stdout.splitlines()) == 1 + 4
    assert "the newest 4 deliveries; --limit N shows more" in cut.stderr
    articles = runner.invoke(cli, ["--config", str(cfg), "articles", "--limit", "2"], catch_exceptions=False)
    assert "the newest 2 articles" in articles.stderr and len(articles.stdout.splitlines()) == 1 + 2
