"""The web console in a real headless Chromium against a real daemon on loopback (SQLite).

One daemon and one browser for the module (starting Chromium costs ~2 s). Each test logs in
afresh, so the tests do not depend on each other's cookies; they share the daemon's data and
check their own changes. Screenshots of every page at 360 px go to test-artifacts/web/.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from sqlmodel import col, func, select

from monitor.store import Alert, Article, Match, Source, create_db_engine, session_scope, upgrade
from monitor.store.models import StoryApart
from tests.harness import ROOT, rule, source, start_daemon, webhook_channel, write_config
from tests.newsroom import RULE, publish_newsroom, rss, seed_page
from tests.servers import Page, Request, Site, free_port, wait_for

pytestmark = pytest.mark.skipif(not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()),
                                reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)")

EDITOR_PW = "editor-Pa55-word"
VIEWER_PW = "viewer-Pa55-word"
HOOK_SECRET = "hook-key-7f3a9c"
ARTIFACTS = ROOT / "test-artifacts" / "web"
COPY_PATH = "/mirror/kazakhstan-good-services-copy"
NEW_SENTENCE = "Kazakhstan is once again ready to act as a mediator between the parties, the ministry said."


class Env:
    def __init__(self, tmp: Path) -> None:
        self.site = Site().start()
        publish_newsroom(self.site)
        self.site.pages["/feed2.xml"] = Page(rss(self.site, []), "application/rss+xml")
        self.hook = Site().start()
        self.hook.pages[f"/hook/{HOOK_SECRET}"] = Page(b'{"ok": true}', "application/json")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = tmp / "monitor.db"
        self.cfg = tmp / "config.toml"
        self.log = tmp / "daemon.log"
        self.cfg.write_text(f"""# Console test config: this comment must survive a save from the console.
[monitor]
database = "sqlite:///{self.db}"
claim_interval = "1s"     # claim due sources often
delivery_interval = "1s"
alert_max_age = "3650d"   # the seed article is from 2025
alert_hold = "0s"         # the console's pages, not the hold, are under test: alerts go out at once

[fetch]
allow_private_networks = true   # the outlets are on loopback

[http]
listen = "127.0.0.1:{self.port}"

[[source]]
name = "Loopback Pravda"
url = "{self.site.url('/feed.xml')}"
interval = "5m"

[[source]]
name = "Loopback Copy"
url = "{self.site.url('/feed2.xml')}"
interval = "5m"

# The seed rule (the console edits this one).
[[rule]]
name = "kz-mediation"
query = '{RULE}'
channels = ["hook"]
realert = "new_statement"   # a copy with a new matching sentence alerts again

[[channel]]
name = "hook"
type = "webhook"
url = "${{WEBHOOK_URL}}"   # from the environment; never shown by the console
""", encoding="utf-8")
        env = {"MONITOR_WEB_PASSWORD": EDITOR_PW, "MONITOR_WEB_VIEWER_PASSWORD": VIEWER_PW,
               "WEBHOOK_URL": self.hook.url(f"/hook/{HOOK_SECRET}")}
        self.proc = start_daemon(self.cfg, log=self.log, env=env)
        self.engine = create_db_engine(f"sqlite:///{self.db}")

    def alerts(self) -> list[Any]:
        return self.hook.post_json(f"/hook/{HOOK_SECRET}")

    def close(self) -> None:
        try:
            self.proc.stop()
        finally:
            self.engine.dispose()
            self.site.stop()
            self.hook.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("console"))
    try:
        # A bound, not a pause (it returns with the first alert). The first alert waits for the
        # daemon's start, the newsroom's pages through the extraction workers (their forkserver
        # starts with the first page) and the sentence model's load (event stories are on here;
        # 20-35 s at load 20): 60 s ran out at load 18 with the seed's poll not yet stored, and
        # every test of the module failed at setup.
        assert wait_for(lambda: len(e.alerts()) >= 1, timeout=180), e.log.read_text()
        yield e
    finally:
        e.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    profile = tempfile.mkdtemp(prefix="chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=360,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def until(driver: Any, cond: Any, timeout: float = 45.0) -> Any:
    """Wait for ``cond``; the live preview swaps elements while a condition reads them, so an
    element gone stale (or not there yet) means "not yet", not a failure."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(cond)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def shot(driver: Any, name: str) -> None:
    """Screenshot the whole page at 360 px wide; no page ever shows a secret from the config."""
    assert HOOK_SECRET not in driver.page_source
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(360, min(max(height + 120, 640), 4000))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    driver.set_window_size(360, 900)
    # Readable at 360 px: nothing wider than the viewport forces sideways scrolling.
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 362, name


