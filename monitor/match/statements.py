"""Which sentence an alert quotes: the one carrying the matched clauses, in the speaker's words.

The engine hands over every sentence (or adjacent pair, or the sentences a NEAR spans) holding
evidence, with the set of the rule's top-level clauses it holds; ``rank`` orders them:

1. body before headline: the headline is quoted only when the body has no matching sentence
   (and a body paragraph that repeats the headline, as pages with the title in ``<h1>`` do, is
   no body statement);
2. more distinct matched clauses first (for ``A AND (B OR C)``, a sentence with A and B beats
   one with A only); a pair of adjacent sentences counts only when it holds more than either;
3. a higher similarity (the meaning engine's ``about(...)`` clauses supply it per sentence);
4. more distinct matched words (for ``@kazakhstan NEAR/15 (mediator OR "good services")``, the
   sentence with Kazakhstan, mediator and "good services" beats one with Kazakhstan and mediator);
5. the speaker's own words (a direct quotation holding the matched words) before a paraphrase;
6. one sentence before two, then text order.

Who said it is ``monitor.match.speakers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import regex as re

from monitor.match.speakers import quotations

__all__ = ["Candidate", "is_direct", "rank"]

@dataclass(frozen=True)
class Candidate:
    """A sentence or run of sentences of one field that could be quoted."""

    field: int  # 0 title, 1 body
    first: int  # sentence indices, inclusive
    last: int
    start: int  # character offsets
    end: int
    clauses: frozenset[int]  # indices of the rule's top-level clauses it holds
    spans: tuple[tuple[int, int], ...]  # matched words, character offsets
    direct: bool = False
    terms: int = 0  # distinct matched words (case-folded): more of the rule's words, a fuller quote


def is_direct(text: str, start: int, end: int, spans: tuple[tuple[int, int], ...]) -> bool:
    """Whether matched words of text[start:end] sit inside a quotation of some length (the
    speaker's own words, not scare quotes around a term like 'good services')."""
    ps = text.rfind("\n", 0, start) + 1
    pe = text.find("\n", end)
    pe = len(text) if pe < 0 else pe
    for a, b in quotations(text, ps, pe):
        inner = text[a + 1:b]
        long_enough = len(inner.split()) >= 4 or len(re.findall(r"\p{Han}", inner)) >= 8
        if long_enough and b > start and a < end and any(a < x and y <= b for x, y in spans):
            return True
    return False


def rank(cands: list[Candidate], similarity: Mapping[tuple[int, int], float] | None = None) -> list[Candidate]:
    """Candidates best first (see the module docstring); the headline only without a body one."""
    sim = similarity or {}
    body = [c for c in cands if c.field == 1]
    pool = body or cands

    def score(c: Candidate) -> tuple[int, float, int, int, int, int]:
        s = max((sim.get((c.field, k), 0.0) for k in range(c.first, c.last + 1)), default=0.0)
        return (-len(c.clauses), -s, -c.terms, -int(c.direct), c.last - c.first, c.start)

    return sorted(pool, key=score)
