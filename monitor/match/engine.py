"""Many rules against one article, fast: a presearcher picks the few rules that can match.

Like Lucene Monitor and the Elasticsearch percolator, each rule is reduced at compile time to
two sets of words ("anchors") from two different required clauses: the rule cannot match
unless some word of each set occurs in the article. One Aho-Corasick pass (pyahocorasick) over
the article's distinct words finds the anchors present; set unions and an intersection in C
give the candidate rules; only those are evaluated in full.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

import ahocorasick

from monitor import collector
from monitor.match.compiled import MEMO_LIMIT, Truth, memo_put, truth
from monitor.match.evaluate import FIELD_NAMES, DocIndex, about_score, evidence, is_true
from monitor.match.query import (
    About,
    And,
    Meta,
    Near,
    Node,
    Not,
    Or,
    Seq,
    W,
    has_about,
    may_hold_about,
    parse_query,
)
from monitor.match.speakers import Attributor, Entities, attribute
from monitor.match.statements import Candidate, is_direct, rank
from monitor.match.text import fold, split_sentences, words
from monitor.match.types import Document, Hit, RuleMatch, Statement

_SEP = "\x01"
MAX_STATEMENTS = 3
MAX_QUOTE_CHARS = 600  # longer sentences are quoted as a window around the matched words

# A key is ("=", word) for an exact word or ("*", stem) for words starting with stem.
Key = tuple[str, str]
Anchors = tuple[frozenset[Key], frozenset[Key]] | None
Postings = tuple[tuple[int, ...], tuple[int, ...]]  # rule indices by anchor set (first, second)


def compile_query(query: str, entities: Mapping[str, Any] | None = None) -> Node:
    """Parse a query; raise QuerySyntaxError naming the column of the problem."""
    return parse_query(query, entities)


_COSTS: dict[frozenset[Key], float] = {}  # by key set (plain dicts: fewer objects than lru_cache)
# By identity, with the object kept so its id is not reused while the entry lives: a plain
# word's W and Seq and an entity's Or are each one object shared by every rule using them, and
# hashing a W (a dataclass: a Python __hash__ over its fields) cost more than the lookup saved.
_WORD_KEYS: dict[int, tuple[W, frozenset[Key]]] = {}
_SHARED_ANCHORS: dict[int, tuple[Node, Anchors]] = {}


_KEY_COSTS: dict[Key, float] = {}  # each key's share of _cost, filled as _word_keys makes keys


def _key_cost(key: Key) -> float:
    return (3.0 if key[0] == "*" else 1.0) / max(len(key[1]), 1) ** 2


def _cost(keys: frozenset[Key]) -> float:
    """Guessed chance that some key occurs: short words and prefixes are common."""
    hit = _COSTS.get(keys)
    if hit is None:
        try:  # the same sum in the same order, its terms looked up in C
            total = sum(map(_KEY_COSTS.__getitem__, keys))
        except KeyError:  # a key made before _KEY_COSTS was last cleared
            total = sum(map(_key_cost, keys))
        hit = memo_put(_COSTS, keys, total)
    return hit


def _stems(node: Node) -> list[str]:
    if isinstance(node, Seq):
        return [w.stem for w in node.words if w.kind in ("prefix", "glob")]
    if isinstance(node, Or | And):
        return [s for c in node.children for s in _stems(c)]
    if isinstance(node, Not):
        return _stems(node.child)
    if isinstance(node, Near):
        return _stems(node.left) + _stems(node.right)
    return []


def _may_hold_stems(query: str) -> bool:
    return "*" in query or "?" in query or "@" in query


def _word_keys(w: W) -> frozenset[Key]:
    """The keys of one word position (the same W object recurs across rules: computed once)."""
    hit = _WORD_KEYS.get(id(w))
    if hit is None:
        if w.kind == "exact":
            keys = frozenset(("=", f) for f in w.forms)
        elif w.kind == "cased":
            keys = frozenset({("=", fold(w.stem))})
        else:
            keys = frozenset({("*", w.stem)})
        if len(_KEY_COSTS) >= 4 * MEMO_LIMIT:
            _KEY_COSTS.clear()
        for k in keys:
            _KEY_COSTS[k] = _key_cost(k)
        hit = memo_put(_WORD_KEYS, id(w), (w, keys))
    return hit[1]


def anchors(node: Node) -> Anchors:
    """Two key sets, each of which must have a key in any article the rule matches."""
    if isinstance(node, Seq) or (isinstance(node, Or) and node.label.startswith("@")):
        hit = _SHARED_ANCHORS.get(id(node))
        if hit is None:
            hit = memo_put(_SHARED_ANCHORS, id(node), (node, _anchors(node)))
        return hit[1]
    return _anchors(node)


def _anchors(node: Node) -> Anchors:
    if isinstance(node, Seq):
        ks = sorted([_word_keys(w) for w in node.words], key=_cost)
        return (ks[0], ks[1] if len(ks) > 1 else ks[0])
    if isinstance(node, Or):
        a: set[Key] = set()
        b: set[Key] = set()
        for c in node.children:
            sub = anchors(c)
            if sub is None:
                return None
            a |= sub[0]
            b |= sub[1]
        return (frozenset(a), frozenset(b))
    if isinstance(node, And | Near):
        kids = node.children if isinstance(node, And) else (node.left, node.right)
        subs = sorted((s for s in map(anchors, kids) if s is not None), key=lambda s: _cost(s[0]))
        if not subs:
            return None
        if len(subs) == 1:
            return subs[0]
        return (subs[0][0], subs[1][0])
    if isinstance(node, Not | Meta | About):
        return None  # about(): no word is required; the presearcher keeps the rule
    raise TypeError(node)  # pragma: no cover


def _with_meanings(node: Node, examples: Sequence[str], counterexamples: Sequence[str]) -> Node:
    """The tree with each about() clause's meaning prepared (this loads the model)."""
    from monitor.match.meaning import build_meaning

    if isinstance(node, About):
        return About(node.text, node.col, node.threshold,
                     build_meaning(node.text, examples, counterexamples, node.threshold))
    if isinstance(node, Or):
        return Or(tuple(_with_meanings(c, examples, counterexamples) for c in node.children), node.label)
    if isinstance(node, And):
        return And(tuple(_with_meanings(c, examples, counterexamples) for c in node.children))
    if isinstance(node, Not):
        return Not(_with_meanings(node.child, examples, counterexamples))
    return node


