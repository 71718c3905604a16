"""What the monitor prints is safe: every secret (a password, token or key, a channel's URL or
headers, an ``${ENV}`` value whose key or variable name says it is one) stays out of every output
(log lines in text and JSON, errors stored in the database, CLI output, config problems), however
a server echoes it back, while an ordinary setting taken from the environment (a host, a user
name) is shown as it is; and only http(s) links are stored or rendered."""

from __future__ import annotations

import html
import json
import sqlite3
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text as sql

from monitor.alerts.render import AlertMessage, render_html, render_text
from monitor.clean import set_secrets
from monitor.config import FetchSettings, SourceConfig, load_config
from monitor.fetch.state import PollOutcome, PollState, apply_outcome
from monitor.store import create_db_engine
from monitor.store.source_table import poll_url, stored_url
from monitor.web import Console, WebServer
from tests.fetch_helpers import RawServer
from tests.harness import email_channel, rule, run_monitor, source, webhook_channel, write_config
from tests.hostile import send_body
from tests.servers import Mailbox, Page, Site, free_port

PATH_TOKEN = "XyzPathToken1234567890"
HEADER_TOKEN = "hdr-secret-98765"
PLAIN = "plainvalue42"  # a variable whose name says nothing about secrets, in a channel's headers


def _feed() -> bytes:
    return (b'<?xml version="1.0"?><rss version="2.0"><channel><title>n</title><link>http://example.org/</link>'
            b"<item><title>Kazakhstan offers to mediate</title><link>http://example.org/kz</link>"
            b"<description>Kazakhstan offers to mediate between the parties.</description>"
            b"<pubDate>Wed, 24 Sep 2025 07:00:00 GMT</pubDate></item></channel></rss>")


def _echo_404(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    # Like Slack's and many frameworks' error pages: the request path repeated in the body.
    send_body(h, f"no route for POST {h.path}".encode(), "text/plain", status=404)


def test_env_values_are_redacted_in_logs_database_and_cli(tmp_path: Path, site: Site) -> None:
    site.pages["/feed.xml"] = Page(_feed(), "application/rss+xml")
    site.pages["/ok"] = Page(b"{}", "application/json")
    echo = RawServer(_echo_404)
    try:
        header_channel = (f'[[channel]]\nname = "hdr"\ntype = "webhook"\nurl = "{site.url("/ok")}"\n'
                          'headers = { Authorization = "${AUTH_HEADER}", X-Tag = "${PLAIN_VALUE}" }\n\n')
        cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                           source("News", site.url("/feed.xml"), full_text=False),
                           rule("kz", "Kazakhstan", ["hook", "hdr"]),
                           webhook_channel("hook", "${HOOK_URL}"), header_channel)
        env = {"HOOK_URL": echo.url(f"/services/T0000/B0000/{PATH_TOKEN}"),
               "AUTH_HEADER": f"Bearer {HEADER_TOKEN}\n", "PLAIN_VALUE": PLAIN}
        runs = [run_monitor(cfg, "run", "--once", env=env),
                run_monitor(cfg, "--log-format", "json", "deliver", env=env),
                run_monitor(cfg, "alerts", "--json", env=env),
                run_monitor(cfg, "alerts", env=env)]
        with sqlite3.connect(tmp_path / "m.db") as db:
            stored = [e for (e,) in db.execute("SELECT last_error FROM delivery WHERE last_error IS NOT NULL")]
        assert len(echo.paths) >= 1  # the hook was tried and answered 404
        everything = "\n".join([*(r.stdout + r.stderr for r in runs), *stored])
        assert "HTTP 404" in everything and "***" in everything, everything[-3000:]
        for secret in (PATH_TOKEN, HEADER_TOKEN, PLAIN):
            assert secret not in everything, f"{secret} leaked:\n{everything[-3000:]}"
        assert len(stored) == 2  # both channels failed and said why
    finally:
        echo.stop()


def test_ordinary_settings_from_the_environment_are_shown_and_the_password_is_not(tmp_path: Path,
                                                                                 site: Site) -> None:
    """The README's own SMTP_HOST / SMTP_USERNAME=alerts: every ${ENV} value used to be hidden as a
    substring of every line, so `monitor alerts` said "SMTP ***:25" (which server failed?) and the
    log "1 *** created", "monitor.***.settle". A host and a user name are shown; the password and a
    token in a source's URL (by the variable's name) are not."""
    site.pages["/feed.xml?token=feedtoken-5150"] = Page(_feed(), "application/rss+xml")
    port = free_port()  # nothing listens: the delivery fails and says where it went
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("News", site.url("/feed.xml") + "?token=${FEED_TOKEN}", full_text=False),
                       rule("kz", "Kazakhstan", ["mail"]),
                       email_channel("mail", port, host="${SMTP_HOST}", username="${SMTP_USERNAME}",
                                     password="${SMTP_PASSWORD}"))
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_USERNAME": "alerts", "SMTP_PASSWORD": "pw-Hunter-771",
           "FEED_TOKEN": "feedtoken-5150"}
    runs = [run_monitor(cfg, "--log-level", "debug", "run", "--once", env=env), run_monitor(cfg, "alerts", env=env)]
    everything = "\n".join(r.stdout + r.stderr for r in runs)
    assert f"SMTP 127.0.0.1:{port}" in runs[0].stderr and f"SMTP 127.0.0.1:{port}" in runs[1].stdout, everything
    assert "***:" not in everything and "1 alert created" in runs[0].stderr, everything[-3000:]
    assert site.requests and "token=feedtoken-5150" in site.requests[0].path  # the feed was asked with it
    for secret in ("pw-Hunter-771", "feedtoken-5150"):
        assert secret not in everything, f"{secret} leaked:\n{everything[-3000:]}"


