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
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from monitor.alerts.render import AlertMessage, render_html, render_text
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
