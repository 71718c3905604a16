"""Alert content: the render context and the Jinja2 templates (defaults and per-channel overrides).

The context is built from the alert's payload, frozen at match time, so a retry renders the same
message; only ``also_reported_by`` is looked up when the message is built (other outlets may
have printed the story since). Templates from the config are compiled and test-rendered against
a sample context when the config is loaded, so a broken template is a config error, never a
crash at 3 a.m.
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from monitor.alerts.marks import marked, stable_id
from monitor.alerts.payload import (
    DigestItem,
    DigestPayload,
    MatchPayload,
    NoticePayload,
    StatementPayload,
    parse_payload,
)
from monitor.alerts.templates import Templates
from monitor.clean import web_url
from monitor.util import iso_with_offset

log = logging.getLogger(__name__)


def _statement(s: StatementPayload) -> dict[str, Any]:
    spans = [list(h) for h in s.highlights]
    return {
        # ``speaker`` is what alerts show: the entity's display name with the role as written
        # ("Tokayev — President of Kazakhstan"); ``speaker_written`` the article's own words.
        "text": s.text, "speaker": s.speaker_display or s.speaker,
        "speaker_written": s.speaker, "speaker_entity": s.speaker_entity,
        "highlights": spans, "field": s.field,
        "marked": marked(s.text, spans, "*", "*"),
        "html": Markup(marked(s.text, spans, "<mark>", "</mark>", escape=html.escape)),
    }


@dataclass(frozen=True)
class AlertMessage:
    """Everything a channel needs, decoupled from the database rows."""

    alert_id: int
    delivery_key: str
    payload: MatchPayload | DigestPayload | NoticePayload
    also_reported_by: tuple[str, ...] = ()
    thread_root_key: str | None = None  # delivery key of the first message on this story

    @classmethod
    def from_payload(cls, alert_id: int, delivery_key: str,
                     payload: Mapping[str, Any] | MatchPayload | DigestPayload | NoticePayload,
                     also_reported_by: tuple[str, ...] | list[str] = ()) -> AlertMessage:
        """From a stored payload (``alert.payload``) or a payload model."""
        typed = parse_payload(payload) if isinstance(payload, Mapping) else payload
        return cls(alert_id=alert_id, delivery_key=delivery_key, payload=typed,
                   also_reported_by=tuple(also_reported_by))

    @property
    def match(self) -> MatchPayload | None:
        return self.payload if isinstance(self.payload, MatchPayload) else None

    @property
    def kind(self) -> str:
        k = self.payload.kind
        return "alert" if k == "match" else k

    @property
    def delivery_id(self) -> str:
        return stable_id(self.delivery_key)

    @property
    def rule(self) -> str:
        return self.match.rule if self.match else ""

    @property
    def title(self) -> str:
        if isinstance(self.payload, NoticePayload):
            return self.payload.subject
        return self.match.title if self.match else ""

    @property
    def url(self) -> str:
        """The article's link; only http(s) ever reaches a template or a chat message."""
        return web_url(self.match.url) or "" if self.match else ""

    @property
    def outlet(self) -> str:
        return self.match.outlet if self.match else ""

    @property
    def published(self) -> str | None:
        return self.match.published if self.match else None

    @property
    def statements(self) -> list[dict[str, Any]]:
        return [_statement(s) for s in self.match.statements] if self.match else []

    def _speaker_entity(self) -> str | None:
        """The configured entity of the alert's speaker: the payload's own (set since it has
        one), else that of the first statement with a speaker as written."""
        m = self.match
        if m is None:
            return None
        if "speaker_entity" in m.model_fields_set:
            return m.speaker_entity
        return next((s.speaker_entity for s in m.statements if s.speaker), None)

    def context(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """The variables templates see (documented in the README); times shown in ``tz``."""
        ctx: dict[str, Any] = {"kind": self.kind, "alert_id": self.alert_id,
                               "delivery_id": self.delivery_id, "delivery_key": self.delivery_key}
        p = self.payload
        if isinstance(p, DigestPayload):
            ctx.update(digest_context(p.items, tz))
            return ctx
        if isinstance(p, NoticePayload):
            ctx.update(subject=p.subject, text=p.text)
            return ctx
        statements = self.statements
        ctx.update(
            rule=self.rule, title=self.title, url=self.url, outlet=self.outlet,
            published=human_time(self.published, tz), published_iso=self.published, statements=statements,
            updated=human_time(p.updated, tz) if p.updated else None,
            quote=statements[0]["text"] if statements else None,
            speaker=p.speaker_display or p.speaker or next((s["speaker"] for s in statements if s["speaker"]), None),
            speaker_entity=self._speaker_entity(),
            terms=list(p.terms),
            also_reported_by=list(self.also_reported_by),
        )
        return ctx

    @property
    def subject(self) -> str:
        return default_templates().render(self, "subject")

    def as_json(self, templates: Templates | None = None) -> dict[str, Any]:
        """The webhook body: stable field names (documented in the README)."""
        base: dict[str, Any] = {"kind": self.kind, "alert_id": self.alert_id,
                                "delivery_id": self.delivery_id, "delivery_key": self.delivery_key,
                                "subject": (templates or default_templates()).render(self, "subject")}
        p = self.payload
        if isinstance(p, DigestPayload):
            base.update(count=len(p.items), items=[_plain_item(i) for i in p.items])
            return base
        if isinstance(p, NoticePayload):
            base["text"] = p.text
            return base
        # From the payload's statements themselves: ``statements`` (their render context, with
        # the highlights marked up twice) cost more than the rest of the body, and was made again
        # for each field below (issue 15).
        said = p.statements
        base.update({
            "rule": self.rule, "title": self.title, "url": self.url, "outlet": self.outlet,
            "published": iso_with_offset(self.published),
            "statements": [s.as_json() for s in said],
            "quote": said[0].text if said else None,
            # As written in the article, and the configured entity it names (or null).
            "speaker": p.speaker or next((s.speaker for s in said if s.speaker), None),
            "speaker_entity": self._speaker_entity(),
            "speaker_name": p.speaker_display or p.speaker
            or next((s.speaker_display or s.speaker for s in said if s.speaker_display or s.speaker), None),
            "terms": list(p.terms),
            "also_reported_by": list(self.also_reported_by),
            "updated": iso_with_offset(p.updated) if p.updated else None,
        })
        return base


def _plain_item(item: DigestItem) -> dict[str, Any]:
    return {"rule": item.rule, "title": item.title, "url": web_url(item.url) or "", "outlet": item.outlet,
            "published": iso_with_offset(item.published),
            "statements": [s.as_json() for s in item.statements],
            "also_reported_by": list(item.also_reported_by)}


def digest_context(items: Sequence[DigestItem], tz: tzinfo | None = None) -> dict[str, Any]:
    """Group digest items by rule, then by story: one entry per story, reprints folded into
    ``also_reported_by`` so a story printed by ten outlets is one line, not ten."""
    groups: dict[str, dict[str, Any]] = {}
    for it in items:
        g = groups.setdefault(it.rule, {"rule": it.rule, "count": 0, "stories": {}})
        g["count"] += 1
        story_key = str(it.story or it.url)
        st = g["stories"].get(story_key)
        if st is None:
            st = g["stories"][story_key] = {
                "title": it.title, "url": web_url(it.url) or "", "outlet": it.outlet,
                "published": human_time(it.published, tz),
                "statements": [_statement(s) for s in it.statements],
                "also_reported_by": [],
            }
        others = [it.outlet] if st["outlet"] != it.outlet else []
        for o in [*others, *it.also_reported_by]:
            if o and o != st["outlet"] and o not in st["also_reported_by"]:
                st["also_reported_by"].append(o)
    out = [{**g, "stories": list(g["stories"].values())} for g in groups.values()]
    return {"count": len(items), "groups": out, "rules": [g["rule"] for g in out]}


def _sample_context(kind: str) -> dict[str, Any]:
    if kind == "digest":
        items = (DigestItem.model_validate(SAMPLE_PAYLOAD.model_dump(exclude_unset=True)),)
        return AlertMessage(0, "digest:sample", DigestPayload(items=items)).context()
    if kind == "notice":
        return AlertMessage(0, "notice:sample", NoticePayload(subject="s", text="t")).context()
    return AlertMessage(0, "sample:1:ch", SAMPLE_PAYLOAD, ("Another Outlet",)).context()


SAMPLE_PAYLOAD = MatchPayload(
    rule="sample", title="Sample title", url="https://example.org/a", outlet="Example",
    published="2025-01-01T00:00:00+00:00", article_id=1,
    statements=(StatementPayload(text="A sample statement.", highlights=((2, 8),), speaker="Someone"),),
)


@functools.cache
def default_templates() -> Templates:
    """The default templates, compiled on first use rather than at import (check-config imports
    this module for the template keys and checks, and needs no compiled defaults)."""
    return Templates()


if TYPE_CHECKING:
    DEFAULT_TEMPLATES: Templates


def __getattr__(name: str) -> object:
    """``DEFAULT_TEMPLATES``: the same object as ``default_templates()``."""
    if name == "DEFAULT_TEMPLATES":
        return default_templates()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def render_text(msg: AlertMessage) -> str:
    return default_templates().render(msg, "text")


def render_html(msg: AlertMessage) -> str:
    return default_templates().render(msg, "html")


def human_time(iso: str | None, tz: tzinfo | None = None) -> str:
    if not iso:
        return ""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if tz is not None and when.tzinfo is not None:
        when = when.astimezone(tz)
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()
