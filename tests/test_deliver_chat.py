"""Chat channels, checked at the HTTP layer against each platform's documented format and limits.

The platforms cannot run here, so a loopback server stands in for each API and the test asserts
the exact request: endpoint, method, auth, body shape, escaping, and that a long statement is
cut cleanly within the platform's limit.
"""

from __future__ import annotations

import asyncio
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.render import AlertMessage
from monitor.deliver.base import DeliveryError, build_channel, validate_channel
from monitor.deliver.worker import Deliverer
from tests.deliver_helpers import add_alerts, statuses, store
from tests.harness import run_monitor
from tests.servers import Page, Site

NASTY = 'Kazakhstan <script>alert("x")</script> & *bold* _it_ @everyone <!channel> is a venue for negotiations.'
LONG = ("Kazakhstan is ready to be a venue for negotiations between Russia and Ukraine, "
        "the minister said & repeated <again>. ") * 120  # ~12,000 characters


def _msg(text: str = NASTY, also: tuple[str, ...] = ("Kazinform", "TASS")) -> AlertMessage:
    start = text.index("venue")
    payload = {"kind": "match", "rule": "kz-mediation", "article_id": 1, "title": "Title <b>& more</b>",
               "url": "https://example.org/news/1?a=1&b=2", "outlet": "Loopback Pravda",
               "published": "2025-09-24T07:15:00+00:00", "speaker": "the minister",
               "statements": [{"text": text, "highlights": [[start, start + 22]], "speaker": "the minister"}]}
    return AlertMessage.from_payload(7, "kz-mediation:1:chat", payload, also)


def _send(ctype: str, opts: dict[str, Any], msg: AlertMessage) -> None:
    asyncio.run(build_channel("chat", ctype, opts).send(msg))


class _Balanced(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in ("br", "hr", "img"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"


def _assert_balanced(markup: str) -> None:
    p = _Balanced()
    p.feed(markup)
    assert p.stack == [], p.stack


def test_slack_blocks_mrkdwn_escaped_and_within_limits(site: Site) -> None:
    site.pages["/services/T/B/X"] = Page(b"ok", "text/plain")
    url = site.url("/services/T/B/X")
    _send("slack", {"url": url}, _msg())
    _send("slack", {"url": url}, _msg(LONG))
    short, long = site.post_json("/services/T/B/X")
    blocks = short["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Title <b>& more</b>"}}
    quote = blocks[1]["text"]
    assert blocks[1]["text"]["type"] == "mrkdwn"
    q = quote["text"]
    assert "&lt;script&gt;" in q and "&amp;" in q and "<!channel>" not in q and "&lt;!channel&gt;" in q
    assert "*venue for negotiations*" in q and "— _the minister_" in q
    assert "Kazinform, TASS" in blocks[2]["elements"][0]["text"]
    assert blocks[3]["text"]["text"] == "<https://example.org/news/1?a=1&b=2|Open the article>"
    assert short["text"] == "[kz-mediation] Title &lt;b&gt;&amp; more&lt;/b&gt;"
    long_text = long["blocks"][1]["text"]["text"]
    assert len(long_text) <= 3000 and long_text.rstrip().endswith("…") is False  # speaker line follows
    assert "…\n> — _the minister_" in long_text
    assert "&amp" not in long_text.split("…")[0][-5:]  # never cut inside an entity


def test_telegram_html_escaped_and_cut_to_4096(site: Site) -> None:
    site.pages["/botTOKEN123/sendMessage"] = Page(b'{"ok": true, "result": {}}', "application/json")
    opts = {"token": "TOKEN123", "chat_id": "-100123", "api_url": site.base}
    _send("telegram", opts, _msg())
    _send("telegram", opts, _msg(LONG))
    short, long = site.post_json("/botTOKEN123/sendMessage")
    assert short["chat_id"] == "-100123" and short["parse_mode"] == "HTML"
    assert short["link_preview_options"] == {"is_disabled": True}
    t = short["text"]
    assert t.startswith("<b>Title &lt;b&gt;&amp; more&lt;/b&gt;</b>")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in t and "<b>venue for negotiations</b>" in t
    assert '<a href="https://example.org/news/1?a=1&amp;b=2">Open the article</a>' in t
    assert "Also reported by Kazinform, TASS" in t
    _assert_balanced(t)
    lt = long["text"]
    assert 3500 < len(lt) <= 4096
    _assert_balanced(lt)
    assert "…" in lt and lt.endswith("Open the article</a>")


def test_telegram_rate_limit_and_bad_token(site: Site) -> None:
    site.pages["/botT/sendMessage"] = Page(b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}',
                                           "application/json", 429)
    site.pages["/botBAD/sendMessage"] = Page(b'{"ok":false,"error_code":401,"description":"Unauthorized"}',
                                             "application/json", 401)
    with pytest.raises(DeliveryError) as slow:
        _send("telegram", {"token": "T", "chat_id": 1, "api_url": site.base}, _msg())
    assert slow.value.retry_after == 17 and not slow.value.permanent
    with pytest.raises(DeliveryError) as bad:
        _send("telegram", {"token": "BAD", "chat_id": 1, "api_url": site.base}, _msg())
    assert bad.value.permanent and "BAD" not in str(bad.value)


