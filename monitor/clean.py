"""Text and links made safe to store and to show, whatever a feed or page sent.

A leaf module (imports nothing from monitor) because every stage needs it: parse cleans what it
hands on, the store cleans every parameter it writes as a last gate.

- PostgreSQL refuses NUL in text and both backends refuse lone UTF-16 surrogates (a JSON feed's
  ``"\\ud800"``, an HTML ``&#xD800;``): one such character in a title used to fail the whole
  transaction, and then every later poll of the same feed. ``clean_text`` removes NUL, joins
  surrogate pairs and turns a lone surrogate into U+FFFD.
- Only ``http(s)`` links are articles or images: ``javascript:``, ``data:``, ``file:`` or
  ``ftp:`` in an alert's ``href`` is an attack on its reader, not a link (``web_url``).
- The config's secrets (``Config.secrets``: passwords, tokens, keys, a channel's URL and headers,
  an ``${ENV}`` value whose key or variable name says it is one; the rule is the loader's,
  ``monitor.config.loader``): ``redact`` hides each as a substring, in the forms it gets printed
  in (stripped of a trailing newline, JSON- or repr-escaped, percent-encoded) and, for URLs, the
  parts a server echoes back (a Slack webhook's path holds its token; a 404 page repeats the
  path). Logs, errors stored in the database and CLI output all pass through it. Only secrets:
  an ordinary value (a host, a user name) hidden as a substring stars every line that mentions it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_WEB = re.compile(r"^https?://[^\s/?#]", re.I)
# A tag, with no other "<" inside it: linear on a hostile "<<<<..." without ">", where
# ``<[^>]*>`` scans to the end from every "<" (quadratic: 0.3 s for 60,000, minutes for a MB).
_TAG = re.compile(r"<[^<>]*>")


def tags_to_spaces(markup: str) -> str:
    """``markup``'s text without parsing it: each tag a space, entities decoded. For a quick
    look at its words where a parser is too slow (deep nesting) or not worth loading."""
    return html.unescape(_TAG.sub(" ", markup))


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


MIN_SECRET = 4  # shorter values cannot be hidden without hiding ordinary words
_secrets: tuple[str, ...] = ()


def secret_forms(value: str) -> set[str]:
    """``value`` as it may appear in output: as is, stripped, escaped, and its URL parts."""
    forms = {value, value.strip()}
    for v in list(forms):
        forms |= {json.dumps(v)[1:-1], repr(v)[1:-1], quote(v, safe=""), quote(v)}
        forms.update(line.strip() for line in v.splitlines())
    stripped = value.strip()
    if re.match(r"^[a-z][a-z0-9+.-]*://", stripped, re.I):
        try:
            parts = urlsplit(stripped)
            forms.add(stripped.split("://", 1)[1])
            if parts.password:
                forms.add(parts.password)
            if len(parts.path) > 1:
                forms.add(parts.path)
                forms.update(seg for seg in parts.path.split("/") if len(seg) >= 12)
            if parts.query:
                forms.add(parts.query)
                forms.update(v for _, v in parse_qsl(parts.query) if len(v) >= 8)
        except ValueError:
            pass
    return {f for f in forms if len(f) >= MIN_SECRET}


def secret_set(values: Iterable[str]) -> tuple[str, ...]:
    """Every printable form of ``values``, longest first (a secret containing another is hidden
    whole)."""
    forms: set[str] = set()
    for v in values:
        if v and len(v.strip()) >= MIN_SECRET:
            forms |= secret_forms(v)
    return tuple(sorted(forms, key=len, reverse=True))


def set_secrets(values: Iterable[str]) -> None:
    """The process's secrets from now on (the config's ``secrets``; again on reload)."""
    global _secrets
    _secrets = secret_set(values)


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    for s in _secrets if secrets is None else secrets:
        if s in text:
            text = text.replace(s, "***")
    return text
