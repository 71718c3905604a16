"""The typed interface between the match stage and the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """What a rule sees of an article. Offsets in hits refer to ``title`` and ``body``."""

    title: str
    body: str
    url: str = ""
    site: str = ""  # the article's domain, for site:
    source: str = ""  # the source's configured name, for source:
    lang: str | None = None
    author: str = ""
    # The article's sentence-embedding vector (monitor.embed), when the config uses about().
    vector: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Hit:
    """One matched word or phrase occurrence."""

    field: str  # "title" or "body"
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Statement:
    """The sentence(s) holding the evidence, with highlights relative to ``text``."""

    field: str
    start: int
    end: int
    text: str
    highlights: tuple[tuple[int, int], ...] = ()
    speaker: str | None = None  # as written: "президент республики Касым-Жомарт Токаев"
    speaker_entity: str | None = None  # the configured entity the speaker is, if any
    speaker_display: str | None = None  # normalised: "Tokayev — президент республики"


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    hits: tuple[Hit, ...]
    statements: tuple[Statement, ...] = field(default_factory=tuple)

    @property
    def speaker(self) -> str | None:
        """Who made the statement: the first statement's speaker the article names."""
        return next((s.speaker for s in self.statements if s.speaker), None)

    @property
    def speaker_entity(self) -> str | None:
        """The configured entity of that speaker (None for a speaker who is no entity)."""
        return next((s.speaker_entity for s in self.statements if s.speaker), None)

    @property
    def speaker_display(self) -> str | None:
        """That speaker normalised: the entity's display name with the role as written."""
        return next((s.speaker_display for s in self.statements if s.speaker), None)

    @property
    def field(self) -> str | None:
        """Where the evidence is: the first statement's field ("title" or "body")."""
        if self.statements:
            return self.statements[0].field
        return self.hits[0].field if self.hits else None

    @property
    def quote(self) -> str | None:
        """The first statement's text, as alerts quote it."""
        return self.statements[0].text if self.statements else None
