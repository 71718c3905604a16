"""``about("...")`` clauses: a rule that matches a statement by meaning, in any language.

An about clause matches an article when one of its sentences (or its title) is at least
``threshold`` similar (cosine of the bundled model's vectors, monitor.embed) to the clause's
statement or to one of the rule's ``examples``, and closer to those than to every
``counterexample``. Scoring is done in two steps so that 1,000 about rules stay cheap:

1. the article vector (computed once at ingest) against every clause: an article far from the
   clause (below ``threshold - GATE_MARGIN``) cannot hold a sentence close to it and is dropped;
2. the rest get their sentences embedded once (shared by every rule) and scored.

The sentence scored highest is the statement an alert quotes (with its speaker). Everything the
model touches is imported on first use, so rules without about() never load it.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from monitor.match.text import split_sentences

if TYPE_CHECKING:
    import numpy as np

    from monitor.embed import Embedder
    from monitor.match.evaluate import DocIndex

# Chosen on our own held-out sentences (bench/data/meaning_pairs.json, ten statements in ten
# languages), never on ../shared/data/stories: `python -m bench.about_threshold` prints the sweep.
DEFAULT_THRESHOLD = 0.55
# An article whose own vector is this far below a clause's threshold is not scored sentence by
# sentence (bench/about_cost.py measures that no matching article is lost to the gate).
GATE_MARGIN = 0.35
MAX_ABOUT_CHARS = 400  # one or two sentences: longer texts blur what the rule is about
MIN_UNIT_CHARS = 12
_QUOTE_MARKS = re.compile(r"[\"“”«»„「」『』]")
MAX_QUOTED = 2  # "the sentence (or two) closest in meaning"
# Once an article matches, its quote is chosen among sentences down to this much below the
# threshold, body before title, a quotation counting this much more than a paraphrase: a speaker's
# own words run longer than the reporter's summary of them and score a little lower, and the alert
# must quote the speaker.
QUOTE_SLACK = 0.10  # shorter "sentences" (datelines, bylines) are not statements


@dataclass(eq=False)
class Meaning:
    """One about clause made ready: its vectors and its threshold."""

    text: str
    positives: np.ndarray  # the statement and the examples, (k, d)
    counter: np.ndarray  # the counterexamples, (m, d)
    threshold: float
    origin: str  # "default", "calibrated" (examples/counterexamples) or "set" (about("...", t))

    @property
    def gate(self) -> float:
        return self.threshold - GATE_MARGIN


@dataclass(frozen=True)
class AboutScore:
    """How an article scored against one about clause (for alerts, test-rule and backtest)."""

    score: float  # best sentence's similarity (or the article's, when the gate stopped it)
    threshold: float
    matched: bool
    field: int = 1  # 0 title, 1 body
    start: int = 0
    end: int = 0
    sentence: str = ""
    gated: bool = False  # the article vector was too far: no sentence was scored
    countered: bool = False  # the best sentence is closer to a counterexample
    # The sentences to quote, best first (body before title): up to MAX_QUOTED above threshold.
    quoted: tuple[tuple[int, int, int], ...] = ()
    quoted_rank: tuple[float, ...] = ()  # their similarity, quotations counting QUOTE_SLACK more


def build_meaning(text: str, examples: Sequence[str] = (), counterexamples: Sequence[str] = (),
                  threshold: float | None = None) -> Meaning:
    """``_build_meaning``, once per clause and model: the daemon's start prepares its clauses on
    the thread that loads the model (``monitor.embed.load_in_background``), and the rules it then
    compiles (and a reload with the same clauses) reuse them. A Meaning is never changed. One
    build at a time: a second caller of the same clause waits for the first and takes its result."""
    from monitor.embed import get_embedder

    emb = get_embedder()
    with _BUILDING:  # the model object is the key's first part (hashed by identity)
        return _build_meaning(cast(Hashable, emb), text, tuple(examples), tuple(counterexamples), threshold)


_BUILDING = threading.Lock()


@functools.lru_cache(maxsize=256)
def _build_meaning(model: Hashable, text: str, examples: tuple[str, ...], counterexamples: tuple[str, ...],
                   threshold: float | None) -> Meaning:
    """Embed a clause's statement, examples and counterexamples, and settle its threshold.

    An explicit ``about("...", t)`` wins. Else the default threshold, calibrated by the
    examples: an example that would score below it (each is scored leave-one-out, against the
    statement and the other examples, as an article's sentence would be) lowers it to just under
    that example's score, never below CALIBRATION_FLOOR. Counterexamples do not move the
    threshold: a sentence closer to a counterexample than to the statement and every example
    is not about it, whatever its score (see ``score``).
    """
    import numpy as np

    emb = cast("Embedder", model)
    pos = emb.embed([text, *examples])
    neg = emb.embed(list(counterexamples)) if counterexamples else np.zeros((0, emb.dim), np.float32)
    if threshold is not None:
        return Meaning(text, pos, neg, float(threshold), "set")
    thr = calibrate(pos, neg)
    return Meaning(text, pos, neg, thr, "calibrated" if thr != DEFAULT_THRESHOLD else "default")


CALIBRATION_FLOOR = 0.40


def calibrate(pos: np.ndarray, neg: np.ndarray) -> float:
    """The threshold for these examples (pos[0] is the statement; see build_meaning)."""
    import numpy as np

    if len(pos) < 2:
        return DEFAULT_THRESHOLD
    sims = pos @ pos.T
    np.fill_diagonal(sims, -2.0)
    p_sim = sims.max(axis=1)[1:]
    if len(neg):
        # Examples closer to a counterexample are decided by that rule, not by the threshold.
        n_sim = (pos[1:] @ neg.T).max(axis=1)
        p_sim = p_sim[p_sim > n_sim]
    if not len(p_sim) or float(p_sim.min()) >= DEFAULT_THRESHOLD:
        return DEFAULT_THRESHOLD
    return max(CALIBRATION_FLOOR, round(float(p_sim.min()) - 0.01, 3))


@dataclass
class SentenceVectors:
    """An article's sentences (title first) and their vectors: embedded once per article."""

    units: list[tuple[int, int, int]] = field(default_factory=list)  # (field, start, end)
    vectors: Any = None


def _units(ix: DocIndex) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    title = ix.doc.title.strip()
    if len(title) >= MIN_UNIT_CHARS:
        out.append((0, 0, len(ix.doc.title)))
    body = ix.doc.body
    for a, b in split_sentences(body):
        if len(body[a:b].strip()) >= MIN_UNIT_CHARS:
            out.append((1, a, b))
    return out


def sentence_vectors(ix: DocIndex) -> SentenceVectors:
    if ix.about_sentences is None:
        from monitor.embed import get_embedder

        units = _units(ix)
        texts = [(ix.doc.title, ix.doc.body)[f][a:b] for f, a, b in units]
        ix.about_sentences = SentenceVectors(units, get_embedder().embed(texts))
    return ix.about_sentences


def article_vector(ix: DocIndex) -> Any:
    """The article vector ingest computed (or the stored one), else computed now."""
    if ix.article_vector is None:
        vec = ix.doc.vector
        if vec is None:
            from monitor.embed import article_text, get_embedder

            vec = get_embedder().embed([article_text(ix.doc.title, ix.doc.body)])[0]
        ix.article_vector = vec
    return ix.article_vector


def score(meaning: Meaning, ix: DocIndex) -> AboutScore:
    """The article's best sentence for this clause (cached per article and clause)."""
    key = id(meaning)
    hit = ix.about_scores.get(key)
    if hit is not None:
        return hit
    if not ix.about_exhaustive:
        art = float((meaning.positives @ article_vector(ix)).max())
        if art < meaning.gate:
            res = AboutScore(art, meaning.threshold, False, gated=True)
            ix.about_scores[key] = res
            return res
    sv = sentence_vectors(ix)
    if not sv.units:
        res = AboutScore(0.0, meaning.threshold, False)
    else:
        raw = (sv.vectors @ meaning.positives.T).max(axis=1)
        sims = raw
        closer = None
        if len(meaning.counter):
            # A sentence closer to a counterexample than to the statement is not about it; and
            # an article whose closest sentence to any of them is a counterexample is about that.
            neg = (sv.vectors @ meaning.counter.T).max(axis=1)
            closer = neg >= raw
            if float(neg.max()) > float(raw.max()):
                closer[:] = True
            sims = raw - closer
        i = int(sims.argmax())
        # The quote: the best body sentence when it is close enough too (the title rarely says who
        # spoke); else the best unit wherever it is.
        body = [k for k, u in enumerate(sv.units) if u[0] == 1]
        if body and sv.units[i][0] == 0:
            j = max(body, key=lambda k: float(sims[k]))
            if sims[j] >= meaning.threshold:
                i = j
        f, a, b = sv.units[i]
        countered = bool(closer[i]) if closer is not None else False
        best = float(raw[i])
        # Body before title; by similarity, quoted speech counting QUOTE_SLACK more.
        texts = (ix.doc.title, ix.doc.body)
        rank = [float(sims[k]) + QUOTE_SLACK * bool(_QUOTE_MARKS.search(texts[u[0]][u[1]:u[2]]))
                for k, u in enumerate(sv.units)]
        order = sorted(range(len(sv.units)), key=lambda k: (sv.units[k][0] == 0, -rank[k]))
        chosen = [k for k in order if sims[k] >= meaning.threshold - QUOTE_SLACK][:MAX_QUOTED]
        quoted = tuple(sv.units[k] for k in chosen)
        res = AboutScore(best, meaning.threshold, best >= meaning.threshold and not countered, f, a, b,
                         (ix.doc.title, ix.doc.body)[f][a:b], countered=countered, quoted=quoted,
                         quoted_rank=tuple(rank[k] for k in chosen))
    ix.about_scores[key] = res
    return res
