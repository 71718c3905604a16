"""Canonical URLs, so the same article reached through different links is stored once."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|wt_mc|wt_zmc|xtor|ocid|cmpid|smid|"
    r"_ga|_gl|mkt_tok|spm|ref_src|__twitter_impression|at_medium|at_campaign)$",
    re.I,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port or fragment, sorted query without trackers."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if port and _DEFAULT_PORTS.get(scheme) != port:
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    trailing = path.endswith("/")
    path = posixpath.normpath(unquote(path)) if path not in ("", "/") else "/"
    if trailing and not path.endswith("/"):
        path += "/"
    path = quote(path, safe="/:@!$&'()*+,;=-._~%")
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    query.sort()
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))
