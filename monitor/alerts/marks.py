"""The small pieces of alert content that the channels and the config checks use without
rendering anything: the template keys, a delivery's stable id and the highlighting of spans.

Kept apart from ``monitor.alerts.render`` (which builds on the pydantic payload models and
Jinja2) so that importing the channel types for their config checks (``check-config``, every
CLI command that loads a config) does not import pydantic: ~70 ms of CPU before issue 15.
"""

from __future__ import annotations

import hashlib
from typing import Any

KINDS = ("alert", "notice", "digest")
PARTS = ("subject", "text", "html")
# Channel keys that override a default template: "subject", "text", "html" for alerts;
# "digest_subject", ... and "notice_subject", ... for the other kinds.
TEMPLATE_KEYS = {p for p in PARTS} | {f"{k}_{p}" for k in ("digest", "notice") for p in PARTS}


def stable_id(key: str) -> str:
    """An opaque, stable id for a delivery key: safe in headers, URLs and Message-IDs."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def marked(text: str, spans: Any, open_: str, close: str, escape: Any = None) -> str:
    """``text`` with each highlighted span wrapped in open_/close (overlaps are skipped)."""
    esc = escape or (lambda s: s)
    out, pos = [], 0
    for start, end in sorted((int(a), int(b)) for a, b in spans or []):
        if start < pos:
            continue
        out.append(esc(text[pos:start]))
        out.append(open_ + esc(text[start:end]) + close)
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)
