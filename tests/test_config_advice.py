"""``check-config`` passes a config that cannot do what its author meant, and says so: a rule
with no channels never alerts, a channel no rule names never sends, no source polls nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli

# A rule that alerts through a channel: what both configs below have, and nothing to note.
KZ_TO_HOOK = """
[[rule]]
name = "kz"
query = "Kazakhstan"
channels = ["hook"]

[[channel]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def _check(tmp_path: Path, body: str) -> tuple[int, str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "sqlite:///m.db"\n{body}', encoding="utf-8")
    res = CliRunner().invoke(cli, ["--config", str(cfg), "check-config"], catch_exceptions=False)
    return res.exit_code, res.stdout


def test_check_config_notes_a_rule_that_can_never_alert_and_a_channel_nothing_uses(tmp_path: Path) -> None:
    code, out = _check(tmp_path, """
[[rule]]
name = "watch-only"
query = "mediator"
channels = []

""" + KZ_TO_HOOK + """
[[channel]]
name = "spare"
type = "webhook"
url = "http://127.0.0.1:9/spare"
""")
    assert code == 0  # valid: a note, not a refusal
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: config.toml: no [[source]]: nothing is polled (add one, or `monitor add-source URL`)",
        "note: config.toml: rule 'watch-only' has no channels: its matches are stored and shown in the console "
        "and `monitor backtest`, never sent",
        "note: config.toml: channel 'spare' is named by no rule (nor by [monitor] source_errors_to): "
        "nothing is sent through it",
    ]


def test_a_complete_config_gets_no_note(tmp_path: Path) -> None:
    code, out = _check(tmp_path, """source_errors_to = "ops"

[[source]]
name = "feed"
url = "http://127.0.0.1:9/feed.xml"

""" + KZ_TO_HOOK + """
[[channel]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/ops"
""")
    assert code == 0 and "note:" not in out, out
