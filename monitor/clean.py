"""Text and links made safe to store and to show, whatever a feed or page sent.

A leaf module (imports nothing from monitor) because every stage needs it: parse cleans what it
hands on, the store cleans every parameter it writes as a last gate.

- PostgreSQL refuses NUL in text and both backends refuse lone UTF-16 surrogates (a JSON feed's
  ``"\\ud800"``, an HTML ``&#xD800;``): one such character in a title used to fail the whole
  transaction, and then every later poll of the same feed. ``clean_text`` removes NUL, joins
  surrogate pairs and turns a lone surrogate into U+FFFD.
- Only ``http(s)`` links are articles or images: ``javascript:``, ``data:``, ``file:`` or
  ``ftp:`` in an alert's ``href`` is an attack on its reader, not a link (``web_url``).
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_WEB = re.compile(r"^https?://[^\s/?#]", re.I)


def _join_pair(m: re.Match[str]) -> str:
    return m.group(0).encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def clean_text(text: str) -> str:
    """``text`` without NUL characters and lone surrogates (which no database stores)."""
    if not _UNSTORABLE.search(text):
        return text
    text = _PAIR.sub(_join_pair, text.replace("\x00", ""))
    return _UNSTORABLE.sub("\ufffd", text)


def web_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None."""
    if url and _WEB.match(url.strip()):
        return clean_text(url.strip())
    return None
