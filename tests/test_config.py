"""Config validation: every problem named with its file, line and entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_duration
from tests.harness import ROOT, run_monitor

VALID = """
[monitor]
database = "sqlite:///monitor.db"

[fetch]
allow_private_networks = true

[[source]]
name = "Loopback News"
url = "http://127.0.0.1:8000/feed.xml"
interval = "5m"

[[rule]]
name = "kz-mediation"
query = 'Kazakhstan AND (mediator OR "venue for negotiations")'
channels = ["mail", "hook"]

[[channel]]
name = "mail"
type = "email"
host = "smtp.example.org"
port = 587
username = "alerts"
password = "${SMTP_PASSWORD}"
from = "monitor@example.org"
to = ["analyst@example.org"]
tls = "starttls"

[[channel]]
name = "hook"
type = "webhook"
url = "https://hooks.example.org/news"
"""


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={"SMTP_PASSWORD": "s3cret"} if env is None else env)
    return exc.value.problems


def test_valid_config_loads_with_secret_from_environment(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text(VALID, encoding="utf-8")
    cfg = load_config(p, env={"SMTP_PASSWORD": "s3cret"})
    assert cfg.channel("mail").options["password"] == "s3cret"
    assert cfg.sources[0].interval == 300
    assert cfg.rules[0].channels == ("mail", "hook")
    # A relative SQLite path is relative to the config file, not the working directory.
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'monitor.db'}"


def test_an_env_value_is_a_secret_when_its_key_or_its_variable_name_says_so(tmp_path: Path) -> None:
    """Secrets (hidden from logs, errors and console pages) are passwords, tokens, keys, a
    channel's URL and headers, and any ${NAME} whose name is secret-like; a host, a user name, an
    address or a feed's URL from the environment is shown as it is."""
    p = tmp_path / "config.toml"
    p.write_text("""
[monitor]
database = "postgresql+psycopg://monitor:${DB_PASSWORD}@${DB_HOST}/monitor"
[http]
listen = "${LISTEN}"
[[source]]
name = "plain"
url = "http://${FEED_HOST}:18000/seed-feed.xml"
[[source]]
name = "tokened"
url = "https://feeds.example/x?token=${FEED_TOKEN}"
[[source]]
name = "with a login"
url = "${PRIVATE_FEED}"
[[channel]]
name = "mail"
type = "email"
host = "${SMTP_HOST}"
username = "${SMTP_USERNAME}"
password = "${SMTP_PW}"
from = "${ALERT_EMAIL_FROM}"
to = ["${ALERT_EMAIL_TO}"]
[[channel]]
name = "hook"
type = "webhook"
url = "${WEBHOOK_URL}"
headers = { X-Tag = "${TAG}", Authorization = "Bearer literal-token-1" }
""", encoding="utf-8")
    cfg = load_config(p, env={
        "DB_PASSWORD": "db-pw-1", "DB_HOST": "db.internal", "LISTEN": "127.0.0.1:18080", "FEED_HOST": "127.0.0.1",
        "FEED_TOKEN": "feed-token-1", "PRIVATE_FEED": "https://reader:feed-pw-1@feeds.example/private",
        "SMTP_HOST": "127.0.0.1", "SMTP_USERNAME": "alerts", "SMTP_PW": "smtp-pw-1",
        "ALERT_EMAIL_FROM": "monitor@example.org", "ALERT_EMAIL_TO": "you@example.org",
        "WEBHOOK_URL": "https://hooks.example.org/services/T0/B0/hook-token-1", "TAG": "tag-value-1"})
    assert set(cfg.secrets) == {"db-pw-1", "feed-token-1", "feed-pw-1", "smtp-pw-1", "tag-value-1",
                                "https://hooks.example.org/services/T0/B0/hook-token-1", "Bearer literal-token-1"}


def test_a_valid_config_loads_without_looking_up_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key's line is found only for a message: each lookup compiles a pattern and scans the
    entry, which was most of a valid config's load (issue 15, start-up)."""
    from monitor.config import loader

    looked_up: list[str] = []
    real = loader._Locator.key_line

    def key_line(self: loader._Locator, start: int | None, key: str) -> int | None:
        looked_up.append(key)
        return real(self, start, key)

    monkeypatch.setattr(loader._Locator, "key_line", key_line)
    p = tmp_path / "config.toml"
    p.write_text(VALID, encoding="utf-8")
    assert load_config(p, env={"SMTP_PASSWORD": "s3cret"}).channel("mail").options["password"] == "s3cret"
    assert looked_up == []
    # A missing variable is still reported at its key's line (the one lookup made).
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    assert looked_up == ["password"] and "config.toml:24" in exc.value.problems[0], exc.value.problems


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID, env={})
    assert "SMTP_PASSWORD" in msg and "channel 'mail'" in msg and "config.toml:24" in msg


def test_rule_with_unknown_channel(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID.replace('channels = ["mail", "hook"]', 'channels = ["mail", "pager"]'))
    assert "rule 'kz-mediation'" in msg and "unknown channel 'pager'" in msg
    assert "config.toml:16:" in msg  # the channels line


def test_malformed_query_points_at_the_column(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID.replace("(mediator OR", "(mediator OR OR"))
    assert "rule 'kz-mediation'" in msg and "config.toml:15:" in msg
    lines = msg.splitlines()
    query_line = next(ln for ln in lines if "Kazakhstan AND" in ln)
    caret_line = lines[lines.index(query_line) + 1]
    assert query_line[caret_line.index("^"):].startswith("OR \"venue")


def test_unclosed_parenthesis_and_quote(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID.replace('(mediator OR "venue for negotiations")', '(mediator OR "venue'))
    assert "unclosed quote" in msg