def login(driver: Any, base: str, password: str, then: str = "/matches") -> None:
    driver.delete_all_cookies()
    driver.get(base + then)
    until(driver, lambda d: "/login" in d.current_url)
    css(driver, "#password").send_keys(password)
    css(driver, "form[action='/login'] button").click()
    until(driver, lambda d: "/login" not in d.current_url)


def session_client(driver: Any, env: Env) -> httpx.Client:
    """An HTTP client holding the browser's session cookie (to send hand-made requests)."""
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    return httpx.Client(base_url=env.base, cookies=cookies, follow_redirects=False, timeout=30)


def test_login_then_matches_show_the_statement_speaker_and_deliveries(env: Env, browser: Any) -> None:
    browser.delete_all_cookies()
    browser.get(env.base + "/matches")
    until(browser, lambda d: "/login" in d.current_url)
    shot(browser, "login")
    css(browser, "#password").send_keys("not the password")
    css(browser, "form[action='/login'] button").click()
    until(browser, lambda d: "Wrong password" in d.page_source)
    login(browser, env.base, EDITOR_PW)
    cookie = browser.get_cookie("monitor_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    card = css(browser, "article.card")
    assert "Kazakhstan" in css(card, "mark").text
    assert "Tokayev" in card.text  # the speaker
    assert "hook: sent" in card.text
    assert "story #" in card.text
    shot(browser, "matches")
    # Filters: a rule that has no matches empties the list.
    browser.get(env.base + "/matches?source=Loopback+Copy&rule=kz-mediation&language=xx")
    assert "No matches with these filters" in browser.page_source


def test_rule_editor_previews_as_you_type_explains_and_saves_into_config_toml(env: Env, browser: Any) -> None:
    login(browser, env.base, EDITOR_PW, "/rules/kz-mediation")
    count = lambda d: css(d, "#preview-count strong").text  # noqa: E731
    until(browser, lambda d: count(d) != "0")
    box = css(browser, "#rule-query")
    box.clear()
    box.send_keys("Kazakhstan AND zzyzxnotaword")
    until(browser, lambda d: d.find_elements("css selector", "#preview-count") and count(d) == "0")
    box.clear()
    box.send_keys("Kazakhstan NEAR/")
    until(browser, lambda d: d.find_elements("css selector", "#syntax-error"))
    assert re.search(r"\n\s*\^", css(browser, "#syntax-error pre").text)
    shot(browser, "rule-syntax-error")
    new_query = 'Kazakhstan NEAR/15 (mediator OR "venue for negotiations" OR "good services")'
    box.clear()
    box.send_keys(new_query)
    until(browser, lambda d: d.find_elements("css selector", "#preview-count") and count(d) != "0")
    css(browser, "#preview a[data-explain]").click()
    until(browser, lambda d: d.find_elements("css selector", "#explain .clauses li"))
    assert "✓" in css(browser, "#explain .clauses").text
    shot(browser, "rule-editor")
    css(browser, "#save").click()
    until(browser, lambda d: d.find_elements("css selector", "#saved"))
    assert "reloaded" in css(browser, "#saved").text
    text = env.cfg.read_text(encoding="utf-8")
    assert f"query = '{new_query}'" in text
    assert "# Console test config: this comment must survive a save from the console." in text
    assert "# The seed rule (the console edits this one)." in text
    assert 'realert = "new_statement"   # a copy with a new matching sentence alerts again' in text
    assert env.proc.wait_log("config reloaded", timeout=60)


def test_wrong_match_counts_and_a_muted_story_does_not_alert_again(env: Env, browser: Any) -> None:
    login(browser, env.base, EDITOR_PW)
    css(browser, "button[data-kind='wrong']").click()
    until(browser, lambda d: "Marked wrong" in d.page_source)
    browser.get(env.base + "/rules/kz-mediation")
    assert css(browser, "#wrong-count").text == "1"
    browser.get(env.base + "/matches")
    css(browser, "button[data-kind='mute_story']").click()
    until(browser, lambda d: "Story muted" in d.page_source)
    alerts_before = len(env.alerts())
    # Another outlet prints the story with a new matching sentence: without the mute this
    # re-alerts (realert = "new_statement"); muted, it is recorded but sends nothing.
    page = seed_page().replace(b"</article>", f"<p>{NEW_SENTENCE}</p></article>".encode())
    env.site.pages[COPY_PATH] = Page(page)
    env.site.pages["/feed2.xml"] = Page(rss(env.site, [(COPY_PATH, "Kazakhstan offers good services",
                                                          datetime.now(UTC))]),
                                        "application/rss+xml")
    browser.get(env.base + "/sources")
    css(browser, "button[aria-label='Reset Loopback Copy']").click()

    def copy_match() -> Any:
        with session_scope(env.engine) as s:
            return s.exec(select(Match).join(Article, col(Article.id) == col(Match.article_id))
                          .where(col(Article.url).contains("/mirror/"))).first()
    assert wait_for(copy_match, timeout=60), env.log.read_text()[-3000:]
    m = copy_match()
    time.sleep(2)  # deliveries run every second: give a wrongly enqueued alert time to go out
    with session_scope(env.engine) as s:
        assert s.exec(select(Alert).where(Alert.match_id == m.id)).first() is None
    assert len(env.alerts()) == alerts_before
    browser.get(env.base + "/matches")
    assert "no alert (story already alerted or muted)" in browser.page_source
    # Undo the mute on the rule's page.
    browser.get(env.base + "/rules/kz-mediation")
    assert "story:" in css(browser, "#mutes-h").find_element("xpath", "..").text
    css(browser, "form[action^='/feedback/'] button").click()
    until(browser, lambda d: "Nothing muted for this rule" in d.page_source)


def test_stories_story_article_and_sources_pages(env: Env, browser: Any) -> None:
    login(browser, env.base, EDITOR_PW, "/stories")
    card = browser.find_element("xpath", "//article[contains(@class, 'story')][.//h2[contains(., 'Kazakhstan')]]")
    assert css(card, "svg.timeline")
    assert "Loopback Pravda" in card.text
    shot(browser, "stories")
    css(card, "h2 a").click()
    until(browser, lambda d: "/stories/" in d.current_url)
    assert browser.find_elements("css selector", ".side-by-side article")
    shot(browser, "story")
    css(browser, ".side-by-side article h2 a").click()
    until(browser, lambda d: "/articles/" in d.current_url)
    # when it was published (the feed's date), not only when the daemon first saw it
    assert css(browser, "p.meta time").get_attribute("datetime") == "2025-09-24T07:15Z"
    assert "published 2025-09-24" in css(browser, "p.meta").text
    assert "✓ matches" in css(browser, ".rule-result summary").text
    assert css(browser, ".text mark").text
    assert "read again" not in css(browser, "p.meta").text
    # an article read again after its feed entry changed says so (README "Updated articles")
    article_id = int(browser.current_url.rsplit("/", 1)[1].split("?")[0])
    with session_scope(env.engine) as s:
        art = s.get(Article, article_id)
        assert art is not None
        art.reread_count, art.reread_at = 2, datetime.now(UTC)
        s.add(art)
    browser.refresh()
    assert "read again 2 times as its feed entry changed" in until(browser, lambda d: css(d, "p.meta")).text
    shot(browser, "article")
    # what the source's last read noticed without failing (its poll stores it; set here)
    with session_scope(env.engine) as s:
        src = s.exec(select(Source).where(Source.name == "Loopback Copy")).one()
        src.last_warnings, src.last_warnings_at = '["entry 3: skipped: empty item", "entry 7: skipped: bad date"]', \
            datetime.now(UTC)
        s.add(src)
    browser.get(env.base + "/sources")
    assert "Loopback Pravda" in browser.page_source and browser.find_elements("css selector", "svg.spark")
    warned = css(browser, "details.poll-warnings")
    assert "2 warnings at the last read" in warned.text and "entry 3: skipped: empty item" in warned.text
    css(warned, "summary").click()
    assert "entry 7: skipped: bad date" in warned.text
    shot(browser, "sources")
    opml = session_client(browser, env).get("/sources/opml")
    assert opml.status_code == 200 and env.site.url("/feed.xml") in opml.text


def test_atom_feed_opens_with_its_token_and_stops_when_revoked(env: Env, browser: Any) -> None:
    login(browser, env.base, EDITOR_PW, "/rules/kz-mediation")
    css(browser, "#new-feed").click()
    until(browser, lambda d: d.find_elements("css selector", "#atom-url"))
    shot(browser, "feed-created")
    url = css(browser, "#atom-url").get_attribute("value")
    parsed = feedparser.parse(httpx.get(url, timeout=30).content)
    assert not parsed.bozo, parsed.bozo_exception
    assert any("Kazakhstan" in e.title for e in parsed.entries)
    assert httpx.get(re.sub(r"/[^/]+\.atom$", "/wrong-token.atom", url), timeout=30).status_code == 404
    json_url = css(browser, "#json-url").get_attribute("value")
    assert httpx.get(json_url, timeout=30).json()["items"]
    browser.get(env.base + "/rules/kz-mediation")
    css(browser, "form[action^='/feed-tokens/'] button").click()
    until(browser, lambda d: "/rules/kz-mediation" in d.current_url)
    assert httpx.get(url, timeout=30).status_code == 404


def test_csrf_token_is_required_and_a_viewer_cannot_save(env: Env, browser: Any) -> None:
    before = env.cfg.read_text(encoding="utf-8")
    login(browser, env.base, EDITOR_PW)
    with session_client(browser, env) as c:
        r = c.post("/rules/save", data={"name": "kz-mediation", "original": "kz-mediation", "query": "Kazakhstan"})
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post("/matches/1/feedback", data={"kind": "wrong", "csrf": "forged"})
        assert r.status_code == 403
    login(browser, env.base, VIEWER_PW, "/rules/kz-mediation")
    assert not browser.find_elements("css selector", "#save")
    assert "Viewers cannot save rules" in browser.page_source
    shot(browser, "rule-viewer")
    token = css(browser, "meta[name='csrf-token']").get_attribute("content")
    with session_client(browser, env) as c:
        r = c.post("/rules/save", data={"name": "kz-mediation", "original": "kz-mediation",
                                        "query": "Kazakhstan", "csrf": token})
        assert r.status_code == 403 and "viewer" in r.text
    assert env.cfg.read_text(encoding="utf-8") == before


LABEL_GEOMETRY = """
return Array.from(document.querySelectorAll('svg.chart, svg.timeline')).map(svg => {
  const box = svg.getBoundingClientRect();
  return Array.from(svg.querySelectorAll('text')).map(t => {
    const m = t.getScreenCTM(), r = t.getBoundingClientRect();
    return {text: t.textContent, sx: m.a, sy: m.d, skew: m.b + m.c, left: r.left - box.left,
            right: box.right - r.right, top: r.top - box.top, bottom: box.bottom - r.bottom,
            x0: r.left, x1: r.right, y0: r.top, y1: r.bottom};
  });
});
"""


def test_chart_labels_keep_their_size_and_shape_at_360_px_and_on_a_wide_screen(env: Env, browser: Any) -> None:
    """The per-day chart and the story timelines stretch to the page's width; their labels must
    not (a viewBox scaled 12 px text to 6 px at 360 px and a non-uniform scale distorts it)."""
    login(browser, env.base, EDITOR_PW, "/rules/kz-mediation")
    try:
        for width in (360, 1400):
            browser.set_window_size(width, 900)
            for path in ("/rules/kz-mediation", "/stories"):
                browser.get(env.base + path)
                until(browser, lambda d: d.find_elements("css selector", "svg.chart text, svg.timeline text"))
                pictures = browser.execute_script(LABEL_GEOMETRY)
                labels = [t for svg in pictures for t in svg]
                assert labels, path
                for t in labels:
                    # Drawn at the page's own scale: not shrunk, not stretched, not skewed.
                    assert abs(t["sx"] - 1) < 0.01 and abs(t["sy"] - 1) < 0.01 and t["skew"] == 0, (width, path, t)
                    # Inside its picture, not clipped at an edge.
                    assert min(t["left"], t["right"], t["top"], t["bottom"]) >= -0.5, (width, path, t)
                for svg in pictures:  # and no two labels of one picture on top of each other
                    for i, a in enumerate(svg):
                        for b in svg[i + 1:]:
                            apart = a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"]
                            assert apart, (width, path, a, b)
            if width > 360:
                browser.get(env.base + "/rules/kz-mediation")
                browser.save_screenshot(str(ARTIFACTS / "rule-editor-wide.png"))
    finally:
        browser.set_window_size(360, 900)
    browser.get(env.base + "/rules/kz-mediation")
    shot(browser, "rule-editor-chart")


class FlakyReceiver:
    """A webhook receiver on loopback that is down for its first request (503 with a reason in
    the body, as a proxy in front of a restarting service answers) and takes every later one."""

    PATH = "/hook/flaky"
    DOWN = "receiver restarting, come back later"

    def __init__(self) -> None:
        self.site = Site()
        self.calls = 0
        self.site.pages[self.PATH] = self.answer
        self.site.start()

    def answer(self, request: Request) -> Page:
        self.calls += 1
        if self.calls == 1:
            return Page(self.DOWN.encode(), "text/plain", 503)
        return Page(b'{"ok": true}', "application/json")


def test_retry_button_sends_a_failed_delivery_again(tmp_path: Path, browser: Any) -> None:
    """A delivery that failed shows its error and next attempt; Retry sends it now (no waiting
    for the backoff, here an hour) and the page then shows it sent."""
    site = Site().start()
    publish_newsroom(site)
    hook = FlakyReceiver()
    port = free_port()
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'monitor.db'}",
                       source("Loopback Pravda", site.url("/feed.xml")),
                       rule("kz-mediation", RULE, ["flaky"]), webhook_channel("flaky", hook.site.url(FlakyReceiver.PATH)),
                       monitor='claim_interval = "1s"\ndelivery_interval = "1s"\nretry_delay = "1h"\n',
                       tables=f'[http]\nlisten = "127.0.0.1:{port}"\n\n[dedup]\nevents = false\n')
    proc = start_daemon(cfg, env={"MONITOR_WEB_PASSWORD": EDITOR_PW})
    try:
        assert wait_for(lambda: hook.calls >= 1, timeout=90), proc.log.read_text()[-3000:]
        login(browser, f"http://127.0.0.1:{port}", EDITOR_PW)
        until(browser, lambda d: "flaky: failed" in css(d, "ul.deliveries").text)
        delivery = css(browser, "ul.deliveries li").text
        assert "HTTP 503" in delivery and FlakyReceiver.DOWN in delivery, delivery
        assert re.search(r"1 attempt; next in ([3-6]\d min|1 h)", delivery), delivery  # the backoff: 30-60 min
        shot(browser, "delivery-failed")
        failed = css(browser, "ul.deliveries")
        browser.execute_script("arguments[0].scrollIntoView()", failed)
        failed.screenshot(str(ARTIFACTS / "delivery-failed-state.png"))
        assert len(hook.site.posts(FlakyReceiver.PATH)) == 1
        css(browser, "ul.deliveries button").click()  # "Retry flaky"

        def sent() -> bool:
            browser.get(f"http://127.0.0.1:{port}/matches")
            return "flaky: sent" in css(browser, "ul.deliveries").text
        assert wait_for(sent, timeout=60, step=0.5), proc.log.read_text()[-3000:]
        posts = hook.site.posts(FlakyReceiver.PATH)
        assert len(posts) == 2 and "Kazakhstan" in posts[1].body.decode()
        assert not browser.find_elements("css selector", "ul.deliveries button")  # nothing left to retry
        assert "HTTP 503" not in css(browser, "ul.deliveries").text
        shot(browser, "delivery-retried")
    finally:
        proc.stop()
        site.stop()
        hook.site.stop()


