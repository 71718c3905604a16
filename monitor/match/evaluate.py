"""Evaluate a query tree against one article, using a per-article word index.

An occurrence is ``(field, start, end, leaves)``: word indices [start, end) in field 0 (title)
or 1 (body), and the word ranges of the terms that make it up (for highlighting). The index is
built lazily, once per article, and shared by every rule evaluated on it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import Any, TypeVar

from monitor.match.query import About, And, Meta, Near, Node, Not, Or, Seq, W
from monitor.match.text import Tokens, cased_words, fold, split_sentences, tokens, words
from monitor.match.types import Document

T = TypeVar("T", bound=tuple[Any, ...])
Leaf = tuple[int, int, int]
Occ = tuple[int, int, int, tuple[Leaf, ...]]
FIELD_NAMES = ("title", "body")
_FIELD_INDEX = {"title": 0, "body": 1}
MAX_EVIDENCE = 500  # proximity pairs collected per clause for quoting


def plain_title_body(text: str) -> tuple[str, str]:
    """For plain-text inputs: the first non-empty line is the title, the rest the body."""
    lines = text.strip().splitlines()
    if not lines:
        return "", ""
    return lines[0].strip(), "\n".join(lines[1:]).strip()


class FieldIndex:
    """One field's words; positions, case-kept words and sentence numbers on first use."""

    __slots__ = ("text", "words", "_pos", "_sid", "_bounds", "_cased", "_cache")

    def __init__(self, text: str):
        self.text = text
        self.words = words(text)
        self._pos: dict[str, list[int]] | None = None
        self._sid: list[int] | None = None
        self._bounds: list[tuple[int, int]] | None = None
        self._cased: list[str] | None = None
        self._cache: dict[object, list[int]] = {}

    @property
    def pos(self) -> dict[str, list[int]]:
        if self._pos is None:
            d: dict[str, list[int]] = {}
            for i, w in enumerate(self.words):
                lst = d.get(w)
                if lst is None:
                    d[w] = [i]
                else:
                    lst.append(i)
            self._pos = d
        return self._pos

    @property
    def sentence_bounds(self) -> list[tuple[int, int]]:
        """(first word, last word) of every sentence, by sentence number."""
        if self._bounds is None:
            bounds: list[tuple[int, int]] = []
            for i, n in enumerate(self.sid):
                while len(bounds) < n:  # a sentence without words (e.g. "—")
                    bounds.append((i, i - 1))
                if n == len(bounds):
                    bounds.append((i, i))
                else:
                    bounds[n] = (bounds[n][0], i)
            self._bounds = bounds
        return self._bounds

    @property
    def cased(self) -> list[str]:
        if self._cased is None:
            self._cased = cased_words(self.text)
        return self._cased

    @property
    def sid(self) -> list[int]:
        """Sentence number of every word (words never straddle a sentence boundary)."""
        if self._sid is None:
            out: list[int] = []
            for n, (s, e) in enumerate(split_sentences(self.text)):
                out.extend([n] * len(words(self.text[s:e])))
            out.extend([out[-1] if out else 0] * (len(self.words) - len(out)))
            self._sid = out
        return self._sid

    def positions(self, w: W, ix: DocIndex) -> list[int]:
        """Sorted word indices where ``w`` is accepted."""
        if w.kind == "exact":
            if len(w.forms) == 1:
                return self.pos.get(w.stem, [])
            # The article's words (a set) against the forms: the smaller side is walked, not
            # an entity's thousand inflections and transliterations once per field.
            present = [f for f in w.forms.intersection(ix.uniq) if f in self.pos]
            if not present:
                return []
            if len(present) == 1:
                return self.pos[next(iter(present))]
            return sorted(i for f in present for i in self.pos[f])
        cached = self._cache.get(w)
        if cached is not None:
            return cached
        if w.kind == "cased":
            cased = self.cased
            res = [i for i in self.pos.get(fold(w.stem), []) if cased[i] == w.stem]
        else:
            pos = self.pos
            hit = [t for t in ix.starting_with(w.stem) if t in pos]
            if w.kind == "glob":
                assert w.regex is not None
                rx = w.regex
                hit = [t for t in hit if rx.fullmatch(t)]
            if not hit:
                res = []
            elif len(hit) == 1:
                res = self.pos[hit[0]]
            else:
                res = sorted(i for t in hit for i in self.pos[t])
        self._cache[w] = res
        return res