def test_discord_embed_limits_and_no_pings(site: Site) -> None:
    site.pages["/api/webhooks/1/abc?wait=true"] = Page(b'{"id": "1"}', "application/json")
    url = site.url("/api/webhooks/1/abc")
    _send("discord", {"url": url, "username": "monitor"}, _msg())
    _send("discord", {"url": url}, _msg(LONG))
    reqs = site.posts()
    assert [r.path for r in reqs] == ["/api/webhooks/1/abc?wait=true"] * 2
    short, long = (json.loads(r.body) for r in reqs)
    assert short["allowed_mentions"] == {"parse": []} and short["username"] == "monitor"
    [e] = short["embeds"]
    assert e["title"] == "Title <b>& more</b>" and e["url"] == "https://example.org/news/1?a=1&b=2"
    assert "\\*bold\\*" in e["description"] and "\\_it\\_" in e["description"]
    assert "**venue for negotiations**" in e["description"]
    assert e["timestamp"] == "2025-09-24T07:15:00+00:00"
    assert {"name": "Also reported by", "value": "Kazinform, TASS"} in e["fields"]
    [le] = long["embeds"]
    assert len(le["description"]) <= 4096 and "…" in le["description"]
    total = len(le["title"]) + len(le["description"]) + len(le["footer"]["text"]) + \
        sum(len(f["name"]) + len(f["value"]) for f in le["fields"])
    assert total <= 6000


def test_teams_workflow_adaptive_card(site: Site) -> None:
    site.pages["/workflows/run"] = Page(b"", "text/plain", 202)
    _send("teams", {"url": site.url("/workflows/run")}, _msg())
    _send("teams", {"url": site.url("/workflows/run")}, _msg(LONG * 3))
    short, long = site.posts("/workflows/run")
    body = json.loads(short.body)
    assert body["type"] == "message"
    [att] = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive" and att["contentUrl"] is None
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the article",
                                "url": "https://example.org/news/1?a=1&b=2"}]
    texts = json.dumps(card["body"])
    assert "**venue for negotiations**" in texts and "\\\\*bold\\\\*" in texts
    assert len(long.body) <= 28_000


def test_matrix_html_with_stable_transaction_id(site: Site) -> None:
    seen: list[str] = []

    def handle(req: Any) -> Page:
        seen.append(req.path)
        return Page(b'{"event_id": "$e"}', "application/json")
    room = "!room:example.org"
    prefix = "/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/"
    msg = _msg()
    site.pages[prefix + msg.delivery_id] = handle
    opts = {"homeserver": site.base, "access_token": "syt_secret", "room_id": room}
    _send("matrix", opts, msg)
    _send("matrix", opts, msg)  # a repeat uses the same transaction id: the homeserver dedups
    r1, r2 = [r for r in site.requests if r.method == "PUT"]
    site.pages[prefix + msg.delivery_id] = Page(b'{"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500}',
                                                "application/json", 429)
    with pytest.raises(DeliveryError) as limited:
        _send("matrix", opts, msg)
    assert limited.value.retry_after == 2.5 and not limited.value.permanent
    assert r1.path == r2.path == prefix + msg.delivery_id
    assert r1.headers["authorization"] == "Bearer syt_secret"
    body = json.loads(r1.body)
    assert body["msgtype"] == "m.text" and body["format"] == "org.matrix.custom.html"
    assert "<strong>venue for negotiations</strong>" in body["formatted_body"]
    assert "&lt;script&gt;" in body["formatted_body"] and "<script>" not in body["formatted_body"]
    assert "style=" not in body["formatted_body"] and "<mark>" not in body["formatted_body"]
    assert "Also reported by: Kazinform, TASS" in body["body"]
    _assert_balanced(body["formatted_body"])


