"""A deliberately plain evaluator: one rule at a time, scanning the words, no index.

It is the yardstick for the fast engine (property tests and the benchmark's equality check)
and the benchmark's per-rule baseline, so it shares only the tokenizer, the sentence splitter
and the word test with the engine, not its algorithms.
"""

from __future__ import annotations

from monitor.match.query import And, Meta, Near, Node, Not, Or, Seq
from monitor.match.text import cased_words, split_sentences, words
from monitor.match.types import Document

Span = tuple[int, int, int]  # field, start, end (word indices, end exclusive)


class Plain:
    """An article as plain word lists."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.texts = (doc.title, doc.body)
        self.fields = [(words(doc.title), cased_words(doc.title)), (words(doc.body), cased_words(doc.body))]
        self._sent: dict[int, list[int]] = {}

    def sentence_of(self, fi: int, i: int) -> int:
        if fi not in self._sent:
            text = self.texts[fi]
            ids: list[int] = []
            for n, (s, e) in enumerate(split_sentences(text)):
                ids += [n] * len(words(text[s:e]))
            self._sent[fi] = ids
        ids = self._sent[fi]
        return ids[i] if i < len(ids) else (ids[-1] if ids else 0)


def _seq(node: Seq, p: Plain) -> list[Span]:
    out: list[Span] = []
    for fi, (fw, fc) in enumerate(p.fields):
        if node.field is not None and ("title", "body")[fi] != node.field:
            continue
        for start in range(len(fw)):
            # Try every way of placing the words in order with at most ``slop`` extra words;
            # keep the shortest end for this start.
            best = _place(node, fw, fc, 1, start, start + 1, node.slop) if node.words[0].accepts(fw[start], fc[start]) else None
            if best is not None:
                out.append((fi, start, best))
    return out


def _place(node: Seq, fw: list[str], fc: list[str], j: int, prev: int, end: int, slop: int) -> int | None:
    if j == len(node.words):
        return end
    best: int | None = None
    for q in range(prev + 1, min(len(fw), prev + 1 + slop + 1)):
        if node.words[j].accepts(fw[q], fc[q]):
            r = _place(node, fw, fc, j + 1, q, q + 1, slop - (q - prev - 1))
            if r is not None and (best is None or r < best):
                best = r
    return best


def _spans(node: Node, p: Plain) -> list[Span]:
    if isinstance(node, Seq):
        return _seq(node, p)
    if isinstance(node, Or):
        return [s for c in node.children for s in _spans(c, p)]
    if isinstance(node, Near):
        out = []
        for a in _spans(node.left, p):
            for b in _spans(node.right, p):
                if a[0] != b[0]:
                    continue
                if b[1] >= a[2]:
                    gap = b[1] - a[2]
                elif a[1] >= b[2] and not node.ordered:
                    gap = a[1] - b[2]
                else:
                    continue
                if node.n is not None and gap > node.n:
                    continue
                if node.sentence and p.sentence_of(a[0], a[1]) != p.sentence_of(b[0], b[1]):
                    continue
                out.append((a[0], min(a[1], b[1]), max(a[2], b[2])))
        return out
    raise TypeError(node)  # pragma: no cover


def _meta(node: Meta, doc: Document) -> bool:
    if node.field == "site":
        site = doc.site.lower().removeprefix("www.")
        return site == node.value or site.endswith("." + node.value)
    if node.field == "lang":
        lang = (doc.lang or "").lower()
        return node.value in (lang, lang.split("-")[0])
    hay = words(doc.source if node.field == "source" else doc.author)
    want = node.value.split()
    return any(hay[i:i + len(want)] == want for i in range(len(hay) - len(want) + 1))


def _true(node: Node, p: Plain) -> bool:
    if isinstance(node, And):
        return all(_true(c, p) for c in node.children)
    if isinstance(node, Or):
        return any(_true(c, p) for c in node.children)
    if isinstance(node, Not):
        return not _true(node.child, p)
    if isinstance(node, Meta):
        return _meta(node, p.doc)
    return bool(_spans(node, p))


def reference_match(tree: Node, doc: Document | Plain) -> bool:
    """Whether one rule matches, the slow and obvious way."""
    return _true(tree, doc if isinstance(doc, Plain) else Plain(doc))
