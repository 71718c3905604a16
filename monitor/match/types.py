"""The typed interface between the match stage and the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    speaker: str | None = None


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    hits: tuple[Hit, ...]
    statements: tuple[Statement, ...] = field(default_factory=tuple)

    @property
    def speaker(self) -> str | None:
        return next((s.speaker for s in self.statements if s.speaker), None)
