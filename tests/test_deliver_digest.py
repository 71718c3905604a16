"""Digests on a controlled clock, rate-limit overflow into the digest, quiet hours, and the
config checks for rule modes, schedules and templates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from monitor.alerts.policy import ChannelPolicy, RulePolicy
from monitor.alerts.render import DEFAULT_TEMPLATES, AlertMessage
from monitor.config import ConfigError, load_config
from monitor.deliver.base import build_channel
from monitor.deliver.worker import Deliverer
from monitor.store import Alert, Delivery, session_scope
from tests.deliver_helpers import add_alerts, statuses, store
from tests.servers import Page, Site

ALMATY = ZoneInfo("Asia/Almaty")


def _hook(site: Site) -> dict[str, object]:
    site.pages["/hook"] = Page(b"{}", "application/json")
    return {"hook": build_channel("hook", "webhook", {"url": site.url("/hook")})}


def test_daily_digest_groups_by_rule_and_story_on_a_controlled_clock(database_url: str, site: Site) -> None:
    engine = store(database_url)
    created = datetime.now(UTC)
    add_alerts(engine, 1, ("hook",), rule="kz", outlet="Loopback Pravda", story=1)
    add_alerts(engine, 1, ("hook",), rule="kz", outlet="Kazinform", story=1, first=1)  # a reprint
    add_alerts(engine, 1, ("hook",), rule="kz", outlet="TASS", story=2, first=2)
    add_alerts(engine, 1, ("hook",), rule="instant-rule", outlet="TASS", story=3, first=3)
    now = [created + timedelta(seconds=1)]
    w = Deliverer(engine, _hook(site),  # type: ignore[arg-type]
                  rules={"kz": RulePolicy.from_options({"mode": "digest", "digest": "daily 08:00",
                                                        "timezone": "Asia/Almaty"})},
                  clock=lambda: now[0])

    report = asyncio.run(w.run())
    assert report.sent == 1 and report.held == 3  # the instant rule goes at once
    [instant] = site.post_json("/hook")
    assert instant["rule"] == "instant-rule"
    due_local = created.astimezone(ALMATY).replace(hour=8, minute=0, second=0, microsecond=0)
    if due_local <= created:
        due_local += timedelta(days=1)
    with session_scope(engine) as s:
        held = s.exec(select(Delivery).where(Delivery.status == "digest")).all()
        assert {d.digest_due_at.replace(tzinfo=UTC) if d.digest_due_at.tzinfo is None else d.digest_due_at
                for d in held if d.digest_due_at} == {due_local.astimezone(UTC)}

    now[0] = due_local.astimezone(UTC) - timedelta(seconds=1)
    assert asyncio.run(w.run()).sent == 0 and len(site.posts("/hook")) == 1
    now[0] = due_local.astimezone(UTC) + timedelta(seconds=1)
    report = asyncio.run(w.run())
    assert report.digests == 1 and report.sent == 1
    digest = site.post_json("/hook")[-1]
    assert digest["kind"] == "digest" and digest["count"] == 3
    assert digest["subject"] == "Digest: 3 alerts for kz"
    assert statuses(engine) == {"sent": 5}  # 4 alert deliveries (3 via the digest) + the digest
    now[0] += timedelta(days=2)
    assert asyncio.run(w.run()).sent == 0 and len(site.posts("/hook")) == 2

    # The digest's text: one group, two stories, the reprint folded into "also reported by".
    with session_scope(engine) as s:
        a = s.exec(select(Alert).where(Alert.kind == "digest")).one()
        msg = AlertMessage.from_payload(a.id or 0, a.key, dict(a.payload))
    text = DEFAULT_TEMPLATES.render(msg, "text")
    assert text.count("== kz (3) ==") == 1 and text.count("* Story") == 2
    assert "Also reported by: Kazinform" in text
    html = DEFAULT_TEMPLATES.render(msg, "html")
    assert "<mark>venue for negotiations</mark>" in html and "Also reported by: Kazinform" in html
    engine.dispose()


def test_rate_limit_overflow_goes_into_the_next_digest(database_url: str, site: Site) -> None:
    engine = store(database_url)
    add_alerts(engine, 5, ("hook",))
    now = [datetime.now(UTC) + timedelta(seconds=1)]
    w = Deliverer(engine, _hook(site),  # type: ignore[arg-type]
                  policies={"hook": ChannelPolicy.from_options({"rate_limit": "2/60m", "digest": "hourly"})},
                  clock=lambda: now[0])
    report = asyncio.run(w.run())
    assert report.sent == 2 and report.held == 3
    assert statuses(engine) == {"sent": 2, "digest": 3}
    now[0] = now[0].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1, seconds=1)
    report = asyncio.run(w.run())
    assert report.digests == 1 and report.sent == 1
    posts = site.post_json("/hook")
    assert [p["kind"] for p in posts] == ["alert", "alert", "digest"]
    got = {p["title"] for p in posts[:2]} | {i["title"] for i in posts[2]["items"]}
    assert got == {f"Story {i} <b>&</b>" for i in range(5)}  # none dropped, none twice
    engine.dispose()


def test_quiet_hours_hold_alerts_until_they_end(tmp_path: Path, site: Site) -> None:
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 2, ("hook",))
    berlin = ZoneInfo("Europe/Berlin")
    local = datetime.now(berlin) + timedelta(days=1)
    night = local.replace(hour=23, minute=30, second=0, microsecond=0)
    now = [night.astimezone(UTC)]
    w = Deliverer(engine, _hook(site),  # type: ignore[arg-type]
                  policies={"hook": ChannelPolicy.from_options({"quiet_hours": "22:00-07:00",
                                                                "timezone": "Europe/Berlin"})},
                  clock=lambda: now[0])
    assert asyncio.run(w.run()).sent == 0 and statuses(engine) == {"pending": 2}
    now[0] = (night + timedelta(hours=7)).astimezone(UTC)  # 06:30
    assert asyncio.run(w.run()).sent == 0
    now[0] = (night + timedelta(hours=7, minutes=31)).astimezone(UTC)  # 07:01
    assert asyncio.run(w.run()).sent == 2 and len(site.posts("/hook")) == 2


def _config(tmp_path: Path, rule_extra: str = "", channel_extra: str = "") -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f"""[monitor]
database = "sqlite:///m.db"

