"""The console without a browser: who may start and use it, how it writes config.toml (never a
masked secret), its error pages, and analysts' mutes applied by the real ingest path on SQLite
and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from monitor.alerts.feedback import record
from monitor.config import load_config
from monitor.store import Alert, Article, Match, Source, create_db_engine, session_scope, upgrade
from monitor.store.models import WebSession
from monitor.web import AccessError, Console, Passwords, WebServer
from monitor.web.access import Sessions, hash_password, verify_password
from monitor.web.rules import SaveError, preview, save_rule
from tests.harness import rule, run_monitor, source, start_daemon, webhook_channel, write_config
from tests.newsroom import RULE, publish_newsroom, rss, seed_page
from tests.servers import Page, Site, free_port, wait_for

CONFIG = """# Top comment: kept.
[monitor]
database = "sqlite:///monitor.db"   # relative to this file

# The seed rule.
[[rule]]
name = "kz-mediation"
query = 'Kazakhstan AND mediator'   # literal string, kept literal
channels = []

[[rule]]
name = "other"
query = "Astana"
channels = []
"""


def test_passwords_are_hashed_and_open_only_their_role() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("s3cret ", stored)
    pw = Passwords.from_env({"MONITOR_WEB_PASSWORD": "ed-pw", "MONITOR_WEB_VIEWER_PASSWORD": hash_password("vi-pw")})
    assert pw.role_for("ed-pw") == "editor" and pw.role_for("vi-pw") == "viewer" and pw.role_for("x") is None
    assert all("ed-pw" not in h for h in pw.hashes.values())


def test_refuses_a_public_address_without_a_password(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    console = Console(engine=engine, config=lambda: load_config(cfg), reload=lambda: (True, ""))
    with pytest.raises(AccessError, match="MONITOR_WEB_PASSWORD"):
        WebServer("0.0.0.0", 0, console)
    res = run_monitor(cfg, "web", "--listen", f"0.0.0.0:{free_port()}",
                      env={"MONITOR_WEB_PASSWORD": "", "MONITOR_WEB_VIEWER_PASSWORD": ""}, timeout=60)
    assert res.returncode == 1 and "not loopback, and no password is set" in res.stderr
    # On loopback without a password it is open, as /healthz and /metrics are.
    server = WebServer("127.0.0.1", 0, console).start()
    try:
        r = httpx.get(f"http://127.0.0.1:{server.port}/rules", timeout=30)
        assert r.status_code == 200 and "kz-mediation" in r.text
    finally:
        server.stop()
        engine.dispose()


def test_login_attempts_are_rate_limited(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    config = load_config(cfg)
    server = WebServer("127.0.0.1", 0, Console(
        engine=engine, config=lambda: config, reload=lambda: (True, ""),
        passwords=Passwords.from_env({"MONITOR_WEB_PASSWORD": "right-pw"}))).start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=False, timeout=30) as c:
        assert c.get("/rules").status_code == 303  # to the login form
        page = c.get("/login").text
        csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
        codes = [c.post("/login", data={"csrf": csrf, "password": "guess"}).status_code for _ in range(6)]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        r = c.post("/login", data={"csrf": csrf, "password": "right-pw"})
        assert r.status_code == 429 and "Retry-After" in r.headers  # even the right one waits
    server.stop()
    engine.dispose()


def test_saving_a_rule_keeps_comments_and_style_and_refuses_a_bad_query(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    save_rule(cfg, "kz-mediation", 'Kazakhstan NEAR/10 "venue for negotiations"', [], "kz-mediation")
    text = cfg.read_text()
    assert text == CONFIG.replace("query = 'Kazakhstan AND mediator'",
                                  "query = 'Kazakhstan NEAR/10 \"venue for negotiations\"'")
    with pytest.raises(SaveError) as err:
        save_rule(cfg, "kz-mediation", "Kazakhstan NEAR/ mediator", [], "kz-mediation")
    assert "config.toml" in err.value.problems[0] and "^" in err.value.problems[0]
    assert cfg.read_text() == text  # unchanged
    save_rule(cfg, "new-rule", "Tokayev AND Astana", [])
    assert load_config(cfg).rules[-1].name == "new-rule" and cfg.read_text().startswith(text)
    with pytest.raises(SaveError, match="already exists"):
        save_rule(cfg, "other", "x", [])


def test_mutes_apply_in_the_ingest_path(tmp_path: Path, database_url: str, site: Site, webhook: Site) -> None:
    publish_newsroom(site)
    site.pages["/copy.xml"] = Page(rss(site, []), "application/rss+xml")
    site.pages["/muted.xml"] = Page(rss(site, []), "application/rss+xml")
    cfg = write_config(tmp_path / "config.toml", database_url,
                       source("Pravda", site.url("/feed.xml")), source("Copy", site.url("/copy.xml")),
                       source("Muted", site.url("/muted.xml")),
                       rule("kz", RULE, ["hook"], realert="new_statement"), webhook_channel("hook", webhook.url("/hook")))
    assert run_monitor(cfg, "run", "--once").returncode == 0
    assert len(webhook.posts("/hook")) == 1
    engine = create_db_engine(database_url)
    with session_scope(engine) as s:
        seed = s.exec(select(Article).where(col(Article.url).contains("kazakhstan"))).one()
        muted_id = s.exec(select(Source.id).where(Source.name == "Muted")).one()
        record(s, "kz", "mute_story", story_id=seed.story_id)
        record(s, "kz", "mute_source", source_id=muted_id)
    # A copy with a new matching sentence would re-alert (realert = "new_statement"): muted, it
    # is recorded quietly. The same page from the muted source is not even a match.
    new = "Kazakhstan is once again ready to act as a mediator, the ministry said."
    now = datetime.now(UTC)
    site.pages["/copy/1"] = Page(seed_page().replace(b"</article>", f"<p>{new}</p></article>".encode()))
    site.pages["/copy.xml"] = Page(rss(site, [("/copy/1", "Kazakhstan offers good services", now)]),
                                   "application/rss+xml")
    site.pages["/muted/1"] = Page(seed_page().replace(b"</h1>", b" (muted outlet)</h1>"))
    site.pages["/muted.xml"] = Page(rss(site, [("/muted/1", "Kazakhstan, an outlet muted", now)]),
                                    "application/rss+xml")
    res = run_monitor(cfg, "run", "--once", "--all")
    assert res.returncode == 0, res.stderr
    with session_scope(engine) as s:
        rows = s.exec(select(Article.url, Match.id).outerjoin(Match, col(Match.article_id) == col(Article.id))
                      .where(col(Article.url).contains("/copy/") | col(Article.url).contains("/muted/"))).all()
        by_url = {u.rsplit("/", 2)[-2]: mid for u, mid in rows}
        assert by_url["copy"] is not None and by_url["muted"] is None
        assert s.exec(select(Alert).where(Alert.match_id == by_url["copy"])).first() is None
    assert len(webhook.posts("/hook")) == 1
    # The rule editor's preview (SQL narrowing, then the real evaluation) finds all three pages,
    # mutes or not: it shows what the query matches.
    pv = preview(engine, load_config(cfg), RULE, days=30)
    assert pv.error is None and pv.total == 3 and pv.scanned == 3
    assert pv.hits[0].match is not None and pv.hits[0].match.statements
    assert preview(engine, None, "Kazakhstan AND zzyzx", days=30).total == 0
    bad = preview(engine, None, "Kazakhstan NEAR/", days=30)
    assert bad.error and bad.error_column is not None
    engine.dispose()


def test_logged_in_sessions_survive_a_restart_and_end_at_logout_expiry_or_a_new_password(database_url: str) -> None:
    """Sessions are kept in the database (only a hash of the id) so a restart logs nobody out;
    a logout, the expiry or a changed password still ends one, in every process."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    env = {"MONITOR_WEB_PASSWORD": "ed-pw", "MONITOR_WEB_VIEWER_PASSWORD": hash_password("vi-pw")}

    def restarted(env: dict[str, str]) -> Sessions:
        s = Sessions()
        s.keep_in(engine, Passwords.from_env(env))
        return s

    try:
        first = restarted(env)
        anonymous = first.new(None, persist=True)  # before login: the login form's token only
        editor, viewer = first.new("editor", persist=True), first.new("viewer", persist=True)
        with session_scope(engine) as db:
            rows = [r.model_dump() for r in db.exec(select(WebSession)).all()]
        assert len(rows) == 2
        assert not any(sid in str(v) for r in rows for v in r.values() for sid in (editor.id, viewer.id))
        second = restarted(env)
        got = second.get(editor.id)
        assert got is not None and (got.role, got.csrf) == ("editor", editor.csrf)
        got = second.get(viewer.id)
        assert got is not None and got.role == "viewer"
        assert second.get(anonymous.id) is None and second.get("forged-" + editor.id) is None
        second.drop(editor.id)  # logout
        assert restarted(env).get(editor.id) is None
        # The viewer's password changes: its sessions end (and leave the database).
        assert restarted({**env, "MONITOR_WEB_VIEWER_PASSWORD": "new-vi-pw"}).get(viewer.id) is None
        assert restarted(env).get(viewer.id) is None
        # A logout in one process ends the session in another on the same database too, at
        # its next check (every ``recheck_seconds``, forced here).
        shared = first.new("editor", persist=True)
        other = restarted(env)
        assert other.get(shared.id) is not None
        first.drop(shared.id)
        assert other.get(shared.id) is not None  # still trusted from memory until the recheck
        other.recheck_seconds = -1.0
        assert other.get(shared.id) is None
        late = second.new("editor", persist=True)
        with session_scope(engine) as db:
            db.execute(update(WebSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert restarted(env).get(late.id) is None
        with session_scope(engine) as db:
            assert db.exec(select(WebSession)).all() == []
    finally:
        engine.dispose()


def test_a_daemon_restart_keeps_the_browser_logged_in(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'monitor.db'}",
                       rule("kz-mediation", RULE, []),
                       tables=f'[http]\nlisten = "127.0.0.1:{port}"\n\n[dedup]\nevents = false\n')
    env = {"MONITOR_WEB_PASSWORD": "editor-pw"}
    base = f"http://127.0.0.1:{port}"

    def started() -> Any:
        proc = start_daemon(cfg, env=env)
        assert wait_for(lambda: _answers(base + "/healthz"), timeout=60), proc.log_text()
        return proc

    proc = started()
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
        try:
            page = c.get("/login").text
            csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
            assert c.post("/login", data={"csrf": csrf, "password": "editor-pw", "next": "/rules"}).status_code == 303
            assert c.get("/rules").status_code == 200
        finally:
            proc.stop()
        proc = started()
        try:
            r = c.get("/rules")
            assert r.status_code == 200 and "kz-mediation" in r.text  # still logged in
            token = r.text.split('name="csrf-token" content="')[1].split('"')[0]
            assert c.post("/logout", data={"csrf": token}).status_code == 303
            assert c.get("/rules").status_code == 303  # to the login form
        finally:
            proc.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


SOURCES = """# top comment
[monitor]
database = "sqlite:///monitor.db"

[[source]]
name = "A"   # a comment
url = "https://a.example/feed.xml"
interval = "5m"

# introduces B
[[source]]
name = "B"
url = "https://b.example/feed.xml"

# rules below
[[rule]]
name = "r"
query = "Kazakhstan"
channels = []
"""


def test_a_source_is_edited_or_removed_by_itself_keeping_every_other_byte(tmp_path: Path) -> None:
    from monitor.web.config_edit import remove_source, replace_source, source_entry

    cfg = tmp_path / "config.toml"
    cfg.write_text(SOURCES)
    assert source_entry(cfg, "A") == '[[source]]\nname = "A"   # a comment\nurl = "https://a.example/feed.xml"\n' \
                                     'interval = "5m"\n'
    edited = '[[source]]\r\nname = "A2"  # renamed\r\nurl = "https://a.example/feed.xml"\r\ninterval = "7m"\r\n'
    assert [s.name for s in replace_source(cfg, "A", edited).sources] == ["A2", "B"]
    assert cfg.read_text() == SOURCES.replace('name = "A"   # a comment', 'name = "A2"  # renamed').replace(
        'interval = "5m"', 'interval = "7m"')
    for bad, why in (('name = "x"', "exactly one"), ('[[source]]\nname = "A2"\nurl = "ftp://x"', "http(s) URL"),
                     ('[[source]]\nname = "B"\nurl = "https://b.example/other.xml"', "B"),
                     ('[[source]]\nname = "A2"\nurl = "https://a"\n[[rule]]\nname = "z"', "exactly one")):
        before = cfg.read_text()
        with pytest.raises(SaveError, match=re.escape(why)):
            replace_source(cfg, "A2", bad)
        assert cfg.read_text() == before
    assert [s.name for s in remove_source(cfg, "B").sources] == ["A2"]
    text = cfg.read_text()
    assert "# introduces B" in text and "# rules below" in text and 'name = "B"' not in text
    with pytest.raises(SaveError, match="no source named 'B'"):
        remove_source(cfg, "B")


ENV_CONFIG = """[monitor]
database = "sqlite:///monitor.db"

[[source]]
name = "seed"   # the loopback seed feed
url = "http://127.0.0.1:18000/seed-feed.xml"
interval = "5m"

[[source]]
name = "private"
url = "https://feeds.example/x?token=feed-token-8812"   # the token pasted in, also in ${FEED_TOKEN}

[[source]]
name = "private copy"
url = "https://mirror.example/x?token=${FEED_TOKEN}"

[[channel]]
name = "mail"
type = "email"
host = "${SMTP_HOST}"
username = "alerts"
password = "${SMTP_PASSWORD}"
from = "monitor@example.org"
to = ["analyst@example.org"]
"""


def _csrf(page: str) -> str:
    return page.split('name="csrf-token" content="')[1].split('"')[0]


def _textarea(page: str) -> str:
    return html.unescape(page.split('id="source-entry"')[1].split(">", 1)[1].split("</textarea>")[0])


def test_a_source_saved_unchanged_from_the_console_stays_as_written_and_a_hidden_secret_is_never_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With SMTP_HOST=127.0.0.1 the edit form showed a seed source's URL as http://•••:18000/...
    and Save wrote that into config.toml (the loader took it; every poll then failed). A host is
    not a secret: the form shows the entry as written and an unchanged save leaves every byte.
    A value that is a secret (a token written into the file that is also ${FEED_TOKEN}) is shown
    as •••, the form says so, and a save with ••• in it is refused with the file unchanged."""
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PASSWORD": "smtp-pw-8812", "FEED_TOKEN": "feed-token-8812"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # the console's save validates with the daemon's own loader
    cfg = tmp_path / "config.toml"
    cfg.write_text(ENV_CONFIG, encoding="utf-8")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    current = {"config": load_config(cfg)}
    console = Console(engine=engine, config=lambda: current["config"], reload=lambda: (True, "reloaded"),
                      set_config=lambda new: current.update(config=new))
    server = WebServer("127.0.0.1", 0, console).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", follow_redirects=False, timeout=30) as c:
            page = c.get("/sources/seed/edit").text
            entry = _textarea(page)
            assert 'url = "http://127.0.0.1:18000/seed-feed.xml"' in entry and "•••" not in page
            assert 'id="source-hidden"' not in page
            r = c.post("/sources/seed/edit", data={"csrf": _csrf(page), "entry": entry.replace("\n", "\r\n")})
            assert r.status_code == 303 and "seed%20saved" in r.headers["location"]
            assert cfg.read_text(encoding="utf-8") == ENV_CONFIG

            page = c.get("/sources/private/edit").text
            entry = _textarea(page)
            assert "feed-token-8812" not in page and 'token=•••"' in entry
            assert 'id="source-hidden"' in page  # the editor is told before saving
            r = c.post("/sources/private/edit", data={"csrf": _csrf(page), "entry": entry})
            assert r.status_code == 400 and "environment variable" in r.text and "${NAME}" in r.text
            assert 'id="source-problems"' in r.text and 'id="source-hidden"' in r.text
            assert cfg.read_text(encoding="utf-8") == ENV_CONFIG and "feed-token-8812" not in r.text
            # The way out it names: the token as a reference, saved.
            fixed = entry.replace("token=•••", "token=${FEED_TOKEN}")
            r = c.post("/sources/private/edit", data={"csrf": _csrf(page), "entry": fixed})
            assert r.status_code == 303
            assert 'url = "https://feeds.example/x?token=${FEED_TOKEN}"' in cfg.read_text(encoding="utf-8")
            assert current["config"].sources[1].url == "https://feeds.example/x?token=feed-token-8812"
    finally:
        server.stop()
        engine.dispose()


def test_error_pages_are_titled_by_status_and_back_is_a_working_link(tmp_path: Path) -> None:
    """Every error page was titled "Not allowed" (a 404 too), and its Back link was
    javascript:history.back(), which the console's own CSP (script-src 'self') blocks."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    config = load_config(cfg)
    server = WebServer("127.0.0.1", 0, Console(engine=engine, config=lambda: config, reload=lambda: (True, ""))).start()
    base = f"http://127.0.0.1:{server.port}"

    def back(page: str) -> str:
        return page.split('id="error-back"')[0].rsplit('<a href="', 1)[1].split('"')[0]

    try:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
            r = c.get("/stories/999999")
            assert r.status_code == 404 and "<title>Not found · monitor</title>" in r.text
            assert back(r.text) == "/stories"  # no referrer: the section it belongs to
            r = c.get("/sources/nope/edit", headers={"Referer": f"{base}/sources?x=1"})
            assert r.status_code == 404 and back(r.text) == "/sources?x=1"  # the page it came from
            r = c.get("/sources/nope/edit", headers={"Referer": "https://elsewhere.example/sources"})
            assert back(r.text) == "/sources"  # another site's page is not "back"
            r = c.get("/rules/explain", params={"article": "1", "query": ""})
            assert r.status_code == 400 and "<title>Bad request · monitor</title>" in r.text
            r = c.post("/sources/nope/remove", data={"csrf": "forged"})
            assert r.status_code == 403 and "<title>Not allowed · monitor</title>" in r.text
            assert "javascript:" not in r.text
    finally:
        server.stop()
        engine.dispose()