def about_clauses(node: Node) -> list[About]:
    """The about() clauses of a tree, in query order."""
    if isinstance(node, About):
        return [node]
    if isinstance(node, Or | And):
        return [a for c in node.children for a in about_clauses(c)]
    if isinstance(node, Not):
        return about_clauses(node.child)
    return []


# A rule's examples and counterexamples (texts), by rule name: they calibrate its about() clauses.
Examples = Mapping[str, tuple[Sequence[str], Sequence[str]]]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    query: str
    tree: Node
    test: Truth  # the tree compiled to a closure: does the rule match this article?


def _postings(a: dict[str, list[int]], b: dict[str, list[int]]) -> dict[str, Postings]:
    """One entry per word: a word's lookup in an article gives both anchor sides at once."""
    return {v: (tuple(a.get(v, ())), tuple(b.get(v, ()))) for v in a.keys() | b.keys()}


BULK_RULES = 1000  # from this many rules, compile collects first and freezes what it built (RuleSet)


class RuleSet:
    """A compiled set of rules, evaluated together against each document."""

    rules: list[CompiledRule]

    def __init__(self, rules: Sequence[tuple[str, str]], entities: Mapping[str, Any] | None = None,
                 examples: Examples | None = None):
        # Compiling builds hundreds of thousands of objects that all live as long as the rules:
        # the collector is paused, and a large set frozen (monitor.collector.building). The
        # rules hold no reference cycles (tests/test_match_fixes.py checks it), so refcounting
        # still frees a replaced set.
        with collector.building(bulk=len(rules) >= BULK_RULES):
            self._build(rules, entities, examples)

    def _build(self, rules: Sequence[tuple[str, str]], entities: Mapping[str, Any] | None,
               examples: Examples | None) -> None:
        self.rules = []
        self.uses_about = False  # any rule with an about(...) clause: the model is needed
        for name, q in rules:
            tree = compile_query(q, entities)
            if may_hold_about(q) and has_about(tree):  # no tree walk for nearly every rule
                self.uses_about = True
                from monitor.embed import EmbedderUnavailable

                ex, counter = (examples or {}).get(name, ((), ()))
                try:
                    tree = _with_meanings(tree, ex, counter)
                except EmbedderUnavailable as exc:
                    raise EmbedderUnavailable(f"rule {name!r} uses about(): {exc}") from exc
            self.rules.append(CompiledRule(name, q, tree, truth(tree)))
        self.by_name = {r.name: r for r in self.rules}
        self.entities = Entities(entities)  # to name the entity a speaker is
        # Postings: word -> (rules whose first anchor set holds it, rules whose second does).
        # Exact words are found by one dict lookup per distinct word of the article; stems
        # (wildcards) by one Aho-Corasick pass over the article's distinct words.
        # Rules share anchor sets (one object: a plain word's, an entity's hundreds of forms),
        # so the rules are grouped by set first and each set's keys are posted once: 10,000
        # rules have ~4,800 distinct sets. A posting's order is of no consequence (candidates
        # are a set).
        posts: dict[str, dict[str, list[int]]] = {"=a": {}, "=b": {}, "*a": {}, "*b": {}}
        always: set[int] = set()
        by_set: tuple[dict[int, tuple[frozenset[Key], list[int]]], ...] = ({}, {})
        for ri, rule in enumerate(self.rules):
            anc = anchors(rule.tree)
            if anc is None:
                always.add(ri)
                continue
            for group, keys in zip(by_set, anc, strict=True):
                hit = group.get(id(keys))
                if hit is None:
                    group[id(keys)] = (keys, [ri])
                else:
                    hit[1].append(ri)
        for side, group in zip("ab", by_set, strict=True):
            for keys, ris in group.values():
                for kind, v in keys:
                    posts[kind + side].setdefault(v, []).extend(ris)
        self._exact = _postings(posts["=a"], posts["=b"])
        self._stem = _postings(posts["*a"], posts["*b"])
        self._always = frozenset(always)
        self._automaton: Any = None
        # Every stem of 3+ letters any rule uses (not only anchors): the same pass then tells
        # the evaluator which words each wildcard stands for.
        # A wildcard is spelt with * or ? in the query or in an entity's alias (@).
        stems = {st for r in self.rules if _may_hold_stems(r.query) for st in _stems(r.tree) if len(st) >= 3}
        stems |= set(self._stem)
        self._stems = frozenset(stems)
        if stems:
            auto = ahocorasick.Automaton()
            for stem in stems:
                auto.add_word(_SEP + stem, stem)
            auto.make_automaton()
            self._automaton = auto

    def candidates(self, ix: DocIndex) -> list[int]:
        """Rules whose anchors occur in the article (a superset of the matching rules)."""
        words = ix.uniq
        # map/filter/chain run in C: this is the per-article hot loop.
        hits = list(filter(None, map(self._exact.get, words)))
        if self._automaton is not None and words:
            hay = _SEP + _SEP.join(words) + _SEP
            found: dict[str, list[str]] = {}
            for end, stem in self._automaton.iter(hay):
                start = end - len(stem) + 1
                found.setdefault(stem, []).append(hay[start:hay.index(_SEP, start)])
            ix.stems, ix.stems_known = found, self._stems
            hits += filter(None, map(self._stem.get, found))
        if not hits:
            return sorted(self._always)
        a, b = zip(*hits, strict=True)
        # Rules with a first-anchor word, kept if a second-anchor word names them too (the
        # intersection walks b's postings without building their union).
        cand = set().union(*a).intersection(chain.from_iterable(b))
        return sorted(cand | self._always if self._always else cand)

    def matching(self, doc: Document | DocIndex) -> list[str]:
        """Names of the rules that match (the hot path: no quoting)."""
        ix = doc if isinstance(doc, DocIndex) else DocIndex(doc)
        rules = self.rules
        return [rules[i].name for i in self.candidates(ix) if rules[i].test(ix)]

    def matching_each(self, doc: Document | DocIndex) -> list[str]:
        """The same answer by evaluating every rule, without the presearcher (for checks)."""
        ix = doc if isinstance(doc, DocIndex) else DocIndex(doc)
        return [r.name for r in self.rules if is_true(r.tree, ix)]

    def match(self, doc: Document | DocIndex) -> list[RuleMatch]:
        """Every matching rule with its hits and quoted statements."""
        ix = doc if isinstance(doc, DocIndex) else DocIndex(doc)
        names = self.matching(ix)
        return [quote(self.by_name[n], ix, self.entities) for n in names]


