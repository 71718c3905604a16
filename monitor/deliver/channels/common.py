"""Shared by the chat channels: cutting text to a platform's limits, quoting a statement with its
highlights, and the HTTP channel base.

Each message is built in the platform's own format and within its documented limits; a long
statement is cut at a word boundary with an ellipsis *before* escaping, so a cut never splits
an entity (``&amp;``) or a tag, and markup from the article is always escaped.

With a ``text`` (or ``subject``) template override the channel sends the rendered template as
plain text (escaped for the platform) instead of its native layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from monitor.alerts.marks import marked
from monitor.deliver.base import channel_timeout, templates_for

if TYPE_CHECKING:
    from monitor.alerts.render import AlertMessage

ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return ELLIPSIS[:limit]
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip(" ,;:.-–—") + ELLIPSIS


def fit(render: Callable[[int], str], size: int, limit: int, measure: Callable[[str], int] = len) -> str:
    """The longest ``render(n)`` (n plain characters of the variable part) within ``limit``
    (binary search: escaping makes the rendered length grow unevenly with n)."""
    out = render(size)
    if measure(out) <= limit:
        return out
    lo, hi = 0, size  # render(lo) is assumed to fit, render(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(render(mid)) <= limit:
            lo = mid
        else:
            hi = mid
    return render(lo)


def quote_marked(s: Mapping[str, Any], n: int, open_: str, close: str, escape: Callable[[str], str]) -> str:
    """A statement cut to ``n`` characters, escaped, with its highlights (clipped to the cut)."""
    text = s["text"]
    short = cut(text, n)
    keep = len(short) - (1 if short.endswith(ELLIPSIS) and not text.endswith(ELLIPSIS) else 0)
    spans = [(a, min(b, keep)) for a, b in s.get("highlights", []) if a < keep]
    return marked(short, spans, open_, close, escape=escape)


def meta(ctx: Mapping[str, Any]) -> str:
    parts = [ctx.get("outlet") or "", ctx.get("published") or ""]
    return " · ".join(p for p in parts if p)


class HttpChannel:
    type = ""
    threads = False

    def __init__(self, name: str, opts: Mapping[str, Any]):
        self.name = name
        self.opts = dict(opts)
        self.timeout = channel_timeout(opts)
        self.templates = templates_for(opts)
        self.custom = any(k in opts for k in ("subject", "text"))

    def label(self) -> str:
        return f"{self.type} {self.name}"

    def subject(self, msg: AlertMessage) -> str:
        return self.templates.render(msg, "subject")

    def text(self, msg: AlertMessage) -> str:
        return self.templates.render(msg, "text").strip()