def test_check_config_never_echoes_an_invalid_value_from_the_environment(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       webhook_channel("hook", "${WEBHOOK_URL}"))
    value = "hooks.example.org/services/T0/B0/NoSchemeSecret42"
    for args in (("check-config",), ("run", "--once")):
        r = run_monitor(cfg, *args, env={"WEBHOOK_URL": value})
        assert r.returncode == 2, r.stderr
        assert "hook" in r.stderr and "NoSchemeSecret42" not in r.stdout + r.stderr, r.stderr


# -- links: only http(s) is stored or rendered -------------------------------------------------
SCHEMES = ("javascript:alert(document.cookie)", "data:text/html;base64,PHNjcmlwdD4=", "file:///etc/passwd",
           "ftp://example.org/x", "JaVaScRiPt:alert(2)")


def test_only_web_links_are_stored_and_rendered(tmp_path: Path, site: Site, mailbox: Mailbox) -> None:
    items = "".join(
        f"<item><title>Kazakhstan offers to mediate {i}</title><link>{html.escape(link)}</link>"
        f'<media:thumbnail url="{html.escape(link)}"/>'
        f"<description>Kazakhstan offers to mediate, item {i}.</description>"
        f"<pubDate>Wed, 24 Sep 2025 07:0{i}:00 GMT</pubDate></item>" for i, link in enumerate(SCHEMES))
    site.pages["/feed.xml"] = Page(
        ('<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
         f"<title>n</title><link>http://example.org/</link>{items}</channel></rss>").encode(), "application/rss+xml")
    site.pages["/hook"] = Page(b"{}", "application/json")
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       source("News", site.url("/feed.xml")), rule("kz", "Kazakhstan", ["mail", "hook"]),
                       email_channel("mail", mailbox.port), webhook_channel("hook", site.url("/hook")))
    r = run_monitor(cfg, "run", "--once")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(tmp_path / "m.db") as db:
        rows = db.execute("SELECT url, original_url, image FROM article").fetchall()
    assert len(rows) == len(SCHEMES)
    for url, original, image in rows:
        assert url.startswith("urn:monitor:entry:") and original == url and image is None, (url, original, image)
    assert len(mailbox.messages) == len(SCHEMES)
    rendered = [m.get_body(("html",)).get_content() for m in mailbox.messages]  # type: ignore[union-attr]
    rendered += [json.dumps(p) for p in site.post_json("/hook")]
    for text in rendered:
        for scheme in ("javascript:", "data:", "file:", "ftp:", "urn:"):
            assert scheme not in text.lower(), text


def test_a_stored_unsafe_link_is_not_rendered() -> None:
    # Rows stored before links were checked, or written by another tool: rendering checks again.
    payload = {"kind": "match", "rule": "r", "title": "T", "url": "javascript:alert(1)", "outlet": "o",
               "statements": []}
    msg = AlertMessage.from_payload(1, "a:1:mail", payload)
    digest = AlertMessage.from_payload(2, "digest:1", {"kind": "digest", "items": [payload]})
    for text in (render_html(msg), render_text(msg), render_html(digest), json.dumps(msg.as_json()),
                 json.dumps(digest.as_json())):
        assert "javascript" not in text, text


# -- a token in a source's URL: masked in every output and in the database -----------------------
FEED_TOKEN = "FEEDTOK-2290-zq"