def quote(rule: CompiledRule, ix: DocIndex, entities: Entities | None = None,
          similarity: Mapping[tuple[int, int], float] | None = None) -> RuleMatch:
    """Hits with character offsets, and the sentences holding the evidence, best first, with
    their speakers. ``similarity`` ((field, sentence index) -> score) comes from clauses by
    meaning; see ``monitor.match.statements.rank`` for the order."""
    toks, sents = ix.offsets, ix.sentences
    hits: dict[tuple[int, int, int], Hit] = {}
    groups: dict[tuple[int, int, int], tuple[set[int], set[tuple[int, int]]]] = {}
    root = rule.tree
    clauses = root.children if isinstance(root, And) else (root,)
    # about() clauses: the sentence (or two) closest in meaning are candidates of their clause,
    # ranked by their similarity (monitor.match.meaning.score chose them).
    meaning_sim: dict[tuple[int, int], float] = {}
    for ci, clause in enumerate(clauses):
        for ab in about_clauses(clause):
            sc = about_score(ab, ix)
            if not sc.matched:
                continue
            for (fi, a, _b), sim in zip(sc.quoted, sc.quoted_rank, strict=True):
                k = _sentence_of(sents[fi], a)
                groups.setdefault((fi, k, k), (set(), set()))[0].add(ci)
                meaning_sim[(fi, k)] = max(meaning_sim.get((fi, k), 0.0), sim)
    if meaning_sim and similarity is None:
        similarity = meaning_sim
    for ci, clause in enumerate(clauses):
        for fi, start, end, leaves in evidence(clause, ix):
            t = toks[fi]
            first = _sentence_of(sents[fi], t.spans[start][0])
            last = _sentence_of(sents[fi], t.spans[end - 1][1] - 1)
            span_chars = []
            for lf, ls, le in leaves:
                a, b = t.spans[ls][0], t.spans[le - 1][1]
                hits.setdefault((lf, a, b), Hit(FIELD_NAMES[lf], a, b, t.text[a:b]))
                span_chars.append((a, b))
            cl, sp = groups.setdefault((fi, first, last), (set(), set()))
            cl.add(ci)
            sp.update(span_chars)
    title_words = words(ix.doc.title)
    cands: list[Candidate] = []
    for (fi, first, last), (cl, sp) in groups.items():
        text = toks[fi].text
        a, b = sents[fi][first][0], sents[fi][last][1]
        if fi == 1 and title_words and words(text[a:b]) == title_words:
            continue  # the <h1> repeating the title: no body statement
        spans = tuple(sorted(sp))
        cands.append(Candidate(fi, first, last, a, b, frozenset(cl), spans, is_direct(text, a, b, spans),
                               _distinct_terms(text, spans)))
    cands += _pairs(cands, toks[1].text, sents[1])
    voice = ix.voice
    body_att = Attributor(ix.doc.body, entities, title=ix.doc.title, voice=voice)
    statements: list[Statement] = []
    used: set[tuple[int, int]] = set()
    for c in rank(cands, similarity):
        if any((c.field, k) in used for k in range(c.first, c.last + 1)):
            continue
        used.update((c.field, k) for k in range(c.first, c.last + 1))
        fi = c.field
        text = toks[fi].text
        if fi == 1:
            who = body_att.find(c.start, c.end)
        else:
            who = attribute(ix.doc.title, ix.doc.body, "title", c.start, c.end, entities, voice)
        inside = [s for s in c.spans if c.start <= s[0] and s[1] <= c.end]
        a, b, lead, trail = _window(text, c.start, c.end, inside)
        hl = tuple((x - a + len(lead), y - a + len(lead)) for x, y in inside if a <= x and y <= b)
        statements.append(Statement(field=FIELD_NAMES[fi], start=a, end=b, text=lead + text[a:b] + trail,
                                    highlights=hl, speaker=who.written if who else None,
                                    speaker_entity=who.entity if who else None,
                                    speaker_display=str(who) if who else None))
        if len(statements) >= MAX_STATEMENTS:
            break
    return RuleMatch(rule=rule.name, hits=tuple(sorted(hits.values(), key=lambda h: (h.field != "title", h.start))),
                     statements=tuple(statements))


