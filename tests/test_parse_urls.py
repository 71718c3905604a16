"""Canonical URLs: one spelling per article, whatever link led to it."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.parse.urls import canonical_url, preferred_url, same_site, unwrap_redirect

BASE = "https://www.example.com/news/2024/05/story.html"


@pytest.mark.parametrize("variant", [
    "HTTPS://WWW.Example.COM/news/2024/05/story.html",
    "https://www.example.com:443/news/2024/05/story.html",
    "https://www.example.com/news/2024/05/story.html#comments",
    "https://www.example.com/news/./2024/archive/../05/story.html",
    "https://www.example.com/news/2024/05/story.html?utm_source=rss&utm_medium=feed&utm_campaign=RSS%20Feed",
    "https://www.example.com/news/2024/05/story.html?fbclid=IwAR0abc&gclid=x1&dclid=2&msclkid=3",
    "https://www.example.com/news/2024/05/story.html?mc_cid=a&mc_eid=b&igshid=c&yclid=d",
    "https://www.example.com/news/2024/05/story.html?wt_mc=rss.ho.beitrag.rdf&wt_zmc=x",
    "https://www.example.com/news/2024/05/story.html?xtor=RSS-1&ocid=msn&cmpid=rss&smid=tw-share",
    "https://www.example.com/news/2024/05/story.html?CMP=share_btn_tw&ito=1&_ga=2.1",
    "https://www.example.com/news/2024/05/story.html?source=rss&ref=twitter",
    "https://www.example.com/news/2024/05/%73tory.html",
    "https://user:pw@www.example.com/news/2024/05/story.html",
    "https://www.google.com/url?rct=j&sa=t&url=https://www.example.com/news/2024/05/story.html%3Futm_source%3Drss&ct=ga&usg=AF",
    "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.example.com%2Fnews%2F2024%2F05%2Fstory.html&h=AT0",
    "https://duckduckgo.com/l/?uddg=https%3A%2F%2Fwww.example.com%2Fnews%2F2024%2F05%2Fstory.html",
    "https://r.search.yahoo.com/_ylt=A0/RV=2/RE=1/RO=10/RU=https%3a%2f%2fwww.example.com%2fnews%2f2024%2f05%2fstory.html/RK=2/RS=x-",
    "  https://www.example.com/news/2024/05/story.html  ",
    "https://news.google.com/rss/articles/" + base64.urlsafe_b64encode(
        b"\x08\x13\x22" + bytes([47]) + b"https://www.example.com/news/2024/05/story.html" + b"\xd2\x01\x00").decode().rstrip("=") + "?oc=5",
])
def test_variants_of_one_url_agree(variant: str) -> None:
    assert canonical_url(variant) == BASE


@pytest.mark.parametrize("url", [
    "https://example.com/article?id=42",
    "https://example.com/?p=270973",
    "https://example.com/view?page=2&story=7",
    "https://example.com/read?article=abc",
    "https://example.com/search?source=reuters",  # a meaningful 'source', not a channel
])
def test_meaningful_parameters_stay(url: str) -> None:
    assert canonical_url(url) == url


def test_query_sorted_and_escapes_normalised() -> None:
    assert canonical_url("http://Example.com:8080/a%2fb/c%7e?b=2&a=1&a=0") == "http://example.com:8080/a%2Fb/c~?a=0&a=1&b=2"
    assert canonical_url("http://example.com/caf\u00e9?q=a+b") == "http://example.com/caf%C3%A9?q=a%20b"
    assert canonical_url("http://example.com") == "http://example.com/"
    assert canonical_url("http://[::1]:80/x") == "http://[::1]/x"
    assert canonical_url("http://B\u00dcCHER.example/") == "http://xn--bcher-kva.example/"


def test_hashbang_route_is_content() -> None:
    assert canonical_url("https://example.com/#!/story/1") == "https://example.com/#!/story/1"


def test_non_http_left_alone() -> None:
    assert canonical_url("mailto:a@b.c") == "mailto:a@b.c"
    assert canonical_url("tag:example.com,2024:1") == "tag:example.com,2024:1"


def test_unwrap_nested_redirects() -> None:
    inner = "https://www.google.com/url?url=" + quote("https://site.org/a?x=1", safe="")
    outer = "https://l.facebook.com/l.php?u=" + quote(inner, safe="")
    assert unwrap_redirect(outer) == "https://site.org/a?x=1"
    # a ?url= on an unknown host is content, not a wrapper
    assert unwrap_redirect("https://archive.example/wait?url=https://a.b/") == "https://archive.example/wait?url=https://a.b/"


def test_preferred_url_takes_same_site_canonical_only() -> None:
    link = "https://edition.example.co.uk/2024/story?utm_source=rss"
    assert preferred_url(link, "https://www.example.co.uk/2024/story-amp-free") == "https://www.example.co.uk/2024/story-amp-free"
    assert preferred_url(link, "https://aggregator.example.net/x") == "https://edition.example.co.uk/2024/story"
    assert preferred_url(link, "https://www.example.co.uk/") == "https://edition.example.co.uk/2024/story"
    assert preferred_url(link, None, "") == "https://edition.example.co.uk/2024/story"
    assert same_site("https://news.bbc.co.uk/a", "https://www.bbc.co.uk/b")
    assert not same_site("https://a.github.io/x", "https://b.example.io/x")


# -- properties -------------------------------------------------------------------------------

# URLs in feeds carry no raw whitespace or control characters (outer whitespace is stripped).
_segment = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=8)
_hosts = st.sampled_from(["example.com", "WWW.Example.org", "news.bbc.co.uk", "127.0.0.1", "[::1]", "xn--bcher-kva.example", "b\u00fccher.example"])
_keys = st.sampled_from(["id", "p", "q", "utm_source", "fbclid", "page", "source", "a b", "k%", "ref", "\u00e9"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
    host = draw(_hosts)
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    path = "/".join(draw(st.lists(_segment | st.sampled_from([".", "..", "%2F", "%7e", "%zz"]), max_size=5)))
    params = draw(st.lists(st.tuples(_keys, _segment), max_size=4))
    query = "&".join(f"{quote(k)}={quote(v) if draw(st.booleans()) else v.replace('&', '').replace('#', '')}" for k, v in params)
    frag = draw(st.sampled_from(["", "#top", "#!/x"]))
    path = path.replace("?", "").replace("#", "")
    return f"{scheme}://{host}{port}/{path}" + (f"?{query}" if query else "") + frag


@settings(max_examples=400, deadline=None, derandomize=True)
@given(urls())
def test_canonicalisation_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@settings(max_examples=200, deadline=None, derandomize=True)
@given(urls(), st.sampled_from(["utm_medium=email", "fbclid=XYZ", "gclid=1", "mc_eid=a1"]), st.booleans())
def test_tracking_and_spelling_variants_agree(url: str, tracker: str, upper: bool) -> None:
    base = canonical_url(url)
    sep = "&" if "?" in url.split("#")[0] else "?"
    head, _, frag = url.partition("#")
    variant = f"{head}{sep}{tracker}" + (f"#{frag}" if frag else "")
    if upper:
        scheme, rest = variant.split("://", 1)
        host, slash, tail = rest.partition("/")
        variant = f"{scheme.upper()}://{host.upper()}{slash}{tail}"
    assert canonical_url(variant) == base
    wrapped = "https://www.google.com/url?sa=t&url=" + quote(url, safe="")
    assert canonical_url(wrapped) == base
