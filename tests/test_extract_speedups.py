"""The extraction's speed-ups change nothing it finds: trafilatura's XPaths, guarded so that lxml
calls back into Python only where a regex test can succeed and finding elements by name where
they filter every element on it, select exactly the elements they selected before, on real pages
and on the cases the rewrites are about."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from bench.extract import default_data
from monitor.extract import speedups
from monitor.extract.article import _PARSER
from monitor.wordset import WordSet

ARTICLES = Path(__file__).resolve().parent / "fixtures" / "articles"

# Elements with the attributes trafilatura tests, absent, empty, in either order, and values that
# match its patterns (share, social, hidden, author, comment, nav, footer...).
EDGE_CASES = """<html><head><title>t</title><link rel="author" href="/a"></head><body>
<div id="share-top" class="post"><p>text</p></div>
<div class="share-buttons" id="x"><span>s</span></div>
<div class="" id=""><p>empty attributes</p></div>
<section id="comments" class="Comments-list"><p>c</p></section>
<div class="comment-list"><p>c</p></div>
<p class="byline author-name">By Ann Reporter</p>
<span style="display:none" id="hidden-thing">h</span>
<div role="navigation" class="nav"><a href="/">Home</a></div>
<aside class="sidebar widget"><p>more</p></aside>
<footer id="Footer"><p>f</p></footer>
<div class="article-body"><div class="ad-slot -ad-"><p>ad</p></div><p>body text</p></div>
<ul id="comment-3" class="x"><li>one</li></ul>
<div class="teaser"><p>teaser</p></div>
<div data-component="MostPopularStories"><p>p</p></div>
<h1 class="entry-title headline">Title</h1>
<div class="bottom link" style="border: 1px"><p>b</p></div>
</body></html>"""


def _pages() -> list[str]:
    """The edge cases, the test fixtures' pages and 15 of ../shared/data/articles (where present:
    a whole real page takes ~3 ms per expression)."""
    found = [EDGE_CASES]
    found += [(ARTICLES / f"{pid}.html").read_text(encoding="utf-8")
              for pid in sorted(json.loads((ARTICLES / "ground-truth.json").read_text(encoding="utf-8")))]
    shared = default_data() / "html"
    if shared.is_dir():
        found += [page.read_text(encoding="utf-8") for page in sorted(shared.glob("*.html"))[:15]]
    return found


def test_guarded_xpaths_select_what_the_originals_select() -> None:
    rewritten = speedups.apply()
    assert len(rewritten) >= 15  # the pruning, comment, body, author and title searches
    lists = speedups.xpath_lists()
    pages = _pages()
    assert len(pages) >= 4
    originals = {key: etree.XPath(path, namespaces={"re": speedups.REGEXP_NS}) for key, path in rewritten.items()}
    compared = 0
    for k, html in enumerate(pages):
        # lxml.html's own element classes too, on a few pages (the extractor's parser has its own)
        for parser in (_PARSER, lxml.html.HTMLParser()) if k < 4 else (_PARSER,):
            tree = lxml.html.fromstring(html, parser=parser)
            paths = tree.getroottree().getpath
            for key, original in originals.items():
                before, after = original(tree), lists[key[0]][key[1]](tree)
                assert [paths(e) for e in after] == [paths(e) for e in before], key
                compared += bool(before)
    assert compared > 50  # the expressions found something to compare, often


@pytest.mark.parametrize(("path", "want"), [
    ("//*[re:test(@class, 'share|social')]", "//*[(@class and re:test(string(@class), 'share|social'))]"),
    ("//*[re:test(@id|@class, 'cookie')]", "//*[((@id|@class) and re:test(@id|@class, 'cookie'))]"),
    ("//*[re:test(@class, 'Byline', 'i')]", "//*[(@class and re:test(string(@class), 'Byline', 'i'))]"),
    # a pattern that matches the empty string matches elements without the attribute: left as it is
    ("//*[re:test(@class, 'x?')]", "//*[re:test(@class, 'x?')]"),
    ("//*[re:test(@id, '^$|a')]", "//*[re:test(@id, '^$|a')]"),
])
def test_guard_rewrites_only_tests_that_need_the_attribute(path: str, want: str) -> None:
    assert speedups.guarded(path) == want


@pytest.mark.parametrize(("path", "want"), [
    (".//*[self::div or self::p][@class='x']", "(descendant::div|descendant::p)[@class='x']"),
    ("\n  //*[self::h1 or self::h2][contains(@class, 'title1')]|//author",
     "\n  (/descendant::h1|/descendant::h2)[contains(@class, 'title1')]|//author"),
    (".//*[self::div or self::aside][not(.//h1)]", "(descendant::div|descendant::aside)[not(.//h1)]"),
    # positions count per parent in the first form, along the whole set in the second: left as they are
    (".//*[self::div or self::p][1]", None),
    (".//*[self::div][position() < 3]", None),
    (".//*[self::div][last()]", None),
    (".//*[self::div][count(p)]", None),
    (".//*[self::div][count (p)]", None),  # XPath allows a space before a call's parenthesis
    (".//*[self::div][last ()]", None),
    (".//*[self::div][string-length(@id)]", None),
    (".//*[self::div][$n]", None),
    (".//*[self::div][@a - @b]", None),
    (".//*[self::div][@a*@b]", None),
    # not a filter on names alone
    (".//*[self::div or @id][@class]", None),
    ("(.//*[self::div])[1]", None),
])
def test_by_tag_rewrites_only_a_leading_filter_on_names_without_positions(path: str, want: str | None) -> None:
    assert speedups.by_tag(path) == (path if want is None else want)


def test_stop_words_answer_as_the_set_jusText_makes() -> None:
    import random

    from justext.core import define_stoplist
    from justext.utils import get_stoplist, get_stoplists

    words = [w for language in sorted(get_stoplists()) for w in sorted(get_stoplist(language))]
    full = define_stoplist(tuple(words))  # jusText's own: lower-cased, a frozenset
    compact = WordSet(w.lower() for w in words)
    rng = random.Random(7)
    some = rng.sample(sorted(full), 3000)
    probes = (some + [w.upper() for w in some] + [w + "s" for w in some] + [w[:-1] for w in some]
              + ["".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(1, 12))) for _ in range(3000)]
              + ["", "\0", "der\0", "the", "und", "и", "的"])
    assert [p in compact for p in probes] == [p in full for p in probes]
    assert all(w in compact for w in full)
    assert 3 not in compact and None not in compact
    tiny = WordSet(["ab\0", "a\0b", "x"])  # NULs kept exact
    assert [p in tiny for p in ("ab\0", "ab", "a\0b", "a", "x", "x\0")] == [True, False, True, False, True, False]


def test_a_page_that_falls_back_to_jusText_extracts_as_with_jusTexts_own_stop_words(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import trafilatura.external

    from monitor.extract import extract_article

    para = ("The foreign minister said on Tuesday that the talks would resume in Astana next week, "
            "after both delegations agreed on the agenda and on the role of the observers. ")
    html = (f"<html><head><title>Talks</title></head><body><div><p>{para}<button>Share</button></p>"
            f"<p>{para}</p><p>Subscribe to our newsletter.</p><p>Sign in | Register</p></div></body></html>")
    compact = extract_article(html, "https://news.example/a")
    assert isinstance(trafilatura.external.JT_STOPLIST, speedups._AllStopWords)
    monkeypatch.setattr(trafilatura.external, "JT_STOPLIST", None)  # trafilatura gathers its own tuple
    own = extract_article(html, "https://news.example/a")
    assert isinstance(trafilatura.external.JT_STOPLIST, tuple)  # so the page did fall back to jusText
    assert compact == own and compact is not None


def test_stop_words_kept_by_one_worker_answer_the_same_in_the_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first worker to need jusText's stop words keeps them in $MONITOR_CACHE_DIR; the next
    maps that copy and answers every question as the words built anew; a copy that is not whole
    (a crash while writing, another version) is built again."""
    from justext.utils import get_stoplist, get_stoplists

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    built = speedups._AllStopWords().words
    kept = list(tmp_path.iterdir())
    assert len(kept) == 1
    mapped = speedups._AllStopWords().words
    assert mapped is not built and all(a.base is not None for a in mapped._arrays.values())  # from the file
    words = {w.lower() for language in get_stoplists() for w in get_stoplist(language)}
    probes = sorted(words)[::7] + [w.upper() for w in sorted(words)[::11]] + ["", "\0", "zzqx", "the", "и", "的"]
    assert [p in mapped for p in probes] == [p in built for p in probes] == [p in words for p in probes]
    odd = WordSet(["ab\0", "x", "yz", "éé"])  # a word no array holds, too
    (tmp_path / "odd.bin").write_bytes(odd.dumps())
    back = WordSet.load(tmp_path / "odd.bin")
    assert [p in back for p in ("ab\0", "ab", "x", "yz", "éé", "y")] == [True, False, True, True, True, False]
    kept[0].write_bytes(kept[0].read_bytes()[:-5])  # cut short
    with pytest.raises(ValueError):
        WordSet.load(kept[0])
    again = speedups._AllStopWords().words
    assert all(w in again for w in probes if w in words) and WordSet.load(kept[0])  # made whole again