def _pairs(cands: list[Candidate], body: str, sents: list[tuple[int, int]]) -> list[Candidate]:
    """Adjacent body sentences of one paragraph that together hold more clauses than either."""
    single = {c.first: c for c in cands if c.field == 1 and c.first == c.last}
    out = []
    for k, c in single.items():
        d = single.get(k + 1)
        if d is None or "\n" in body[c.end:d.start]:
            continue
        both = c.clauses | d.clauses
        if len(both) > max(len(c.clauses), len(d.clauses)):
            spans = c.spans + d.spans
            out.append(Candidate(1, k, k + 1, c.start, d.end, both, spans, c.direct or d.direct,
                                 _distinct_terms(body, spans)))
    return out


def _distinct_terms(text: str, spans: tuple[tuple[int, int], ...]) -> int:
    """How many different words of the rule a candidate holds (case-folded), for ranking."""
    return len({text[a:b].casefold() for a, b in spans})


def _window(text: str, a: int, b: int, spans: list[tuple[int, int]]) -> tuple[int, int, str, str]:
    """A very long "sentence" (a run-on, a list, text without punctuation) is cut to a window
    around the first highlighted words, so an alert quotes a readable excerpt with "…"."""
    if b - a <= MAX_QUOTE_CHARS or not spans:
        return a, b, "", ""
    start = max(a, spans[0][0] - MAX_QUOTE_CHARS // 3)
    end = min(b, start + MAX_QUOTE_CHARS)
    # Whole words only.
    if start > a:
        sp = text.find(" ", start, spans[0][0])
        start = sp + 1 if sp >= 0 else start
    if end < b:
        sp = text.rfind(" ", max(start, spans[0][1]), end)
        end = sp if sp >= 0 else end
    return start, end, "…" if start > a else "", "…" if end < b else ""


def _sentence_of(sents: list[tuple[int, int]], pos: int) -> int:
    """The sentence holding character ``pos`` (or the one before it, between sentences)."""
    return max(bisect_right(sents, (pos, float("inf"))) - 1, 0)


def body_statements(body: str, match: RuleMatch, title: str = "",
                    entities: Entities | None = None, speakers: bool = True) -> list[Statement]:
    """Every body sentence holding a hit of the match (the match quotes only the first few).

    A re-alert must see them all: the new statement is often further down in a later copy.
    ``speakers=False``: without their speakers (``with_speakers`` adds them to those quoted;
    attribution is most of the cost)."""
    spans = [(h.start, h.end) for h in match.hits if h.field == "body"]
    out = []
    for a, b in split_sentences(body):
        hl = tuple((x - a, y - a) for x, y in spans if a <= x and y <= b)
        if hl:
            out.append(Statement(field="body", start=a, end=b, text=body[a:b], highlights=hl))
    return with_speakers(body, out, title, entities) if speakers else out


def with_speakers(body: str, statements: Sequence[Statement], title: str = "",
                  entities: Entities | None = None, voice: str = "") -> list[Statement]:
    """``body_statements``' statements of ``body`` with their speakers (``voice``: an opinion
    piece's author, ``speakers.opinion_voice``)."""
    att = Attributor(body, entities, title=title, voice=voice)
    out = []
    for st in statements:
        who = att.find(st.start, st.end)
        out.append(replace(st, speaker=who.written if who else None, speaker_entity=who.entity if who else None,
                           speaker_display=str(who) if who else None))
    return out