def test_ntfy_json_publish(site: Site) -> None:
    site.pages["/"] = Page(b'{"id": "x"}', "application/json")
    _send("ntfy", {"url": site.url("/kz-alerts"), "token": "tk_1", "priority": "high", "tags": ["news"]},
          _msg(LONG))
    [r] = site.posts("/")
    body = json.loads(r.body)
    assert body["topic"] == "kz-alerts" and body["priority"] == 4 and body["tags"] == ["news"]
    assert body["title"] == "[kz-mediation] Title <b>& more</b>"
    assert body["click"] == "https://example.org/news/1?a=1&b=2"
    assert len(body["message"].encode()) <= 4096 and body["message"].endswith("…")
    assert r.headers["authorization"] == "Bearer tk_1"


def test_apprise_url_and_validation(site: Site) -> None:
    site.pages["/notify"] = Page(b"{}", "application/json")
    _send("apprise", {"url": f"json://127.0.0.1:{site.port}/notify"}, _msg())
    [body] = site.post_json("/notify")
    assert body["title"] == "[kz-mediation] Title <b>& more</b>" and "*venue for negotiations*" in body["message"]
    assert validate_channel("apprise", {"url": "nosuchscheme://x"})
    site.pages["/notify"] = Page(b"no", "text/plain", 500)
    with pytest.raises(DeliveryError):
        _send("apprise", {"url": f"json://127.0.0.1:{site.port}/notify"}, _msg())


def test_digest_and_notice_on_chat_channels(tmp_path: Path, site: Site) -> None:
    """A digest and a notice go out in each platform's format (through the real worker)."""
    site.pages["/slack"] = Page(b"ok", "text/plain")
    site.pages["/botT/sendMessage"] = Page(b'{"ok": true}', "application/json")
    engine = store(f"sqlite:///{tmp_path / 'm.db'}")
    add_alerts(engine, 3, ("slack", "tg"), rule="kz")
    channels = {"slack": build_channel("slack", "slack", {"url": site.url("/slack")}),
                "tg": build_channel("tg", "telegram", {"token": "T", "chat_id": 5, "api_url": site.base})}
    from datetime import UTC, datetime, timedelta

    from monitor.alerts.policy import RulePolicy
    now = [datetime.now(UTC)]
    w = Deliverer(engine, channels, rules={"kz": RulePolicy.from_options({"mode": "digest", "digest": "daily 08:00"})},
                  clock=lambda: now[0])
    asyncio.run(w.run())
    assert site.posts() == []
    now[0] += timedelta(hours=25)
    asyncio.run(w.run())
    [slack] = site.post_json("/slack")
    assert slack["blocks"][0]["text"]["text"] == "Digest: 3 alerts for kz"
    assert len(slack["blocks"]) == 4 and "Story 2" in slack["blocks"][3]["text"]["text"]
    [tg] = site.post_json("/botT/sendMessage")
    assert tg["text"].startswith("<b>Digest: 3 alerts for kz</b>") and tg["text"].count("• <a href=") == 3
    _assert_balanced(tg["text"])
    assert statuses(engine) == {"sent": 8}
    from monitor.alerts import enqueue_notice
    from monitor.store import session_scope
    with session_scope(engine) as s:
        enqueue_notice(s, ["slack", "tg"], "Source broken: TASS", "TASS <failed> 5 times & counting", "b:1")
    asyncio.run(w.run())
    notice = site.post_json("/slack")[-1]
    assert notice["text"] == "[monitor] Source broken: TASS"
    assert notice["blocks"][0]["text"]["text"] == "TASS &lt;failed&gt; 5 times &amp; counting"
    tgn = site.post_json("/botT/sendMessage")[-1]["text"]
    assert tgn == "<b>[monitor] Source broken: TASS</b>\n\nTASS &lt;failed&gt; 5 times &amp; counting"


def test_test_channel_command(tmp_path: Path, site: Site) -> None:
    site.pages["/slack"] = Page(b"ok", "text/plain")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"""
[monitor]
database = "sqlite:///{tmp_path / 'm.db'}"

[[channel]]
name = "team"
type = "slack"
url = "{site.url('/slack')}"

[[channel]]
name = "broken"
type = "slack"
url = "{site.url('/missing')}"
""", encoding="utf-8")
    ok = run_monitor(cfg, "test-channel", "team")
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stderr
    [body] = site.post_json("/slack")
    assert "Test message for channel" in body["text"]
    bad = run_monitor(cfg, "test-channel", "broken")
    assert bad.returncode == 1 and "FAILED" in bad.stderr and "HTTP 404" in bad.stderr
    unknown = run_monitor(cfg, "test-channel", "nope")
    assert unknown.returncode == 2 and "team, broken" in unknown.stderr