def test_stop_words_kept_by_another_version_of_the_code_are_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept file's layout is this module's (``WordSet.dumps``/``load``): a file that
    another version of it wrote, under the same jusText, is not read as this one's."""
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path / "cache"))
    assert "the" in speedups._AllStopWords().words
    [kept] = list((tmp_path / "cache").iterdir())
    # A file another layout wrote, which this one's load takes whole: no array, one word.
    kept.write_bytes(b'{"arrays": [], "other": ["zzqx"]}\n')
    changed = tmp_path / "speedups.py"
    changed.write_text(Path(speedups.__file__).read_text(encoding="utf-8") + "\n# another layout\n", encoding="utf-8")
    monkeypatch.setattr(speedups, "__file__", str(changed))
    words = speedups._AllStopWords().words
    assert "the" in words and "zzqx" not in words


def test_stop_words_without_a_cache_directory_are_built_in_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(blocker / "cache"))
    words = speedups._AllStopWords().words
    assert "the" in words and "und" in words and "zzqx" not in words
    assert list(tmp_path.iterdir()) == [blocker]


@pytest.mark.parametrize("url", ["https://news.example/a", None, "https://news.example/caf\u00e9", "http://x.example/\udcff"])
def test_extraction_options_made_once_are_the_ones_trafilatura_makes(url: str | None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``_extract`` hands trafilatura a copy of options made once instead of its keywords: every
    option is the one ``bare_extraction`` makes of the keywords for that URL (but the date search's
    settings, read only with metadata)."""
    import trafilatura
    import trafilatura.core

    from monitor.extract import article

    made: list[trafilatura.core.Extractor] = []

    class Recording(trafilatura.core.Extractor):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(trafilatura.core, "Extractor", Recording)
    trafilatura.bare_extraction("<html><body><p>Some text.</p></body></html>", url=url, **article._SETTINGS)
    monkeypatch.undo()
    ours = article._options(url)
    assert ours is not article._options(url)  # a copy each page: trafilatura may change its own
    slots = [s for s in trafilatura.core.Extractor.__slots__ if s != "date_params"]
    assert {s: getattr(ours, s) for s in slots} == {s: getattr(made[0], s) for s in slots}
    assert not ours.with_metadata


CANONICAL_CASES = """<html><head>
<link rel="alternate" href="/alt"><link rel=" CANONICAL " href=" /a "><link rel="canonical\u00a0x" href="/nbsp">
<link rel="x\t\ncanonical\r\n" href="/tabs"><link rel="Canonical" href="/mixed"><link rel="canonicalx" href="/no">
<link rel="canonical"><meta name="og:url" content="/og-name"><meta property="og:url"><meta property="og:url" content="">
</head><body><link rel="canonical" href="http://b.example/body"><meta property="og:url" content="/og"></body></html>"""


def test_page_searches_in_python_find_what_their_xpaths_found() -> None:
    """The page's canonical URL and date searches walk lxml's iteration instead of XPath: the
    same elements in the same order (rel spelled in any case, with XML's and other spaces)."""
    from monitor.extract import article

    def declared_by_xpath(doc: etree._Element) -> list[str]:
        found = doc.xpath('//link[@href][contains(concat(" ", normalize-space(translate(@rel, "CANONICAL", '
                          '"canonical")), " "), " canonical ")]/@href')
        found += doc.xpath('//meta[@property="og:url" or @name="og:url"][@content]/@content')
        return [str(x) for x in found]

    seen = []
    for html in [CANONICAL_CASES, *_pages()]:
        doc = lxml.html.fromstring(html, parser=_PARSER)
        for node in (doc, *doc.iterdescendants("body")):  # also from an element inside the page
            want = declared_by_xpath(node)
            assert article._url_candidates(node) == want
            seen += want
            for tag in ("script", "meta", "time"):
                assert list(article._every(node, tag)) == node.xpath(f"//{tag}")
    assert seen[:5] == [" /a ", "/tabs", "/mixed", "http://b.example/body", "/og-name"]


def test_page_searched_as_bytes_finds_what_its_text_would() -> None:
    """The pop-up, body-class and display:none searches of the raw page run on its lower-cased
    UTF-8 bytes: the same spellings and answers as on its lower-cased text, on every page and on
    pages with the characters that lower-case (or match case-blind) to ASCII letters."""
    import re
    import sys

    from monitor.extract import article
    from monitor.extract.article import _POPUP_WORDS, _Raw

    letters = set("".join(_POPUP_WORDS) + "article story post entry body content text display none") - {" "}
    to_ascii = re.compile(f"(?i)[{''.join(sorted(letters))}]")
    beyond = [c for c in map(chr, range(128, sys.maxunicode + 1)) if not 0xD800 <= ord(c) <= 0xDFFF
              and (to_ascii.match(c) or any(x in letters for x in c.lower()))]
    assert [c.encode() for c in beyond] == list(article._TO_ASCII)

    edge = ("<div class='Tooltip-Body ROLLOVER-card'>x</div><p style='DISPLAY : None'>h</p>"
            "<div class='Article__Body story-TEXT postcontent entry_text'>é中文</div>")
    pages = [*_pages(), edge, edge.replace("x<", "é<"), edge.replace("é", "\U0001f600"),
             "<p style='display:none'>x</p>", "<p style='dis play:none'>x</p>", "<p>display</p><p>d i s p l a y:none</p>"]
    as_text = 0
    for html in pages + [edge + c for c in "\u0130\u0131\u017f"] + [edge.replace("Tool", "Too\u0130"), edge + "\u212a\u0100"]:
        raw = _Raw.of(html)
        as_text += isinstance(raw.text, str)
        text = _Raw(html, html, html.lower())  # searched as text (as before)
        assert raw.spellings(_POPUP_WORDS) == text.spellings(_POPUP_WORDS)
        assert raw.body_spellings() == text.body_spellings()
        assert raw.hides() == text.hides()
    assert as_text == 4  # the three characters, and no other page
    edge_raw = _Raw.of(edge)
    assert edge_raw.spellings(_POPUP_WORDS) == ("ROLLOVER", "Tooltip")
    assert edge_raw.body_spellings() == ("Article__Body", "entry_text", "postcontent", "story-TEXT") and edge_raw.hides()
    assert _Raw.of(edge + "\u0130").spellings(_POPUP_WORDS) is None  # İ lower-cases to two characters