def test_a_merged_alert_is_shown_and_can_be_sent_anyway(tmp_path: Path, browser: Any) -> None:
    """Two stories of one event each alerted, held, and merged: the later alert's delivery is
    "merged" on the Matches page, which says why; an editor's "Send hook anyway" sends it."""
    from sqlmodel import Session

    from tests.test_alert_settle import FULL, HEAD, TAIL, _ingest, _stages

    db = f"sqlite:///{tmp_path / 'monitor.db'}"
    engine = create_db_engine(db)
    upgrade(engine)
    with Session(engine) as s:
        s.add(Source(name="Pravda", url="http://pravda.test/feed"))
        s.commit()
    stages = _stages()  # alerts held 60 s: the head's is still pending when the page is read
    for key, body in (("head", HEAD), ("tail", TAIL), ("full", FULL)):
        _ingest(engine, stages, key, body)
    engine.dispose()
    hook = Site().start()
    hook.pages["/hook"] = Page(b'{"ok": true}', "application/json")
    port = free_port()
    cfg = write_config(tmp_path / "config.toml", db, rule("kz", RULE, ["hook"]),
                       webhook_channel("hook", hook.url("/hook")), monitor='delivery_interval = "1s"\n',
                       tables=f'[http]\nlisten = "127.0.0.1:{port}"\n\n[dedup]\nevents = false\n')
    proc = start_daemon(cfg, env={"MONITOR_WEB_PASSWORD": EDITOR_PW})

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        assert wait_for(up, timeout=60), proc.log.read_text()[-3000:]
        login(browser, f"http://127.0.0.1:{port}", EDITOR_PW)
        until(browser, lambda d: "hook: merged" in css(d, "main").text)
        held = next(li for li in browser.find_elements("css selector", "ul.deliveries li") if "pending" in li.text)
        assert "held for its story to settle: due in" in held.text  # the head's alert, due in a minute
        shot(browser, "delivery-merged")
        merged = next(li for li in browser.find_elements("css selector", "ul.deliveries li") if "merged" in li.text)
        assert "its story merged with one whose alert carries the event" in merged.text
        merged.find_element("css selector", "button").click()  # "Send hook anyway"
        assert wait_for(lambda: bool(hook.posts("/hook")), timeout=60), proc.log.read_text()[-3000:]
        assert [p["title"] for p in hook.post_json("/hook")] == ["Tokayev interview (tail)"]
    finally:
        proc.stop()
        hook.stop()


