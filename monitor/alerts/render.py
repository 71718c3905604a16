"""The default alert text: rule, title, outlet, time, link and the quoted statement."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AlertMessage:
    """Everything a channel needs, decoupled from the database rows."""

    alert_id: int
    delivery_key: str
    rule: str
    title: str
    url: str
    outlet: str
    published: str | None  # ISO 8601
    statements: list[dict[str, Any]] = field(default_factory=list)  # text, highlights, speaker, field
    speaker: str | None = None  # who made the (first) statement, when the article says so
    terms: list[str] = field(default_factory=list)  # the matched words as they appear

    @classmethod
    def from_payload(cls, alert_id: int, delivery_key: str, payload: dict[str, Any]) -> AlertMessage:
        return cls(alert_id=alert_id, delivery_key=delivery_key, rule=payload["rule"],
                   title=payload["title"], url=payload["url"], outlet=payload["outlet"],
                   published=payload.get("published"), statements=payload.get("statements", []),
                   speaker=payload.get("speaker"), terms=payload.get("terms", []))

    @property
    def subject(self) -> str:
        return f"[{self.rule}] {self.title}"

    def as_json(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id, "delivery_id": self.delivery_key, "rule": self.rule,
            "title": self.title, "url": self.url, "outlet": self.outlet, "published": self.published,
            "statements": [{"text": s["text"], "speaker": s.get("speaker"), "field": s.get("field"),
                            "highlights": s.get("highlights", [])} for s in self.statements],
            "speaker": self.speaker, "terms": self.terms,
            "quote": self.statements[0]["text"] if self.statements else None,
        }


def _marked(text: str, spans: list[list[int]] | list[tuple[int, int]], open_: str, close: str,
            escape: Any = None) -> str:
    esc = escape or (lambda s: s)
    out, pos = [], 0
    for start, end in sorted((int(a), int(b)) for a, b in spans):
        if start < pos:
            continue
        out.append(esc(text[pos:start]))
        out.append(open_ + esc(text[start:end]) + close)
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def render_text(msg: AlertMessage) -> str:
    lines = [f"Rule: {msg.rule}", f"{msg.title}", f"{msg.outlet}" + (f" · {msg.published}" if msg.published else ""), ""]
    for s in msg.statements:
        quoted = _marked(s["text"], s.get("highlights", []), "*", "*")
        lines.append(f"> {quoted}")
        if s.get("speaker"):
            lines.append(f"  — {s['speaker']}")
        lines.append("")
    lines.append(msg.url)
    return "\n".join(lines) + "\n"


def render_html(msg: AlertMessage) -> str:
    e = html.escape
    parts = [
        "<html><body style=\"font-family:sans-serif\">",
        f"<p style=\"color:#666\">Rule: <b>{e(msg.rule)}</b></p>",
        f"<h2 style=\"margin:0\"><a href=\"{e(msg.url, quote=True)}\">{e(msg.title)}</a></h2>",
        f"<p style=\"color:#666\">{e(msg.outlet)}" + (f" · {e(msg.published)}" if msg.published else "") + "</p>",
    ]
    for s in msg.statements:
        quoted = _marked(s["text"], s.get("highlights", []), "<mark>", "</mark>", escape=e)
        parts.append(f"<blockquote style=\"border-left:3px solid #ccc;padding-left:8px\">{quoted}")
        if s.get("speaker"):
            parts.append(f"<br><i>— {e(s['speaker'])}</i>")
        parts.append("</blockquote>")
    parts.append(f"<p><a href=\"{e(msg.url, quote=True)}\">{e(msg.url)}</a></p></body></html>")
    return "\n".join(parts)
