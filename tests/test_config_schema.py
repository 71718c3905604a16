"""The config schema: every problem of an entry, on its own line, with a hint for near misses."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from monitor.config import (
    ConfigError,
    FetchSettings,
    HttpSettings,
    MonitorSettings,
    SourceConfig,
    load_config,
)


def _problems(tmp_path: Path, text: str) -> list[str]:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    return exc.value.problems


def test_every_problem_of_a_source_is_reported(tmp_path: Path) -> None:
    found = _problems(tmp_path, '[[source]]\nname = "x"\nurl = "ftp://nope"\ninterval = "often"\nrobots = "yes"\n')
    text = "\n".join(found)
    assert "config.toml:3: source 'x': 'url' must be an http(s) URL" in text
    assert "config.toml:4: source 'x': interval: not a duration: 'often'" in text  # no longer hidden by the URL
    assert "config.toml:5: source 'x': robots must be true or false" in text


def test_a_table_setting_is_reported_at_its_own_line(tmp_path: Path) -> None:
    [msg] = _problems(tmp_path, '# my config\n\n[monitor]\ncontact = "x"\nretry_delay = "30 seconds"\n')
    assert msg.startswith(f"{tmp_path / 'config.toml'}:5: [monitor]: not a duration: '30 seconds'")


def test_alert_hold_may_be_none_but_not_hours(tmp_path: Path) -> None:
    """``alert_hold``: "0s" sends at once (every other duration must be positive); a hold of
    hours would make every alert late news, and says so at its line."""
    p = tmp_path / "config.toml"
    p.write_text('[monitor]\nalert_hold = "0s"\n', encoding="utf-8")
    assert load_config(p, env={}).monitor.alert_hold == 0.0
    p.write_text("[monitor]\n", encoding="utf-8")
    assert load_config(p, env={}).monitor.alert_hold == 60.0
    [msg] = _problems(tmp_path, '[monitor]\ncontact = "x"\nalert_hold = "2h"\n')
    assert msg.startswith(f"{tmp_path / 'config.toml'}:3: [monitor]: alert_hold must be at most 1h"), msg


def test_unknown_keys_get_a_did_you_mean(tmp_path: Path) -> None:
    found = _problems(tmp_path, '[fetch]\ntimout = "20s"\n\n[[source]]\nname = "x"\nurl = "https://a.example/"\n'
                                'intervall = "5m"\n\n[[rule]]\nname = "r"\nquery = "x"\nchanels = []\n\n[sorce]\n')
    text = "\n".join(found)
    assert "config.toml:2: [fetch]: unknown key 'timout' (did you mean 'timeout'?)" in text
    assert "config.toml:7: source 'x': unknown key 'intervall' (did you mean 'interval'?)" in text
    assert "config.toml:12: rule 'r': unknown key 'chanels' (did you mean 'channels'?)" in text
    assert "unknown top-level key 'sorce' (did you mean 'source'?)" in text


def test_channel_problems_point_at_the_key(tmp_path: Path) -> None:
    found = _problems(tmp_path, '[[channel]]\nname = "m"\ntype = "email"\nhost = "h"\nfrom = "a@b"\nto = "c@d"\n'
                                'tls = "maybe"\nprot = 25\n')
    text = "\n".join(found)
    assert "config.toml:7: channel 'm': 'tls' must be" in text
    assert "config.toml:8: channel 'm': unknown key 'prot' (did you mean 'port'?)" in text


def test_defaults_are_declared_once_in_the_schema() -> None:
    from monitor.deliver.worker import DeliverySettings
    from monitor.story.stories import StoryIndex

    assert DeliverySettings().lease == MonitorSettings().delivery_lease == 300
    index = StoryIndex()
    assert (index.window, index.min_containment) == (7 * 86400, 0.42)


def test_loads_at_the_same_time_keep_their_own_secrets(tmp_path: Path) -> None:
    # A reload racing another load (two quick SIGHUPs) must not lose or mix secrets for redaction.
    p = tmp_path / "config.toml"
    p.write_text('[[channel]]\nname = "h"\ntype = "webhook"\nurl = "https://hooks.example/${HOOK_TOKEN}"\n',
                 encoding="utf-8")
    results: dict[int, tuple[str, ...]] = {}

    def load(i: int) -> None:
        for _ in range(20):
            results[i] = load_config(p, env={"HOOK_TOKEN": f"token-{i}-secret"}).secrets

    threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, secrets in results.items():
        assert f"token-{i}-secret" in secrets
        assert not any(f"token-{j}-secret" in s for s in secrets for j in results if j != i)


def test_a_table_built_in_code_is_checked_like_one_from_the_file() -> None:
    fetch = FetchSettings(timeout="20s", read_timeout="1m")  # type: ignore[arg-type]
    assert (fetch.timeout, fetch.read_timeout) == (20.0, 20.0)  # converted, then capped by timeout
    with pytest.raises(ValueError, match="listen must be"):
        HttpSettings(listen="nowhere")
    with pytest.raises(ValueError, match="interval: not a duration"):
        SourceConfig(name="x", url="https://a.example/", interval="often")  # type: ignore[arg-type]


def test_a_source_type_that_is_not_a_string_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    [msg] = _problems(tmp_path, '[[source]]\nname = "x"\nurl = "https://a.example/"\ntype = ["html"]\n')
    assert msg.endswith("config.toml:4: source 'x': type must be a string, got ['html']"), msg