def test_stories_merge_and_split_from_the_console(env: Env, browser: Any) -> None:
    """An editor merges two stories that are one event, then splits an article off again (kept
    apart from then on); a viewer sees neither action and cannot post one."""
    with session_scope(env.engine) as s:  # two stories of one article each, not the seed's
        singles = s.exec(select(Article.story_id, func.min(Article.title)).where(col(Article.story_id).is_not(None))
                         .group_by(col(Article.story_id)).having(func.count() == 1)).all()
    (a_id, a_title), (b_id, b_title) = [(int(i or 0), str(t)) for i, t in singles if "Kazakhstan" not in str(t)][:2]

    login(browser, env.base, VIEWER_PW, f"/stories/{a_id}")
    assert not browser.find_elements("css selector", "#merge, button.split")
    token = css(browser, "meta[name='csrf-token']").get_attribute("content")
    with session_client(browser, env) as c:
        r = c.post(f"/stories/{a_id}/merge", data={"other": str(b_id), "csrf": token})
        assert r.status_code == 403 and "viewer" in r.text

    login(browser, env.base, EDITOR_PW, "/stories")
    assert f"#{b_id} · 1 article" in css(browser, f"#s{b_id}").text  # the number to merge by
    with session_client(browser, env) as c:  # no CSRF token: refused, nothing merged
        assert c.post(f"/stories/{a_id}/merge", data={"other": str(b_id)}).status_code == 403
    browser.get(f"{env.base}/stories/{a_id}")
    css(browser, "#merge-other").send_keys(str(a_id))  # into itself: a clear error, nothing changed
    css(browser, "#merge").click()
    until(browser, lambda d: "cannot be merged into itself" in d.page_source)
    browser.get(f"{env.base}/stories/{a_id}")
    css(browser, "#merge-other").send_keys(str(b_id))
    css(browser, "#merge").click()
    until(browser, lambda d: d.find_elements("css selector", "#story-message"))
    assert f"Story #{b_id} merged" in css(browser, "#story-message").text
    titles = [e.text for e in browser.find_elements("css selector", ".side-by-side article h2")]
    assert sorted(titles) == sorted([a_title, b_title])
    shot(browser, "story-merged")
    browser.get(f"{env.base}/stories/{b_id}")
    assert "no such story" in browser.page_source

    browser.get(f"{env.base}/stories/{a_id}")
    browser.find_element("css selector", f"button.split[aria-label*='{b_title[:20]}']").click()
    until(browser, lambda d: d.find_elements("css selector", "#story-message"))
    new_id = int(re.findall(r"/stories/(\d+)", browser.current_url)[0])
    assert new_id not in (a_id, b_id) and "kept apart" in css(browser, "#story-message").text
    assert [e.text for e in browser.find_elements("css selector", ".side-by-side article h2")] == [b_title]
    assert not browser.find_elements("css selector", "button.split")  # one article: nothing to split
    with session_scope(env.engine) as s:
        assert s.get(StoryApart, (min(a_id, new_id), max(a_id, new_id))) is not None
    browser.get(f"{env.base}/stories/{a_id}")
    assert [e.text for e in browser.find_elements("css selector", ".side-by-side article h2")] == [a_title]