def test_source_without_url(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID.replace('url = "http://127.0.0.1:8000/feed.xml"\n', ""))
    assert "source 'Loopback News'" in msg and "missing 'url'" in msg and "config.toml:8:" in msg


def test_unknown_keys_everywhere_are_all_reported(tmp_path: Path) -> None:
    text = VALID.replace('interval = "5m"', 'interval = "5m"\nintervall = "1m"')
    text = text.replace('tls = "starttls"', 'tls = "starttls"\nsmtp_host = "x"')
    text += "\n[extra]\nx = 1\n"
    found = problems(tmp_path, text)
    assert any("source 'Loopback News'" in p and "unknown key 'intervall'" in p and "config.toml:12:" in p for p in found)
    assert any("channel 'mail'" in p and "unknown key 'smtp_host'" in p for p in found)
    assert any("unknown top-level key 'extra'" in p for p in found)
    assert len(found) == 3


def test_bad_values(tmp_path: Path) -> None:
    text = VALID.replace('interval = "5m"', 'interval = "often"').replace('tls = "starttls"', 'tls = "maybe"')
    found = problems(tmp_path, text)
    assert any("interval" in p and "'often'" in p for p in found)
    assert any("'tls' must be" in p for p in found)


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, VALID.replace('interval = "5m"', "interval = 5m"))
    assert "invalid TOML" in msg and "line 11" in msg


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1.5h") == 5400
    assert parse_duration(45) == 45
    for bad in ("", "5x", "-1m", 0, True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(VALID, encoding="utf-8")
    ok = run_monitor(good, "check-config", env={"SMTP_PASSWORD": "x"})
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace('"hook"]', '"nope"]'), encoding="utf-8")
    res = run_monitor(bad, "check-config", env={"SMTP_PASSWORD": "x"})
    assert res.returncode != 0
    assert "unknown channel 'nope'" in res.stderr
    # `run` refuses the same config with the same message, before touching anything.
    res = run_monitor(bad, "run", "--once", env={"SMTP_PASSWORD": "x"})
    assert res.returncode != 0 and "unknown channel 'nope'" in res.stderr
    assert not (tmp_path / "monitor.db").exists()


def test_bundled_config_passes_check_config() -> None:
    env = {"SMTP_HOST": "smtp.example.org", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p",
           "ALERT_EMAIL_FROM": "monitor@example.org", "ALERT_EMAIL_TO": "analyst@example.org",
           "WEBHOOK_URL": "https://hooks.example.org/x"}
    res = run_monitor(ROOT / "config.toml", "check-config", env=env)
    assert res.returncode == 0, res.stderr


def test_monitor_config_environment_variable(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    p = tmp_path / "elsewhere.toml"
    p.write_text(VALID, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_CONFIG": str(p), "SMTP_PASSWORD": "x"}
    res = subprocess.run([sys.executable, "-m", "monitor", "check-config"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert res.returncode == 0, res.stderr
    assert str(p) in res.stdout


def test_an_entrys_settings_are_each_checked_once_with_every_problem_named() -> None:
    """Loading an entry runs each setting's check once (it ran twice: check_entry's own pass,
    then the entry's construction), and still names every problem: a bad value beside a missing
    or unknown key, or several bad values."""
    from collections import Counter
    from dataclasses import dataclass

    from monitor.config.schema import _Checked, check_entry, needed, setting

    calls: Counter[str] = Counter()

    def counted(name: str) -> Callable[[object], str]:
        def check(v: object) -> str:
            calls[name] += 1
            if v == "bad":
                raise ValueError(f"{name} is bad")
            return str(v)
        return check

    @dataclass(frozen=True)
    class Entry(_Checked):
        name: str = needed(counted("name"))
        url: str = setting("", counted("url"))

    entry, problems = check_entry(Entry, {"name": "a", "url": "b"})
    assert calls == {"name": 1, "url": 1}
    assert entry is not None and (entry.name, entry.url) == ("a", "b") and problems == []
    assert check_entry(Entry, {"name": "bad", "url": "bad"}) == (
        None, [("invalid", "name", "name is bad"), ("invalid", "url", "url is bad")])
    assert check_entry(Entry, {"url": "bad", "colour": "red"}) == (
        None, [("missing", "name", ""), ("invalid", "url", "url is bad"), ("unknown", "colour", "")])


def test_loading_a_config_builds_and_checks_each_rule_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 rules took 0.31 s of CPU to load, 0.17 s now: each rule was built (all its checks)
    a second time to put in its examples, even with no example file to read."""
    from monitor.config import schema

    built: list[str] = []
    post_init = schema._Checked.__post_init__

    def counting(self: schema._Checked) -> None:
        built.append(type(self).__name__)
        post_init(self)

    monkeypatch.setattr(schema._Checked, "__post_init__", counting)
    (tmp_path / "more.txt").write_text("# a comment\nAstana offers talks.\n", encoding="utf-8")
    rules = "".join(f"[[rule]]\nname = \"r{i}\"\nquery = 'Kazakhstan AND venue'\n"
                    'examples = ["Astana hosts the talks."]\n' for i in range(3))
    cfg = tmp_path / "config.toml"
    cfg.write_text('[monitor]\ndatabase = "sqlite:///m.db"\n' + rules + "[[rule]]\nname = \"files\"\nquery = 'talks'\nexamples = [\"more.txt\"]\n",
                   encoding="utf-8")
    loaded = load_config(cfg)
    assert [r.examples for r in loaded.rules][-2:] == [("Astana hosts the talks.",), ("Astana offers talks.",)]
    assert built.count("RuleConfig") == 4 + 1  # once each; the rule with an example file once more
