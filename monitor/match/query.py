"""Query language parser: terms, "phrases", AND / OR / NOT, parentheses.

Precedence NOT > AND > OR; adjacent clauses are joined by an implicit AND. Errors carry the
column so the config loader can draw a caret under the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, query: str, column: int):
        super().__init__(f"{message} at column {column + 1}")
        self.message = message
        self.query = query
        self.column = column  # 0-based

    def describe(self) -> str:
        """Message, the query, and a caret under the offending column."""
        return f"invalid query: {self.message} at column {self.column + 1}\n    {self.query}\n    {' ' * self.column}^"


@dataclass(frozen=True)
class Term:
    word: str  # as written (normalised at match time)


@dataclass(frozen=True)
class Phrase:
    words: tuple[str, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Term | Phrase | Not | And | Or

_TOKEN = re.compile(r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<q>"[^"]*"?)|(?P<w>[^\s()"]+))')
_WORD = re.compile(r"\w+(?:['’\-]\w+)*", re.UNICODE)


@dataclass(frozen=True)
class _Tok:
    kind: str  # lp rp phrase word AND OR NOT end
    text: str
    col: int


def _tokenize(q: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        m = _TOKEN.match(q, pos)
        if not m:  # pragma: no cover - the pattern accepts any non-space
            raise QuerySyntaxError("unexpected character", q, pos)
        col = m.start(m.lastgroup or 0)
        if m.group("lp"):
            toks.append(_Tok("lp", "(", col))
        elif m.group("rp"):
            toks.append(_Tok("rp", ")", col))
        elif m.group("q") is not None:
            text = m.group("q")
            if len(text) < 2 or not text.endswith('"'):
                raise QuerySyntaxError("unclosed quote", q, col)
            toks.append(_Tok("phrase", text[1:-1], col))
        else:
            w = m.group("w")
            kind = w if w in ("AND", "OR", "NOT") else "word"
            toks.append(_Tok(kind, w, col))
        pos = m.end()
    toks.append(_Tok("end", "", len(q)))
    return toks


class _Parser:
    def __init__(self, q: str):
        self.q = q
        self.toks = _tokenize(q)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise QuerySyntaxError("empty query", self.q, 0)
        node = self.or_()
        t = self.peek()
        if t.kind != "end":
            raise QuerySyntaxError(f"unexpected {t.text!r}", self.q, t.col)
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.peek().kind == "OR":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while True:
            t = self.peek()
            if t.kind == "AND":
                self.take()
                parts.append(self.not_())
            elif t.kind in ("word", "phrase", "lp", "NOT"):
                parts.append(self.not_())  # implicit AND
            else:
                break
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Node:
        t = self.peek()
        if t.kind == "NOT":
            self.take()
            return Not(self.not_())
        if t.kind == "word" and t.text.startswith("-") and len(t.text) > 1:
            self.take()
            return Not(self._word(t.text[1:], t.col + 1))
        return self.atom()

    def atom(self) -> Node:
        t = self.take()
        if t.kind == "lp":
            node = self.or_()
            close = self.take()
            if close.kind != "rp":
                raise QuerySyntaxError("missing ')' for the '(' here", self.q, t.col)
            return node
        if t.kind == "phrase":
            words = tuple(w.group(0) for w in _WORD.finditer(t.text))
            if not words:
                raise QuerySyntaxError("empty phrase", self.q, t.col)
            return Phrase(words)
        if t.kind == "word":
            return self._word(t.text, t.col)
        if t.kind == "end":
            raise QuerySyntaxError("query ends where a term was expected", self.q, t.col)
        raise QuerySyntaxError(f"expected a term, found {t.text!r}", self.q, t.col)

    def _word(self, text: str, col: int) -> Node:
        words = [w.group(0) for w in _WORD.finditer(text)]
        if not words:
            raise QuerySyntaxError(f"not a word: {text!r}", self.q, col)
        return Term(words[0]) if len(words) == 1 else Phrase(tuple(words))


def parse_query(q: str) -> Node:
    return _Parser(q).parse()
