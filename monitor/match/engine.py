"""Evaluate parsed queries against documents and quote the sentences that matched."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.match.query import And, Node, Not, Or, Phrase, Term, parse_query
from monitor.match.types import Document, Hit, RuleMatch, Statement

_WORD = re.compile(r"\w+(?:['’\-]\w+)*", re.UNICODE)
_SENT_END = re.compile(r"(?<=[.!?…])[\"'”»)]*\s+(?=[\"'“«(]*[A-ZА-ЯЁӘҒҚҢӨҰҮҺІ0-9])|\n+")


def fold(word: str) -> str:
    """Case- and accent-insensitive form; apostrophes and hyphens unified."""
    w = unicodedata.normalize("NFKD", word.casefold())
    w = "".join(c for c in w if not unicodedata.combining(c))
    return w.replace("’", "'")


def _split_word(w: str) -> list[str]:
    return [p for p in re.split(r"[-]", fold(w)) if p]


@dataclass(frozen=True)
class _Tokens:
    field: str
    text: str
    words: list[str]
    spans: list[tuple[int, int]]


def _tokenize(field_name: str, text: str) -> _Tokens:
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        # "Kassym-Jomart" is two words, so it matches "Kassym Jomart" too.
        pos = m.start()
        for part in re.split(r"(-)", m.group(0)):
            if part and part != "-":
                words.append(fold(part))
                spans.append((pos, pos + len(part)))
            pos += len(part)
    return _Tokens(field_name, text, words, spans)


def compile_query(query: str, entities: Mapping[str, Any] | None = None) -> Node:
    """Parse a query; raise QuerySyntaxError naming the column of the problem."""
    return parse_query(query)


def _pattern(node: Term | Phrase) -> list[str]:
    if isinstance(node, Term):
        return _split_word(node.word)
    out: list[str] = []
    for w in node.words:
        out.extend(_split_word(w))
    return out


def _find(toks: _Tokens, pat: list[str]) -> list[tuple[int, int]]:
    """Word-index ranges [i, j) where the pattern occurs."""
    n = len(pat)
    res = []
    for i in range(len(toks.words) - n + 1):
        if toks.words[i:i + n] == pat:
            res.append((i, i + n))
    return res


def _eval(node: Node, fields: Sequence[_Tokens], hits: list[Hit]) -> bool:
    if isinstance(node, Term | Phrase):
        pat = _pattern(node)
        found = False
        for t in fields:
            for i, j in _find(t, pat):
                found = True
                s, e = t.spans[i][0], t.spans[j - 1][1]
                hits.append(Hit(t.field, s, e, t.text[s:e]))
        return found
    if isinstance(node, Not):
        return not _eval(node.child, fields, [])
    if isinstance(node, And):
        local: list[Hit] = []
        for c in node.children:
            if not _eval(c, fields, local):
                return False
        hits.extend(local)
        return True
    if isinstance(node, Or):
        ok = False
        for c in node.children:
            ok = _eval(c, fields, hits) or ok
        return ok
    raise TypeError(node)  # pragma: no cover


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans; a simple splitter (the rule-language stage refines it)."""
    spans = []
    start = 0
    for m in _SENT_END.finditer(text):
        end = m.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def statements_for(doc: Document, hits: Iterable[Hit]) -> tuple[Statement, ...]:
    """The sentences holding the hits, body first (the statement is usually there)."""
    by_sentence: dict[tuple[str, int, int], list[tuple[int, int]]] = {}
    texts = {"title": doc.title, "body": doc.body}
    sentences = {f: split_sentences(t) for f, t in texts.items()}
    for h in hits:
        for s, e in sentences.get(h.field, []):
            if s <= h.start < e:
                by_sentence.setdefault((h.field, s, e), []).append((h.start - s, h.end - s))
                break
    ordered = sorted(by_sentence.items(), key=lambda kv: (kv[0][0] != "body", kv[0][1]))
    out = []
    for (f, s, e), hl in ordered:
        raw = texts[f][s:e]
        lead = len(raw) - len(raw.lstrip())
        text = raw.strip()
        hl2 = tuple(sorted({(a - lead, b - lead) for a, b in hl}))
        out.append(Statement(field=f, start=s + lead, end=s + lead + len(text), text=text, highlights=hl2))
    return tuple(out)


class RuleSet:
    """A compiled set of rules, evaluated together against each document."""

    def __init__(self, rules: Sequence[tuple[str, str]], entities: Mapping[str, Any] | None = None):
        self.rules = [(name, compile_query(q, entities)) for name, q in rules]

    def match(self, doc: Document) -> list[RuleMatch]:
        fields = [_tokenize("title", doc.title), _tokenize("body", doc.body)]
        out = []
        for name, node in self.rules:
            hits: list[Hit] = []
            if _eval(node, fields, hits):
                out.append(RuleMatch(rule=name, hits=tuple(hits), statements=statements_for(doc, hits)))
        return out