class DocIndex:
    """What the evaluator needs of a Document, computed once per article."""

    def __init__(self, doc: Document):
        self.doc = doc
        # No back-reference from the fields: no reference cycle, so an article's index is
        # freed as soon as it is done with, not at the next garbage collection.
        self.title = FieldIndex(doc.title)
        self.body = FieldIndex(doc.body)
        self.fields = (self.title, self.body)
        # Distinct words by stem, filled by the engine's Aho-Corasick pass for the stems its
        # rules use; other stems are looked up in the sorted words.
        self.stems: dict[str, list[str]] = {}
        self.stems_known: frozenset[str] = frozenset()
        self._sorted: list[str] | None = None
        # about() clauses (monitor.match.meaning): sentence vectors and scores, on first use.
        self.article_vector: Any = None
        self.about_sentences: Any = None
        self.about_scores: dict[int, Any] = {}
        self.about_exhaustive = False  # True: score every sentence (test-rule, backtest explain)

    def starting_with(self, stem: str) -> list[str]:
        """Distinct words (title and body) that start with ``stem``."""
        if stem in self.stems_known:
            return self.stems.get(stem, [])
        if self._sorted is None:
            self._sorted = sorted(self.uniq)
        srt = self._sorted
        i = bisect_left(srt, stem)
        out = []
        while i < len(srt) and srt[i].startswith(stem):
            out.append(srt[i])
            i += 1
        return out

    @cached_property
    def uniq(self) -> set[str]:
        """The article's distinct words (title and body)."""
        u = set(self.body.words)
        u.update(self.title.words)
        return u

    @cached_property
    def offsets(self) -> tuple[Tokens, Tokens]:
        """Title and body words with character offsets (for quoting matched rules only)."""
        return tokens(self.doc.title, self.title.words), tokens(self.doc.body, self.body.words)

    @cached_property
    def sentences(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return split_sentences(self.doc.title), split_sentences(self.doc.body)

    @cached_property
    def voice(self) -> str:
        """The author when the article is an opinion piece (``speakers.opinion_voice``): once per
        article, not once per rule quoting it."""
        from monitor.match.speakers import opinion_voice

        return opinion_voice(self.doc.title, self.doc.body, self.doc.url, self.doc.author)

    @cached_property
    def site(self) -> str:
        return self.doc.site.lower().removeprefix("www.")

    @cached_property
    def source_words(self) -> str:
        return " ".join(words(self.doc.source))

    @cached_property
    def author_words(self) -> str:
        return " ".join(words(self.doc.author))


def about_meaning(node: About) -> Any:
    """The clause's prepared meaning (RuleSet attaches it; a bare tree gets the defaults)."""
    if node.meaning is None:
        from monitor.match.meaning import build_meaning

        object.__setattr__(node, "meaning", build_meaning(node.text, threshold=node.threshold))
    return node.meaning


def about_score(node: About, ix: DocIndex) -> Any:
    """The article's AboutScore for this clause (monitor.match.meaning.score, cached)."""
    from monitor.match.meaning import score

    return score(about_meaning(node), ix)


def about_true(node: About, ix: DocIndex) -> bool:
    return bool(about_score(node, ix).matched)


def meta_true(node: Meta, ix: DocIndex) -> bool:
    if node.field == "site":
        return ix.site == node.value or ix.site.endswith("." + node.value)
    if node.field == "lang":
        lang = (ix.doc.lang or "").lower()
        return lang == node.value or lang.split("-")[0] == node.value
    hay = ix.source_words if node.field == "source" else ix.author_words
    return f" {node.value} " in f" {hay} "


def seq_occ(node: Seq, ix: DocIndex, first_only: bool = False) -> list[Occ]:
    """Occurrences of a term or phrase, in field then start order (``first_only``: just one)."""
    out: list[Occ] = []
    ws = node.words
    k = len(ws)
    for fi, f in enumerate(ix.fields):
        if node.field is not None and _FIELD_INDEX[node.field] != fi:
            continue
        first = f.positions(ws[0], ix)
        if not first:
            continue
        if k == 1:
            out.extend((fi, p, p + 1, ((fi, p, p + 1),)) for p in first)
            continue
        fw, n = f.words, len(f.words)
        if node.slop == 0:
            fc = f.cased if any(w.kind == "cased" for w in ws) else fw
            for p in first:
                if p + k > n:
                    break
                if all(ws[j].accepts(fw[p + j], fc[p + j]) for j in range(1, k)):
                    out.append((fi, p, p + k, ((fi, p, p + k),)))
            continue
        rest = [f.positions(w, ix) for w in ws[1:]]
        if all(rest):
            out.extend(_sloppy(fi, first, rest, k + node.slop, n, first_only))
        if first_only and out:
            break
    return out


def _sloppy(fi: int, first: list[int], rest: list[list[int]], span: int, n: int, first_only: bool) -> list[Occ]:
    """Starts in ``first`` followed in order by a position of each list of ``rest``, all within
    ``span`` words (the phrase's length plus its slop).

    The earliest next word each time gives the shortest span for a start, and is found by
    bisecting that word's sorted positions, never by scanning up to ``slop`` words per start:
    that scan made "a a b"~500 on a 100,000-word text take 25 s (100,000 starts x 500 words).
    A later start's chain is never earlier than this one's, so a chain that fails at position
    ``q`` rules out every start whose window ends at or before ``q`` as well: they are skipped,
    and the work is a few bisections per start that can match, whatever the slop.
    """
    out: list[Occ] = []
    s = 0
    while s < len(first):
        p = first[s]
        cur, leaves, limit = p, [(fi, p, p + 1)], min(n, p + span)
        for later in rest:
            i = bisect_right(later, cur)
            if i == len(later):
                return out  # no later start can complete either
            cur = later[i]
            if cur >= limit:
                s = bisect_right(first, cur - span, s + 1)
                break
            leaves.append((fi, cur, cur + 1))
        else:
            out.append((fi, p, cur + 1, tuple(leaves)))
            if first_only:
                return out
            s += 1
    return out


def occurrences(node: Node, ix: DocIndex, limit: int | None = None) -> list[Occ]:
    """Every occurrence of a positional node (Seq, Or of them, Near).

    ``limit`` caps the pairs a top-level proximity collects (quoting needs a few, and one huge
    sentence full of both sides would otherwise pair every word with every other)."""
    if isinstance(node, Seq):
        return seq_occ(node, ix)
    if isinstance(node, Or):
        res: list[Occ] = []
        for c in node.children:
            res.extend(occurrences(c, ix, limit))
        return res
    if isinstance(node, Near):
        return near_occ(node, ix, first_only=False, limit=limit)
    raise TypeError(f"not positional: {node!r}")  # pragma: no cover - the parser forbids it


def reach(node: Near, ix: DocIndex, afi: int, a0: int, a1: int, longest: int) -> tuple[int, float]:
    """The range of start words a right-hand span may have to pair with the left span
    [a0, a1) of field ``afi``, so proximity checks never scan the whole article."""
    n = node.n
    lo, hi = 0, float("inf")
    if node.ordered:
        lo = a1
        if n is not None:
            hi = a1 + n
    elif n is not None:
        lo, hi = a0 - n - longest, a1 + n
    if node.sentence:
        first, last = ix.fields[afi].sentence_bounds[ix.fields[afi].sid[a0]]
        lo, hi = max(lo, first), min(hi, last)
    return lo, hi


def near_pairs(node: Near, ix: DocIndex, left: Sequence[T], right: Sequence[T]) -> Iterator[tuple[T, T]]:
    """The (left, right) occurrence pairs that satisfy a proximity node. Occurrences are tuples
    starting (field, start, end); ``right`` is sorted by (field, start)."""
    starts = [(b[0], b[1]) for b in right]
    longest = max(b[2] - b[1] for b in right)
    n, ordered, sentence = node.n, node.ordered, node.sentence
    for a in left:
        afi, a0, a1 = a[0], a[1], a[2]
        lo, hi = reach(node, ix, afi, a0, a1, longest)
        for j in range(bisect_left(starts, (afi, lo)), len(right)):
            b = right[j]
            b0, b1 = b[1], b[2]
            if b[0] != afi or b0 > hi:
                break
            if b0 >= a1:
                gap = b0 - a1
            elif a0 >= b1:
                if ordered:
                    continue
                gap = a0 - b1
            else:
                continue  # overlapping: the same words cannot be both sides
            if n is not None and gap > n:
                continue
            if sentence and ix.fields[afi].sid[a0] != ix.fields[afi].sid[b0]:
                continue
            yield a, b


def near_occ(node: Near, ix: DocIndex, first_only: bool, limit: int | None = None) -> list[Occ]:
    left = occurrences(node.left, ix)
    if not left:
        return []
    right = occurrences(node.right, ix)
    if not right:
        return []
    right.sort(key=lambda o: (o[0], o[1]))
    out: list[Occ] = []
    for a, b in near_pairs(node, ix, left, right):
        out.append((a[0], min(a[1], b[1]), max(a[2], b[2]), a[3] + b[3]))
        if first_only or (limit is not None and len(out) >= limit):
            break
    return out


def is_true(node: Node, ix: DocIndex) -> bool:
    if isinstance(node, Seq):
        if len(node.words) == 1 and node.field is None:
            w = node.words[0]
            if w.kind == "exact":
                return not ix.uniq.isdisjoint(w.forms)
        return bool(seq_occ(node, ix, first_only=True))
    if isinstance(node, And):
        return all(is_true(c, ix) for c in node.children)
    if isinstance(node, Or):
        return any(is_true(c, ix) for c in node.children)
    if isinstance(node, Not):
        return not is_true(node.child, ix)
    if isinstance(node, Near):
        return bool(near_occ(node, ix, first_only=True))
    if isinstance(node, About):
        return about_true(node, ix)
    return meta_true(node, ix)


def evidence(node: Node, ix: DocIndex) -> list[Occ]:
    """The occurrences that make a true node true (negations contribute none)."""
    if isinstance(node, Seq | Near):
        return occurrences(node, ix, MAX_EVIDENCE)
    if isinstance(node, And):
        return [o for c in node.children for o in evidence(c, ix)]
    if isinstance(node, Or):
        return [o for c in node.children if is_true(c, ix) for o in evidence(c, ix)]
    return []


def explain(node: Node, ix: DocIndex, depth: int = 0) -> Iterable[str]:
    """One line per clause: true/false and where, for ``monitor test-rule``."""
    ok = is_true(node, ix)
    pad = "  " * depth
    mark = "✓" if ok else "✗"
    if isinstance(node, Seq | Near) or (isinstance(node, Or) and node.label):
        label = describe(node)
        where = ""
        if ok and isinstance(node, Seq | Near | Or):
            occ = sorted({o[:3] for o in occurrences(node, ix)})
            shown = []
            for fi, a, b in occ[:3]:
                ws = ix.fields[fi].words[a:b]
                quoted = " ".join(ws if len(ws) <= 8 else [*ws[:3], "…", *ws[-3:]])
                shown.append(f"{FIELD_NAMES[fi]} word {a + 1}: \"{quoted}\"")
            where = " at " + ", ".join(shown) + (f" (+{len(occ) - 3} more)" if len(occ) > 3 else "")
        yield f"{pad}{mark} {label}{where}"
        if isinstance(node, Near) and not ok:
            yield from explain(node.left, ix, depth + 1)
            yield from explain(node.right, ix, depth + 1)
        return
    if isinstance(node, Not):
        yield f"{pad}{mark} NOT {describe(node.child)}" + ("" if ok else " (it occurs)")
        return
    if isinstance(node, Meta):
        yield f"{pad}{mark} {node.field}:{node.value}"
        return
    if isinstance(node, About):
        yield f"{pad}{mark} {describe(node)} {about_line(about_score(node, ix))}"
        return
    yield f"{pad}{mark} {'all of' if isinstance(node, And) else 'any of'}:"
    for c in node.children:
        yield from explain(c, ix, depth + 1)


def describe(node: Node) -> str:
    """A short readable form of a clause."""
    if isinstance(node, Seq):
        label = node.label or " ".join(w.stem for w in node.words)
        return f"{node.field}:{label}" if node.field else label
    if isinstance(node, Or):
        return node.label or "(" + " OR ".join(describe(c) for c in node.children) + ")"
    if isinstance(node, And):
        return "(" + " AND ".join(describe(c) for c in node.children) + ")"
    if isinstance(node, Not):
        return "NOT " + describe(node.child)
    if isinstance(node, Near):
        return f"({describe(node.left)} {node.label or 'NEAR'} {describe(node.right)})"
    if isinstance(node, About):
        text = node.text if len(node.text) <= 80 else node.text[:77] + "…"
        return f'about("{text}")'
    return f"{node.field}:{node.value}"


def about_line(sc: Any) -> str:
    """How an about clause scored, for test-rule and backtest: similarity, threshold, sentence."""
    cmp = "≥" if sc.score >= sc.threshold else "<"
    out = f"similarity {sc.score:.3f} {cmp} threshold {sc.threshold:.3f}"
    if sc.gated:
        return out + " (whole article; no sentence close enough to score)"
    if sc.countered:
        out += " but closer to a counterexample"
    sentence = " ".join(sc.sentence.split())
    if len(sentence) > 200:
        sentence = sentence[:197] + "…"
    return out + f': {FIELD_NAMES[sc.field]} "{sentence}"'
