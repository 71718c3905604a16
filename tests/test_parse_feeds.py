"""Real feeds (tests/fixtures/feeds, byte-exact copies of ../shared/data/feeds) served on loopback
and parsed as the pipeline parses them: from the response bytes and Content-Type."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from monitor.parse import FeedParseError, ParsedFeed, parse_feed
from tests.servers import Page, Site

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"

# file -> (Content-Type the server sends, entries, spot-check titles, spot-check canonical links)
CASES: dict[str, tuple[str, int, list[str], list[str]]] = {
    "bbc_urdu_rss20_cdata_rtl.xml": ("application/rss+xml", 26,
        ["امریکہ کے ساتھ خفیہ معلومات کا تبادلہ اور فوجی تعاون معطل کر دیا: وزیر دفاع"],
        ["http://www.bbc.com/urdu/pakistan-42645212"]),
    "golem_de_rss20_iso-8859-1.xml": ("application/rss+xml", 40,
        ["Red Dead Redemption 2: Hinweise auf PC-Umsetzung in App von Rockstar Games"],
        ["https://www.golem.de/news/red-dead-redemption-2-hinweise-auf-pc-umsetzung-in-app-von-rockstar-games-1810-137358-rss.html"]),
    "google_alerts_atom_redirect_links.xml": ("application/atom+xml", 20,
        ["Slack Stock Has a Compelling Story and the Numbers to Back It Up"],
        ["https://investorplace.com/2019/07/slack-stock-truly-compelling/"]),
    "guardian_us_rss20_media_content.xml": ("application/rss+xml", 55,
        ["FBI has 'grave concerns' about Trump plan to release controversial memo"],
        ["https://www.theguardian.com/us-news/2018/jan/31/fbi-nunes-memo-release-donald-trump"]),
    "heise_de_rdf09_no_dates.xml": ("application/rdf+xml", 60,
        ["OLED-TVs: Vorsichtsmaßnahmen gegen Einbrennen", "Mega-Deal: IBM übernimmt Red Hat"],
        ["https://www.heise.de/newsticker/meldung/Mega-Deal-IBM-uebernimmt-Red-Hat-4205582.html"]),
    "ibash_org_ru_rss20_windows-1251.xml": ("text/xml", 50, ["Цитата #17703"],
        ["http://ibash.org.ru/quote.php?id=17703"]),
    "ilmessaggero_it_rss20_no_xmldecl.xml": ("application/rss+xml", 1,
        ["Missili Polonia, cosa è successo? Tensione Nato-Russia, Mosca: non siamo stati noi"],
        ["https://www.ilmessaggero.it/mondo/missili_polonia_cosa_e_successo_davvero-7054869.html"]),
    # 10 items, one of them empty (<title></title><link></link>): skipped with a warning
    "lecerclepsy_rss20_undeclared_latin1.xml": ("text/xml", 9,
        ["Perturbateurs endocriniens : quels effets sur le cerveau ?", "La criminalité liée surtout à... l'ennui ?"],
        ["https://le-cercle-psy.scienceshumaines.com/perturbateurs-endocriniens-quels-effets-sur-le-cerveau_sh_39995"]),
    "macworld_rss20_leading_blank_lines.xml": ("application/rss+xml", 30,
        ["macOS High Sierra ‘root’ security issue allows admin access without a password—but there’s a fix"],
        ["https://www.techhive.com/article/3212828/connected-home/best-smart-lock.html"]),
    "numist_atom_xml_base.xml": ("application/atom+xml", 1, ["my cool entry title"],
        ["https://numi.st/post/2022/travel-uke"]),
    "nytimes_wirecutter_rss20_utm.xml": ("application/rss+xml", 1,
        ["How to Teach Someone a Board Game (and Even Have Fun Doing It)"],
        ["https://www.nytimes.com/wirecutter/blog/how-to-teach-someone-a-board-game/"]),
    "qq_news_rss20_gb2312.xml": ("application/rss+xml", 20,
        ["习近平为何如此强调崇尚英雄？", "习近平谈抗战：牢记历史是要以史为鉴、面向未来"],
        ["http://news.qq.com/a/20180918/009846.htm"]),
}
MOJIBAKE = ("Ã", "Â", "Ð", "Ñ\x81", "\ufffd", "ï¿½", "â€", "Ø§")


@pytest.fixture(scope="module")
def feed_site() -> Iterator[Site]:
    s = Site()
    for name, (ctype, *_rest) in CASES.items():
        s.pages[f"/{name}"] = Page((FEEDS / name).read_bytes(), ctype)
    s.start()
    yield s
    s.stop()


def _fetch_and_parse(site: Site, name: str, **kw: str) -> ParsedFeed:
    resp = httpx.get(site.url(f"/{name}"), timeout=10)
    resp.raise_for_status()
    return parse_feed(resp.content, str(resp.url), resp.headers.get("content-type"), **kw)


def test_fixtures_are_the_shared_files_byte_for_byte() -> None:
    repo = Path(__file__).resolve().parents[1]
    found = [p / "data" / "feeds" for p in (repo.parent / "shared", repo.parent.parent / "shared")
             if (p / "data" / "feeds").is_dir()]
    if not found:
        pytest.skip("../shared/data/feeds is not here")
    shared = found[0]
    for name in CASES:
        assert (FEEDS / name).read_bytes() == (shared / name).read_bytes(), name
    assert sorted(p.name for p in shared.glob("*.xml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_feed_served_on_loopback(feed_site: Site, name: str) -> None:
    _ctype, count, titles, links = CASES[name]
    feed = _fetch_and_parse(feed_site, name)
    assert len(feed.entries) == count
    got_titles = [e.title for e in feed.entries]
    for t in titles:
        assert t in got_titles
    for e in feed.entries:
        assert e.title and not any(m in e.title for m in MOJIBAKE), e.title
        assert "<" not in e.title
        # canonical: no tracking parameters, no redirect wrapper, no fragment
        assert e.url.startswith(("http://", "https://")) and "#" not in e.url
        assert not any(t in e.url for t in ("utm_", "wt_mc", "google.com/url", "127.0.0.1"))
    got_links = {e.url for e in feed.entries}
    for link in links:
        assert link in got_links


def test_dates_in_every_feed(feed_site: Site) -> None:
    for name in CASES:
        feed = _fetch_and_parse(feed_site, name)
        for e in feed.entries:
            if name == "heise_de_rdf09_no_dates.xml":
                assert e.published is None  # no date: the pipeline stores the first-seen time, flagged
            else:
                assert e.published is not None and e.published.tzinfo is not None, (name, e.title)
                assert datetime(2017, 1, 1, tzinfo=UTC) < e.published < datetime(2023, 1, 1, tzinfo=UTC)


def test_italian_date_and_zoneless_chinese_date(feed_site: Site) -> None:
    it = _fetch_and_parse(feed_site, "ilmessaggero_it_rss20_no_xmldecl.xml").entries[0]
    assert it.published == datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)  # "mer, 16 nov 2022 00:38:15 +0100"
    qq = _fetch_and_parse(feed_site, "qq_news_rss20_gb2312.xml")
    first = next(e for e in qq.entries if e.url.endswith("/009846.htm"))
    assert first.published == datetime(2018, 9, 18, 6, 38, 10, tzinfo=UTC)  # 14:38:10 Beijing time
    # the source's configured zone wins over the language's usual one
    qq_almaty = _fetch_and_parse(feed_site, "qq_news_rss20_gb2312.xml", timezone="Asia/Almaty")
    first = next(e for e in qq_almaty.entries if e.url.endswith("/009846.htm"))
    assert first.published == datetime(2018, 9, 18, 8, 38, 10, tzinfo=UTC)


def test_relative_links_resolved_against_xml_base_and_item_page(feed_site: Site) -> None:
    numist = _fetch_and_parse(feed_site, "numist_atom_xml_base.xml").entries[0]
    assert 'src="https://numi.st/post/2022/travel-uke/IMG_1232.jpeg"' in numist.content_html
    mac = _fetch_and_parse(feed_site, "macworld_rss20_leading_blank_lines.xml")
    body = " ".join(e.content_html for e in mac.entries)
    assert 'href="https://www.macworld.com/article/3225406/iphone-ipad/face-id-iphone-x-faq.html#bkav"' in body
    assert "127.0.0.1" not in body and 'href="/' not in body


def test_google_alerts_titles_lose_markup_and_links_lose_wrapper(feed_site: Site) -> None:
    feed = _fetch_and_parse(feed_site, "google_alerts_atom_redirect_links.xml")
    assert all("google.com" not in e.url for e in feed.entries)
    assert all(e.original_url and e.original_url.startswith("https://www.google.com/url?") for e in feed.entries)


def test_lead_image_from_media_elements(feed_site: Site) -> None:
    feed = _fetch_and_parse(feed_site, "guardian_us_rss20_media_content.xml")
    assert feed.entries[0].image and feed.entries[0].image.startswith("https://i.guim.co.uk/")


# -- synthetic cousins: what the real set does not contain ----------------------------------

def _rss(title: str, *, decl: str | None, lang: str | None = None, extra: str = "") -> str:
    head = f'<?xml version="1.0" encoding="{decl}"?>\n' if decl else ""
    language = f"<language>{lang}</language>" if lang else ""
    return (f'{head}<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">'
            f"<channel><title>t</title><link>https://example.org/</link>{language}"
            f"<item><title>{title}</title><link>https://example.org/a/1</link>"
            f"<description>{title} {title}</description>{extra}</item></channel></rss>")


COUSINS = [
    # (text, real encoding, declared in XML, Content-Type charset, <language>)
    ("Zażółć gęślą jaźń: minister spraw zagranicznych przedstawił założenia polityki", "iso-8859-2", "ISO-8859-1", None, None),
    ("Zażółć gęślą jaźń: minister spraw zagranicznych przedstawił założenia polityki", "iso-8859-2", None, "iso-8859-1", "pl"),
    ("Předseda vlády řekl, že Česká republika podpoří žádost Ukrajiny", "iso-8859-2", "ISO-8859-1", None, "cs"),
    ("Министр иностранных дел заявил, что переговоры возможны", "windows-1251", "UTF-8", None, None),
    ("Министр иностранных дел заявил, что переговоры возможны", "windows-1251", None, None, None),
    ("Министр иностранных дел заявил, что переговоры возможны", "koi8-r", None, None, None),
    ("Министр иностранных дел заявил, что переговоры возможны", "koi8-r", "windows-1251", None, "ru"),
    ("Президент Казахстану заявив, що переговори можливі", "koi8-u", "KOI8-U", None, "uk"),
    ("Ο πρωθυπουργός δήλωσε ότι η κυβέρνηση θα στηρίξει την πρόταση", "iso-8859-7", None, None, None),
    ("Dışişleri Bakanı, Türkiye'nin müzakerelere ev sahipliği yapmaya hazır olduğunu söyledi", "iso-8859-9", "ISO-8859-1", None, "tr"),
    ("外務大臣は、カザフスタンが仲介役を務める可能性があると述べた", "shift_jis", None, None, None),
    ("Außenminister: Gespräche über Waffenruhe „möglich“ – Bundesregierung prüft Vorschlag", "windows-1252", "UTF-8", None, None),
    ("Le ministre a déclaré : « la médiation est possible » – voilà", "utf-8", "ISO-8859-1", None, None),
]


@pytest.mark.parametrize(("text", "encoding", "decl", "charset", "lang"), COUSINS)
def test_wrong_missing_and_legacy_encodings_decode(text: str, encoding: str, decl: str | None,
                                                  charset: str | None, lang: str | None) -> None:
    body = _rss(text, decl=decl, lang=lang).encode(encoding)
    ctype = f"application/rss+xml; charset={charset}" if charset else "application/rss+xml"
    feed = parse_feed(body, "https://example.org/feed", ctype)
    assert feed.entries[0].title == text


def test_mostly_utf8_with_stray_latin1_bytes() -> None:
    body = _rss("Crème brûlée für München – ein Rezept", decl="utf-8").encode("utf-8")
    body = body.replace(b"ein Rezept", "ein Rezept f\xfcr Sie".encode("latin-1"))
    assert parse_feed(body, "https://example.org/feed").entries[0].title == "Crème brûlée für München – ein Rezept für Sie"


def test_feedburner_origlink_wins_over_feedproxy() -> None:
    xml = _rss("Story", decl="utf-8", extra="<feedburner:origLink>https://www.publisher.example/2024/story.html?utm_source=feedburner&amp;utm_medium=feed</feedburner:origLink>")
    xml = xml.replace("<link>https://example.org/a/1</link>", "<link>http://feedproxy.google.com/~r/Publisher/~3/AbC123/story.html</link>")
    entry = parse_feed(xml.encode(), "https://example.org/feed").entries[0]
    assert entry.url == "https://www.publisher.example/2024/story.html"


def test_other_language_dates_and_zoneless_dates() -> None:
    cases = [
        ("qua, 16 nov 2022 10:00:00 -0300", "pt-br", None, datetime(2022, 11, 16, 13, 0, tzinfo=UTC)),
        ("16 novembre 2022 10:00", "it", None, datetime(2022, 11, 16, 9, 0, tzinfo=UTC)),
        ("mié, 16 nov 2022 10:00:00", "es", None, datetime(2022, 11, 16, 9, 0, tzinfo=UTC)),
        ("2022-11-16 10:00:00", "pt-BR", None, datetime(2022, 11, 16, 13, 0, tzinfo=UTC)),
        ("2022-11-16 10:00:00", "it", "America/New_York", datetime(2022, 11, 16, 15, 0, tzinfo=UTC)),
        ("2022-11-16T10:00:00Z", "ja", None, datetime(2022, 11, 16, 10, 0, tzinfo=UTC)),
    ]
    for raw, lang, tz, expected in cases:
        xml = _rss("Titolo", decl="utf-8", lang=lang).replace("</description>", f"</description><pubDate>{raw}</pubDate>")
        entry = parse_feed(xml.encode(), "https://example.org/feed", timezone=tz).entries[0]
        assert entry.published == expected, raw


def test_one_bad_entry_does_not_drop_the_rest() -> None:
    items = "".join(f"<item><title>Item {i}</title><link>https://example.org/{i}</link>"
                    f"<description>{'<b>broken & unescaped' if i == 2 else 'ok'}</description></item>" for i in range(5))
    xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}<item><title>Last</title></channel></rss>'
    feed = parse_feed(xml.encode(), "https://example.org/feed")
    assert [e.title for e in feed.entries][:5] == [f"Item {i}" for i in range(5)]
    assert any("malformed" in w for w in feed.warnings)


def test_unusable_input_is_a_clear_error() -> None:
    for body, why in [(b"", "empty"), (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
                      (b"\x00\x01garbage\xff", "not a feed"), (b"{\"not\": \"a feed\"}", "not a feed")]:
        with pytest.raises(FeedParseError, match=why):
            parse_feed(body, "https://example.org/feed")


def test_json_feed() -> None:
    doc = ('{"version": "https://jsonfeed.org/version/1.1", "title": "J", "language": "de", "items": ['
           '{"id": "1", "url": "https://example.org/a?utm_source=json", "title": "Grüße", "content_html": "<p>Hallo</p>",'
           ' "date_published": "2024-01-02T03:04:05+01:00", "authors": [{"name": "Ann"}], "image": "/i.png"},'
           ' {"id": "2", "url": "/b", "title": "No date"}, "garbage"]}')
    feed = parse_feed(doc.encode(), "https://example.org/feed.json", "application/feed+json")
    assert [e.title for e in feed.entries] == ["Grüße", "No date"]
    a, b = feed.entries
    assert a.url == "https://example.org/a" and a.author == "Ann" and a.image == "https://example.org/i.png"
    assert a.published == datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC) and a.content_text == "Hallo"
    assert b.url == "https://example.org/b" and b.published is None
    assert any("entry 2" in w for w in feed.warnings)


def test_a_json_feed_item_with_an_absurd_number_does_not_lose_the_feed() -> None:
    """A 5,000-digit ``id`` made ``json.loads`` raise (Python's integer-conversion limit): the whole
    feed was refused as invalid JSON, every item lost with it. The number is kept as written."""
    doc = ('{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": ['
           '{"id": ' + "7" * 5000 + ', "url": "https://example.org/a", "title": "A"},'
           ' {"id": 2, "url": "https://example.org/b", "title": "B"}]}')
    feed = parse_feed(doc.encode(), "https://example.org/feed.json", "application/feed+json")
    assert [(e.title, e.url) for e in feed.entries] == [("A", "https://example.org/a"), ("B", "https://example.org/b")]
    assert feed.entries[0].guid == "sha256:" + hashlib.sha256(("7" * 5000).encode()).hexdigest()
    assert feed.entries[1].guid == "2"


def test_source_timezone_and_language_config(tmp_path: Path) -> None:
    from monitor.config import ConfigError, load_config

    p = tmp_path / "config.toml"
    p.write_text('[[source]]\nname = "qq"\nurl = "https://news.example/feed"\ntimezone = "Asia/Shanghai"\nlanguage = "zh-CN"\n')
    src = load_config(p, env={}).sources[0]
    assert (src.timezone, src.language) == ("Asia/Shanghai", "zh-CN")
    p.write_text('[[source]]\nname = "qq"\nurl = "https://news.example/feed"\ntimezone = "Mars/Olympus"\nlanguage = "chinese!"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    msg = str(exc.value)
    assert "config.toml:4: source 'qq': unknown time zone 'Mars/Olympus'" in msg
    assert "config.toml:5: source 'qq': language must be a code" in msg


def test_text_double_encoded_upstream_is_repaired() -> None:
    # The CMS stored UTF-8 read as windows-1252 and served that as UTF-8: valid bytes, wrong text.
    title = "München: Ärger um die Straße – £5 für Министр"
    broken = title.encode("utf-8").decode("cp1252", errors="replace")
    xml = _rss(broken.replace("&", "&amp;"), decl="utf-8")
    entry = parse_feed(xml.encode("utf-8"), "https://example.org/feed").entries[0]
    assert "Ã" not in entry.title
    assert entry.title.startswith("München: Ärger um die Straße")


def test_undefined_html_entities_in_xml() -> None:
    xml = _rss("Caf&eacute; &amp; cr&egrave;me&nbsp;br&ucirc;l&eacute;e", decl="utf-8")
    feed = parse_feed(xml.encode(), "https://example.org/feed")
    assert feed.entries[0].title == "Café & crème\u00a0brûlée".replace("\u00a0", " ")


def test_relative_entry_links_xml_base_and_channel_link() -> None:
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://example.org/blog/">'
            '<title>t</title><entry><title>a</title><id>1</id><link href="posts/1?utm_source=x"/><updated>2024-01-01T00:00:00Z</updated></entry>'
            '<entry xml:base="https://other.example/x/"><title>b</title><id>2</id><link href="../y/2"/><updated>2024-01-01T00:00:00Z</updated></entry></feed>')
    assert [e.url for e in parse_feed(atom.encode(), "https://feeds.example/feed.atom").entries] == [
        "https://example.org/blog/posts/1", "https://other.example/y/2"]
    rss = ('<rss version="2.0"><channel><title>t</title><link>https://site.example/</link>'
           '<item><title>a</title><link>/news/1</link><description>&lt;a href="/news/2"&gt;more&lt;/a&gt;</description></item></channel></rss>')
    [entry] = parse_feed(rss.encode(), "https://cdn.feeds.example/f.xml").entries
    assert entry.url == "https://site.example/news/1"
    assert 'href="https://site.example/news/2"' in entry.content_html


@pytest.mark.parametrize(("raw", "lang", "expected_utc_hour"), [
    ("Mi, 16 Nov 2022 10:00:00 +0100", "de", 9),
    ("mer., 16 nov. 2022 10:00:00 +0100", "fr", 9),
    ("śr, 16 lis 2022 10:00:00 +0100", "pl", 9),
    ("Ср, 16 ноя 2022 10:00:00 +0300", "ru", 7),
    ("Çar, 16 Kas 2022 10:00:00 +0300", "tr", 7),
    ("quarta-feira, 16 de novembro de 2022 10:00", "pt", 10),  # Lisbon: UTC+0 in November
    ("16 listopada 2022 10:00", "pl", 9),  # Warsaw: UTC+1
    ("2022年11月16日 10:00", "zh", 2),  # Beijing: UTC+8
    ("Wed, 16 Nov 2022 10:00:00 CEST", None, 8),
    ("Wed, 16 Nov 2022 10:00:00 EST", None, 15),
])
def test_dates_in_many_languages(raw: str, lang: str | None, expected_utc_hour: int) -> None:
    from monitor.parse.dates import parse_date

    assert parse_date(raw, None, lang) == datetime(2022, 11, 16, expected_utc_hour, tzinfo=UTC)


def test_entries_without_links_keep_distinct_identities() -> None:
    items = "".join(f"<item><guid isPermaLink=\"false\">note-{i}</guid><title>Note {i}</title>"
                    f"<description>Text {i}</description></item>" for i in range(3))
    xml = f'<rss version="2.0"><channel><title>t</title><link>https://site.example/</link>{items}</channel></rss>'
    entries = parse_feed(xml.encode(), "https://site.example/feed").entries
    assert len({e.url for e in entries}) == 3
    assert all(e.url.startswith("urn:monitor:entry:") for e in entries)
    again = parse_feed(xml.encode(), "https://site.example/feed").entries
    assert [e.url for e in again] == [e.url for e in entries]  # stable across polls


def test_html_page_error_says_so_for_autodiscovery() -> None:
    with pytest.raises(FeedParseError) as exc:
        parse_feed(b"<!doctype html><html><head><link rel=alternate type=application/rss+xml href=/f></head></html>",
                   "https://site.example/")
    assert exc.value.is_html