def test_a_source_is_edited_and_removed_from_the_console(env: Env, browser: Any) -> None:
    """An editor edits a source's entry in config.toml (the rest of the file, comments included,
    untouched; a bad value refused with the file unchanged) and removes it; a viewer cannot."""
    set_value = "arguments[0].value = arguments[1]"
    login(browser, env.base, VIEWER_PW, "/sources")
    assert not browser.find_elements("css selector", "a.edit")
    token = css(browser, "meta[name='csrf-token']").get_attribute("content")
    with session_client(browser, env) as c:
        r = c.post("/sources/Loopback%20Copy/remove", data={"csrf": token})
        assert r.status_code == 403 and "viewer" in r.text

    login(browser, env.base, EDITOR_PW, "/sources")
    css(browser, "a[aria-label='Edit or remove Loopback Copy']").click()
    until(browser, lambda d: d.current_url.endswith("/edit"))
    box = css(browser, "#source-entry")
    entry = box.get_attribute("value")
    assert entry.startswith("[[source]]") and 'name = "Loopback Copy"' in entry and "Pravda" not in entry
    shot(browser, "source-edit")
    before = env.cfg.read_text(encoding="utf-8")
    browser.execute_script(set_value, box, entry.replace('interval = "5m"', 'interval = "often"'))
    css(browser, "#source-save").click()
    until(browser, lambda d: d.find_elements("css selector", "#source-problems"))
    assert "interval" in css(browser, "#source-problems").text
    assert env.cfg.read_text(encoding="utf-8") == before
    box = css(browser, "#source-entry")
    browser.execute_script(set_value, box, entry.replace('interval = "5m"', 'interval = "7m"   # edited in the console'))
    css(browser, "#source-save").click()
    until(browser, lambda d: d.find_elements("css selector", "p.ok[role='status']"))
    assert "Loopback Copy saved" in css(browser, "p.ok").text and "reloaded" in css(browser, "p.ok").text
    after = env.cfg.read_text(encoding="utf-8")
    head, tail = before.split('name = "Loopback Copy"')  # only this source's entry changed
    assert after == head + 'name = "Loopback Copy"' + tail.replace(
        'interval = "5m"', 'interval = "7m"   # edited in the console', 1)

    css(browser, "a[aria-label='Edit or remove Loopback Copy']").click()
    until(browser, lambda d: d.find_elements("css selector", "#source-remove"))
    css(browser, "#source-remove").click()
    until(browser, lambda d: d.find_elements("css selector", "p.ok[role='status']"))
    assert "Loopback Copy removed" in css(browser, "p.ok").text
    text = env.cfg.read_text(encoding="utf-8")
    assert "Loopback Copy" not in text and 'name = "Loopback Pravda"' in text
    assert text.startswith("# Console test config: this comment must survive a save from the console.")
    assert "# The seed rule (the console edits this one)." in text
    row = browser.find_element("xpath", "//tr[.//strong[text()='Loopback Copy']]")  # its articles stay
    assert "no longer in the config" in row.text and not row.find_elements("css selector", "a.edit")
