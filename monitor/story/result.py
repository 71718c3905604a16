"""What ``monitor.story.prints`` hands on: a light module, so the process that receives the
extraction workers' results (their pickles name these classes) loads nothing to compute them."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.story.events import Signature


@dataclass(frozen=True)
class Paragraphs:
    """A text's non-empty paragraphs as story assignment needs them, whatever boilerplate is
    dropped from them later (``prints.paragraph_prints``). Arrays: a few KB a text, in a cache or a pickle."""

    keys: array[int]  # "q": each paragraph's key (``prints.key`` of its words), in order
    counts: array[int]  # "I": its words
    inner: array[int]  # "I": the shingles inside each paragraph, one paragraph after the other
    bounds: array[int]  # "I": where each paragraph's shingles in ``inner`` end
    ends: str  # a line a paragraph: its words (a long one's first and last, a tab between)


@dataclass(frozen=True)
class TextPrints:
    """An article's text and headline as story assignment sees them before the database is
    asked anything (``prints.text_prints``), computed where its page was extracted."""

    text: str  # the body they were computed on (the same object as the extracted text, once unpickled)
    title: str  # the headline assumed
    paragraphs: Paragraphs
    shingles: array[int]  # the body's without the headline (and no boilerplate dropped) ...
    words: int  # ... the words they were taken from ...
    bands: tuple[int, ...]  # ... and their LSH bands
    content_hash: str | None  # ``content.content_hash``; None for an empty text
    signature: Signature | None = None  # names and figures, when event stories are on
