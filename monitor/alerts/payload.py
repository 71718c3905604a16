"""The alert payload: what the outbox hands to delivery, typed.

An alert's facts are frozen when it is written (``alert.payload``, JSON), so a retry sends the
same message. The outbox writes one of these models and delivery reads the same model back, so
a field renamed on one side is a type error on the other instead of a silent ``None`` in an
alert. Payloads are stored with the keys that were set (``dump_payload``), so alerts written by
an older version read back exactly as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from monitor.util import plural

if TYPE_CHECKING:
    from monitor.match.types import Statement


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class StatementPayload(_Frozen):
    """One quoted statement: its text, the matched words in it, and who said it."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()  # character spans within ``text``
    speaker: str | None = None  # as the article writes it
    speaker_entity: str | None = None  # the configured entity the speaker is, if any
    speaker_display: str | None = None  # normalised: the entity's name with the role as written
    field: str | None = None  # "title" or "body"

    @classmethod
    def of(cls, s: Statement) -> StatementPayload:
        """A statement of a match, as an alert stores it."""
        return cls(text=s.text, highlights=s.highlights, speaker=s.speaker, speaker_entity=s.speaker_entity,
                   speaker_display=s.speaker_display, field=s.field)

    def as_json(self) -> dict[str, Any]:
        """The statement as every JSON output carries it (webhook body, digest items, ``alerts``,
        ``test-rule`` and ``backtest --json``): ``highlights`` are ``[start, end]`` character
        offsets into ``text``, so ``text[start:end]`` is a highlighted word or phrase."""
        return {"text": self.text, "highlights": [[a, b] for a, b in self.highlights], "field": self.field,
                "speaker": self.speaker, "speaker_entity": self.speaker_entity,
                "speaker_name": self.speaker_display or self.speaker}


class MatchPayload(_Frozen):
    """A rule matched an article (kind "match")."""

    kind: Literal["match"] = "match"
    rule: str = ""
    article_id: int | None = None
    title: str = ""
    url: str = ""
    outlet: str = ""
    published: str | None = None  # ISO 8601, UTC
    statements: tuple[StatementPayload, ...] = ()
    speaker: str | None = None
    speaker_entity: str | None = None
    speaker_display: str | None = None
    terms: tuple[str, ...] = ()
    # ISO 8601, UTC: the article was read again then, its feed entry having changed, and the
    # statements are what it says now (README "Updated articles"); None for a first reading.
    updated: str | None = None


class DigestItem(MatchPayload):
    """A held match alert inside a digest, with its story and the other outlets known then."""

    story: str | None = None  # "story:<id>" (or the alert key): reprints fold into one entry
    also_reported_by: tuple[str, ...] = ()


class DigestPayload(_Frozen):
    """Held alerts of one channel, sent together (kind "digest")."""

    kind: Literal["digest"] = "digest"
    channel: str = ""
    due_at: str | None = None
    items: tuple[DigestItem, ...] = ()


class NoticePayload(_Frozen):
    """A message that is no rule's match: a source broke or recovered (kind "notice"), or
    ``monitor alerts test-channel`` (kind "test")."""

    kind: Literal["notice", "test"] = "notice"
    subject: str = ""
    text: str = ""


AlertPayload = Annotated[MatchPayload | DigestPayload | NoticePayload, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[MatchPayload | DigestPayload | NoticePayload] = TypeAdapter(AlertPayload)


def parse_payload(data: Mapping[str, Any]) -> MatchPayload | DigestPayload | NoticePayload:
    """A stored payload as its model (a payload without a kind is a match, as it always was)."""
    return _ADAPTER.validate_python({"kind": "match", **data})


def dump_payload(payload: MatchPayload | DigestPayload | NoticePayload) -> dict[str, Any]:
    """The JSON stored in ``alert.payload``: the keys that were set, and the kind."""
    return {"kind": payload.kind, **payload.model_dump(mode="json", exclude_unset=True)}


def headline(payload: MatchPayload | DigestPayload | NoticePayload) -> str | None:
    """One line naming an alert in listings: the article's title, the notice's subject, or the
    size of the digest."""
    if isinstance(payload, DigestPayload):
        return f"digest of {plural(len(payload.items), 'alert')}"
    return (payload.subject if isinstance(payload, NoticePayload) else payload.title) or None


def article_url(payload: MatchPayload | DigestPayload | NoticePayload) -> str | None:
    return payload.url if isinstance(payload, MatchPayload) else None
