"""Canonical URLs, so the same article reached through different links is stored once.

One article reaches us under many spellings: with campaign parameters appended by the feed,
behind a click-counting redirector (Google Alerts, FeedBurner, Facebook's l.php), with an
upper-case host, a default port, a fragment, ``./`` segments or parameters in another order.
``canonical_url`` maps all of them to one string; it is idempotent, so a stored canonical URL
canonicalises to itself and comparisons stay stable across versions of a page.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import tld

from monitor.parse.entry import storable_url

# Parameters that only say how a reader arrived (campaigns, click ids, share buttons).
# Anything that selects content (?id=, ?p=, ?story=, ?article=, ?page=) is kept.
_TRACKING = re.compile(
    r"^(utm_\w*|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|igsh|yclid|ysclid|"
    r"wt_mc|wt_zmc|wt\.mc_id|wt\.\w+|xtor|xtref|ocid|cmpid|smid|smtyp|emc|cmp|_ga|_gl|_hsenc|_hsmi|"
    r"__hssc|__hstc|__hsfp|hsctatracking|mkt_tok|spm|scm|ref_src|ref_url|__twitter_impression|"
    r"at_medium|at_campaign|at_custom\d*|at_ptr_name|at_link\w*|at_format|at_bbc_team|"
    r"ns_mchannel|ns_source|ns_campaign|ns_linkname|ns_fee|sr_share|vero_id|vero_conv|oly_anon_id|"
    r"oly_enc_id|rb_clickid|s_cid|s_kwcid|soc_src|soc_trk|ito|itm_\w+|int_source|int_medium|"
    r"int_campaign|guccounter|guce_referrer\w*|trk|trkcampaign|sc_cid|cid_source|mbid|"
    r"_openstat|wickedid|twclid|ttclid|li_fat_id|epik|srsltid|ncid|cvid|taid|fb_action_ids|"
    r"fb_action_types|fb_ref|fb_source|action_object_map|action_type_map|action_ref_map)$",
    re.I,
)
# Generic keys that are tracking only when their value names a channel (?source=rss).
_CHANNEL_KEYS = re.compile(r"^(source|src|ref|from|via|feed|partner|rss|mod|medium|channel|campaign)$", re.I)
_CHANNEL_VALUES = re.compile(
    r"^(rss|rss2|rss_\w+|feed|feeds|feedburner|atom|twitter|tw|facebook|fb|newsletter|email|mail|"
    r"share|social|linkedin|whatsapp|telegram|google_news|googlenews|msn|yahoo|flipboard|"
    r"homepage|hp|nl|sm)([._-]\w*)*$",
    re.I,
)

# Redirect wrappers: host pattern -> query keys that carry the target URL.
_REDIRECTORS: list[tuple[re.Pattern[str], re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(r"^(www\.)?google(\.com?)?(\.[a-z]{2})?$"), re.compile(r"^/url$"), ("url", "q")),
    (re.compile(r"^news\.google\.com$"), re.compile(r"^/(news/)?url$"), ("url",)),
    (re.compile(r"^(l|lm|m|www)\.facebook\.com$"), re.compile(r"^/l\.php$"), ("u",)),
    (re.compile(r"^l\.instagram\.com$"), re.compile(r"^/$"), ("u",)),
    (re.compile(r"^(www\.)?bing\.com$"), re.compile(r"^/news/apiclick\.aspx$"), ("url",)),
    (re.compile(r"^(www\.)?youtube\.com$"), re.compile(r"^/redirect$"), ("q",)),
    (re.compile(r"^(www\.)?linkedin\.com$"), re.compile(r"^/redir/redirect$"), ("url",)),
    (re.compile(r"^(html\.)?duckduckgo\.com$"), re.compile(r"^/l/?$"), ("uddg",)),
    (re.compile(r"^out\.reddit\.com$"), re.compile(r".*"), ("url",)),
    (re.compile(r"^vk\.com$"), re.compile(r"^/away\.php$"), ("to",)),
    (re.compile(r"^slack-redir\.net$"), re.compile(r"^/link$"), ("url",)),
    (re.compile(r"^\w+\.safelinks\.protection\.outlook\.com$"), re.compile(r"^/?$"), ("url",)),
    (re.compile(r"^href\.li$"), re.compile(r"^/?$"), ("",)),
    (re.compile(r"^(www\.)?flipboard\.com$"), re.compile(r"^/redirect$"), ("url",)),
    (re.compile(r"^t\.umblr\.com$"), re.compile(r"^/redirect$"), ("z",)),
    (re.compile(r"^click\.redditmail\.com|^feeds\.feedblitz\.com$"), re.compile(r".*"), ("url",)),
]
# Google News: /rss/articles/<base64 protobuf>; older ids carry the target URL in clear.
_GOOGLE_NEWS = re.compile(r"^/(?:rss/)?articles/([A-Za-z0-9_-]{20,})$")
# Yahoo search: /.../RU=<encoded target>/RK=...
_YAHOO = re.compile(r"/RU=([^/]+)/R[KS]=")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def is_tracking_param(key: str, value: str = "") -> bool:
    """True for parameters that only record how a reader arrived."""
    return bool(_TRACKING.match(key) or (_CHANNEL_KEYS.match(key) and _CHANNEL_VALUES.match(value)))


def unwrap_redirect(url: str, max_depth: int = 5) -> str:
    """The target of a click-counting redirect wrapper (google.com/url?url=...), else ``url``."""
    for _ in range(max_depth):
        target = _redirect_target(url)
        if not target:
            return url
        url = target
    return url


def _redirect_target(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    if host == "news.google.com" and (m := _GOOGLE_NEWS.match(parts.path)):
        return _google_news_target(m.group(1))
    if host.endswith("search.yahoo.com"):
        m = _YAHOO.search(parts.path)
        return _absolute(unquote(m.group(1))) if m else None
    for host_re, path_re, keys in _REDIRECTORS:
        if host_re.match(host) and path_re.match(parts.path or "/"):
            if keys == ("",):  # href.li/?https://target
                return _absolute(unquote(parts.query))
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            for k in keys:
                if k in params and (target := _absolute(params[k])):
                    return target
    return None


def _google_news_target(article_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (ValueError, binascii.Error):
        return None
    m = re.search(rb"https?://[\x21-\x7e]+", raw)
    if not m:
        return None  # newer ids are opaque: only Google can resolve them
    # The URL is a length-prefixed protobuf field; the byte before it says how long it is.
    start = m.start()
    length = raw[start - 1] if start and raw[start - 1] < 0x80 else len(m.group(0))
    return _absolute(raw[start:start + length].decode("ascii", "replace"))


def _absolute(value: str) -> str | None:
    value = value.strip()
    return value if re.match(r"^https?://[^/\s]", value, re.I) else None


def _normalise_escapes(s: str, safe: str) -> str:
    """Upper-case %xx, decode escaped unreserved characters, escape what must be escaped."""

    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    s = _PCT.sub(fix, s)
    # A '%' not starting a valid escape is itself escaped, so the result is stable.
    s = re.sub(r"%(?![0-9A-F]{2})", "%25", s)
    return quote(s, safe=safe)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _host(parts_netloc: str, hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        return f"[{host}]"
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    return host


def _query(query: str) -> str:
    # Raw non-ASCII is escaped as UTF-8 first (as browsers do); then escapes are decoded and
    # re-encoded byte for byte (latin-1), so an escape that is not UTF-8 survives unchanged.
    query = quote(query, safe="".join(chr(i) for i in range(33, 127)))
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True, encoding="latin-1")
             if not is_tracking_param(k, v)]
    pairs.sort()
    return urlencode(pairs, quote_via=quote, safe="-._~!$'()*,;:@/?", encoding="latin-1")


def canonical_url(url: str) -> str:
    """One spelling per article URL: unwrapped, normalised, without tracking parameters.

    Lower-case scheme and host (IDNA), default port, userinfo and fragment dropped (a ``#!``
    route is kept: it selects content), dot segments resolved, escapes normalised, query
    parameters sorted with tracking parameters removed. Non-HTTP URLs come back stripped only.
    """
    url = unwrap_redirect(url.strip())
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return url
    netloc = _host(parts.netloc, parts.hostname)
    if port and _DEFAULT_PORTS[scheme] != port:
        netloc = f"{netloc}:{port}"
    path = _remove_dot_segments(_normalise_escapes(parts.path or "/", _PATH_SAFE))
    fragment = _normalise_escapes(parts.fragment, _PATH_SAFE + "?#") if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, netloc, path, _query(parts.query), fragment))


def site_of(url: str) -> str:
    """The registrable domain (``bbc.co.uk`` for ``news.bbc.co.uk``); the host when it has none."""
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""
    if not host:
        return ""
    fld = tld.get_fld(host, fix_protocol=True, fail_silently=True)
    return str(fld) if fld else host


def same_site(a: str, b: str) -> bool:
    sa = site_of(a)
    return bool(sa) and sa == site_of(b)


def preferred_url(link: str, *page_urls: str | None) -> str:
    """The canonical URL to store: the page's rel=canonical / og:url when it is on the link's
    site and names an article (not the home page), else the link itself; canonicalised."""
    base = canonical_url(link)
    base_path = urlsplit(base).path
    for candidate in page_urls:
        if not candidate:
            continue
        cand = canonical_url(candidate)
        if not cand.startswith(("http://", "https://")) or not same_site(cand, base):
            continue
        if urlsplit(cand).path in ("", "/") and base_path not in ("", "/"):
            continue  # a rel=canonical pointing at the home page is a site bug
        return storable_url(cand)  # a page may declare a hostile rel=canonical
    return storable_url(base)
