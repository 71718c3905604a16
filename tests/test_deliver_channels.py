"""Each channel type is one module that declares its keys, checks them and sends; the config
loader knows every type through that declaration alone."""

from __future__ import annotations

from pathlib import Path

import pytest

import monitor.stages  # noqa: F401  (every stage's config checks)
from monitor.config import ConfigError, load_config
from monitor.deliver.base import TYPES, build_channel

MINIMAL = {
    "email": 'host = "127.0.0.1"\nfrom = "m@example.org"\nto = "a@example.org"',
    "webhook": 'url = "http://127.0.0.1:9/hook"',
    "slack": 'url = "https://hooks.slack.test/x"',
    "telegram": 'token = "t"\nchat_id = "1"',
    "discord": 'url = "https://discord.test/api/webhooks/1/x"',
    "teams": 'url = "https://teams.test/flow"',
    "matrix": 'homeserver = "https://matrix.test"\naccess_token = "t"\nroom_id = "!r:matrix.test"',
    "ntfy": 'url = "https://ntfy.test/alerts"',
    "apprise": 'url = "json://127.0.0.1:9/"',
}


def _config(tmp_path: Path, ctype: str, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[channel]]\nname = "ch"\ntype = "{ctype}"\n{MINIMAL[ctype]}\n{extra}\n', encoding="utf-8")
    return cfg


def test_every_channel_type_has_its_module() -> None:
    assert set(TYPES) == set(MINIMAL)


@pytest.mark.parametrize("ctype", sorted(MINIMAL))
def test_each_type_loads_builds_and_names_a_misspelt_key(tmp_path: Path, ctype: str) -> None:
    config = load_config(_config(tmp_path, ctype))
    (ch,) = config.channels
    channel = build_channel(ch.name, ch.type, ch.options)
    assert (channel.name, channel.type) == ("ch", ctype)
    key = sorted(TYPES[ctype].keys)[0]
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, ctype, f'{key}x = "1"'))
    assert any(f"unknown key '{key}x'" in p and "config.toml:" in p for p in err.value.problems)