def test_a_token_in_a_source_url_stays_out_of_the_cli_the_database_the_opml_and_the_notice(
        tmp_path: Path, site: Site, webhook: Site, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: with url = ".../notfound.xml?token=${QA_FEED_TOKEN}" the log said "token=***" but
    `monitor sources` (and --json), the source table's url and config_url, the console's OPML
    export and the "source broken" notice (alert payload, webhook body) held the token. The
    source table now holds the URL masked; the feed is still asked with the real token."""
    site.pages[f"/good.xml?token={FEED_TOKEN}"] = Page(_feed(), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url,
                       source("Good", site.url("/good.xml") + "?token=${QA_FEED_TOKEN}", full_text=False),
                       source("Missing", site.url("/notfound.xml") + "?token=${QA_FEED_TOKEN}", full_text=False),
                       webhook_channel("hook-ok", webhook.url("/hook")),
                       monitor='source_errors_to = "hook-ok"', fetch="broken_after = 1")
    env = {"QA_FEED_TOKEN": FEED_TOKEN}
    runs = [run_monitor(cfg, "run", "--once", env=env), run_monitor(cfg, "run", "--once", "--all", env=env)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    asked = [r.path for r in site.requests]
    assert asked.count(f"/good.xml?token={FEED_TOKEN}") == 2, asked  # polled with the real token, twice
    runs += [run_monitor(cfg, "sources", env=env), run_monitor(cfg, "sources", "--json", env=env),
             run_monitor(cfg, "alerts", "--json", env=env)]
    listed = json.loads(runs[3].stdout)
    assert {s["url"] for s in listed} == {site.url("/good.xml?token=***"), site.url("/notfound.xml?token=***")}
    assert "/good.xml?token=***" in runs[2].stdout and "HTTP 404" in runs[2].stdout, runs[2].stdout
    [notice] = webhook.post_json("/hook")
    assert "Missing" in notice["subject"] and "notfound.xml?token=***" in notice["text"], notice

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sql("SELECT name, url, config_url, last_error FROM source ORDER BY name")).all()
        assert [(n, u, c) for n, u, c, _ in stored] == [
            ("Good", site.url("/good.xml?token=***"), site.url("/good.xml?token=***")),
            ("Missing", site.url("/notfound.xml?token=***"), site.url("/notfound.xml?token=***"))]
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        config = load_config(cfg)
        server = WebServer("127.0.0.1", 0, Console(engine=engine, config=lambda: config,
                                                   reload=lambda: (True, ""))).start()
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as c:
                opml = c.get("/sources/opml").text
        finally:
            server.stop()
    finally:
        engine.dispose()
    assert f'xmlUrl="{site.url("/good.xml?token=•••")}"' in opml, opml
    everything = "\n".join([*(r.stdout + r.stderr for r in runs), *map(str, stored), opml,
                            *(r.body.decode() for r in webhook.posts())])
    assert FEED_TOKEN not in everything, everything[-3000:]


def test_a_source_stored_with_its_token_is_rewritten_masked_and_keeps_its_state(
        tmp_path: Path, site: Site, database_url: str) -> None:
    """A database written before URLs were stored masked holds the token: the next run rewrites
    the row masked without taking it for a config edit (its validators and schedule stay)."""
    site.pages[f"/good.xml?token={FEED_TOKEN}"] = Page(_feed(), "application/rss+xml", headers={"ETag": '"v1"'})
    real = site.url("/good.xml") + f"?token={FEED_TOKEN}"
    cfg = write_config(tmp_path / "config.toml", database_url,
                       source("Good", site.url("/good.xml") + "?token=${QA_FEED_TOKEN}", full_text=False))
    env = {"QA_FEED_TOKEN": FEED_TOKEN}
    assert run_monitor(cfg, "run", "--once", env=env).returncode == 0
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:  # as an older version left it
            conn.execute(sql("UPDATE source SET url = :u, config_url = :u"), {"u": real})
        listed = run_monitor(cfg, "sources", "--json", env=env).stdout
        assert FEED_TOKEN not in listed and "token=***" in listed, listed  # masked before the rewrite too
        assert run_monitor(cfg, "run", "--once", "--all", env=env).returncode == 0
        with engine.connect() as conn:
            url, config_url, etag = conn.execute(sql("SELECT url, config_url, etag FROM source")).one()
    finally:
        engine.dispose()
    assert url == config_url == site.url("/good.xml?token=***")
    assert etag == '"v1"'
    assert site.requests[-1].headers.get("if-none-match") == '"v1"'  # its validators were kept and sent


def test_a_move_to_a_url_with_a_secret_is_stored_masked_and_polled_through_the_config() -> None:
    """A 301 whose target keeps the token: the row holds the target masked, and the poll goes to
    the config's URL (which redirects there again), never to a URL with *** in it."""
    real = f"https://feeds.example/x?token={FEED_TOKEN}"
    moved = f"https://cdn.feeds.example/x?token={FEED_TOKEN}"
    set_secrets([FEED_TOKEN])
    try:
        sc = SourceConfig(name="x", url=real)
        row = PollState(id=1, url=stored_url(real), etag=None, last_modified=None, last_polled_at=None,
                        next_poll_at=None, last_status=None, last_error=None, consecutive_failures=0,
                        last_success_at=None, broken_since=None, disabled_at=None, disabled_reason=None,
                        poll_interval=None)
        assert row.url == "https://feeds.example/x?token=***" and poll_url(row.url, real) == real
        apply_outcome(row, sc, PollOutcome(status=200, new_url=moved), FetchSettings(), datetime.now(UTC))
        assert row.url == "https://cdn.feeds.example/x?token=***"
        assert poll_url(row.url, real) == real
        plain = "https://cdn.feeds.example/feed.xml"  # a move without a secret is polled as stored
        apply_outcome(row, sc, PollOutcome(status=200, new_url=plain), FetchSettings(), datetime.now(UTC))
        assert row.url == plain and poll_url(row.url, real) == plain
    finally:
        set_secrets([])