[[rule]]
name = "kz"
query = "Kazakhstan"
channels = ["hook"]
{rule_extra}

[[channel]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/hook"
{channel_extra}
""", encoding="utf-8")
    return p


@pytest.mark.parametrize(("rule_extra", "channel_extra", "expected"), [
    ("", 'text = "{{ rule }"', "channel 'hook': template 'text' (line 1): TemplateSyntaxError"),
    ("", 'subject = "{{ no_such_variable }}"', "'no_such_variable' is undefined"),
    ("", 'digest_html = "{% for g in groups %}{{ g.nope.deeper }}{% endfor %}"', "template 'digest_html'"),
    ('mode = "digest"', "", "rule 'kz': mode = \"digest\" needs a schedule"),
    ('mode = "digest"\ndigest = "weekly-ish"', "", "'digest' 'weekly-ish'"),
    ('mode = "digest"\ndigest = "daily 25:00"', "", "no such time of day"),
    ('digest = "hourly"\ntimezone = "Mars/Olympus"', "", "unknown timezone 'Mars/Olympus'"),
    ('mode = "sometimes"', "", "'mode' must be \"instant\" or \"digest\""),
    ("", 'rate_limit = "lots"', "'rate_limit' must look like"),
    ("", 'quiet_hours = "late"', "'quiet_hours' must look like"),
    ("", 'colour = "red"', "unknown key 'colour'"),
])
def test_config_rejects_bad_modes_schedules_and_templates(tmp_path: Path, rule_extra: str, channel_extra: str,
                                                          expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, rule_extra, channel_extra))
    text = "\n".join(err.value.problems)
    assert expected in text, text
    assert str(tmp_path / "config.toml") + ":" in text


def test_config_accepts_good_modes_and_templates(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, 'mode = "digest"\ndigest = "0 8 * * 1-5"\ntimezone = "Asia/Almaty"',
                              'subject = "{{ rule }}: {{ title }} ({{ also_reported_by | length }})"\n'
                              'quiet_hours = "22:00-07:00"\nrate_limit = "10/1h"\ndigest = "daily 18:00"'))
    assert RulePolicy.from_options(cfg.rules[0].options).mode == "digest"
    channel = build_channel("hook", "webhook", cfg.channels[0].options)
    msg = AlertMessage.from_payload(1, "kz:1:hook", {"kind": "match", "rule": "kz", "title": "T", "url": "u", "outlet": "o",
                                        "statements": []}, ("A", "B"))
    assert channel.templates.render(msg, "subject") == "kz: T (2)"


def test_a_dead_digest_is_retried_whole_and_its_alerts_are_never_sent_alone(tmp_path: Path, site: Site) -> None:
    from monitor.alerts.outbox import retry

    site.pages["/hook"] = Page(b"gone", "text/plain", 410)  # permanent: dead at once
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 3, ("hook",))
    now = [datetime.now(UTC) + timedelta(seconds=1)]
    w = Deliverer(engine, {"hook": build_channel("hook", "webhook", {"url": site.url("/hook"),
                                                                     "timezone": "Asia/Almaty"})},
                  rules={"kz": RulePolicy.from_options({"mode": "digest", "digest": "hourly"})},
                  clock=lambda: now[0])
    asyncio.run(w.run())
    now[0] += timedelta(hours=1, minutes=1)
    assert asyncio.run(w.run()).dead == 1
    assert statuses(engine) == {"dead": 4}
    with session_scope(engine) as s:
        assert retry(s, dead=True) == 1  # the digest only
    assert statuses(engine) == {"pending": 1, "batched": 3}
    site.pages["/hook"] = Page(b"{}", "application/json")
    assert asyncio.run(w.run()).sent == 1
    assert statuses(engine) == {"sent": 4}
    refused, accepted = site.post_json("/hook")  # the same digest, twice: nothing sent alone
    assert refused == accepted and accepted["kind"] == "digest" and accepted["count"] == 3
    # Times are shown in the channel's timezone.
    with session_scope(engine) as s:
        a = s.exec(select(Alert).where(Alert.kind == "digest")).one()
        msg = AlertMessage.from_payload(a.id or 0, a.key, dict(a.payload))
    assert "2025-09-24 12:15 +05" in w.channels["hook"].templates.render(msg, "text")


def test_a_template_that_fails_on_a_real_alert_falls_back_to_the_default() -> None:
    from monitor.alerts.render import Templates

    t = Templates({"text": "{{ statements[0].text }} / {{ statements[1].text }}"})
    msg = AlertMessage.from_payload(1, "kz:1:hook", {"kind": "match", "rule": "kz", "title": "T", "url": "https://x.org/a",
                                        "outlet": "o", "statements": []})
    assert t.render(msg, "text") == DEFAULT_TEMPLATES.render(msg, "text")
    assert "Rule: kz" in t.render(msg, "text")
