"""Rules compiled to Python closures for the hot path: "does this rule match?".

The tree walker in ``evaluate`` keeps every occurrence and the words behind it (for quoting);
here only the answer matters, so a group of plain words (``a OR b OR c``) becomes one set test
and proximity works on bare word positions. ``RuleSet.matching_each`` (tree walker) and the
property tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from monitor.match.evaluate import DocIndex, about_true, meta_true, near_pairs, seq_occ
from monitor.match.query import About, And, Meta, Near, Node, Not, Or, Seq, W

Truth = Callable[[DocIndex], bool]
Span = tuple[int, int, int]  # field, start, end
Spans = Callable[[DocIndex], list[Span]]


F = TypeVar("F", bound=Callable[..., Any])


def entity_memo(fn: F) -> F:
    """Entities expand to the same sub-tree in every rule naming them (hundreds of rules may
    share one): compute what depends only on that sub-tree once."""
    # By identity: an entity's sub-tree is one shared object (query._ENTITY_CACHE), and hashing
    # it would walk every alias, transliteration and inflection on each call. The node is kept
    # with its result so its id is never reused while the entry lives.
    memo: dict[int, tuple[Node, Any]] = {}

    @wraps(fn)
    def wrapper(node: Node) -> Any:
        if isinstance(node, Or) and node.label.startswith("@"):
            hit = memo.get(id(node))
            if hit is None:
                hit = memo[id(node)] = (node, fn(node))
            return hit[1]
        return fn(node)
    return cast(F, wrapper)


# An OR's plain words, by the OR's identity (the node kept, so its id is not reused while the
# entry lives): compiling a rule asks for them at every level above (truth, then _cost to order
# an AND, then truth of the child), and each answer walks the OR's children.
_PLAIN_MEMO: dict[str, dict[int, tuple[Node, frozenset[str] | None]]] = {"exact": {}, "prefix": {}}
MEMO_LIMIT = 65536  # entries of a compile-time memo; a full one is cleared whole


def memo_put(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """``cache[key] = value`` (returned), clearing ``cache`` first when it is full."""
    if len(cache) >= MEMO_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _plain(node: Node, kind: str) -> frozenset[str] | None:
    """For one word of ``kind`` (or an OR of them) in any field: its exact forms ("exact") or
    stems ("prefix"); None for anything else."""
    if isinstance(node, Seq):
        if len(node.words) == 1 and node.field is None and node.words[0].kind == kind:
            w = node.words[0]
            return w.forms if kind == "exact" else frozenset({w.stem})
        return None
    if isinstance(node, Or):
        memo = _PLAIN_MEMO[kind]
        hit = memo.get(id(node))
        if hit is None:
            parts = [_plain(c, kind) for c in node.children]
            plain = None if None in parts else frozenset().union(*filter(None, parts))
            hit = memo_put(memo, id(node), (node, plain))
        return hit[1]
    return None


def _plain_forms(node: Node) -> frozenset[str] | None:
    """The folded forms if ``node`` is one exact word (or an OR of them) in any field."""
    return _plain(node, "exact")


def _plain_stems(node: Node) -> frozenset[str] | None:
    """The stems if ``node`` is one ``stem*`` word (or an OR of them) in any field."""
    return _plain(node, "prefix")


@entity_memo
def truth(node: Node) -> Truth:
    forms = _plain_forms(node)
    if forms is not None:
        if len(forms) == 1:
            (word,) = forms
            return lambda ix: word in ix.uniq
        return lambda ix: not forms.isdisjoint(ix.uniq)
    stems = _plain_stems(node)
    if stems is not None:
        return lambda ix: any(ix.starting_with(st) for st in stems)
    if isinstance(node, Or):
        # Plain words first, in one set test; then the rest.
        plain = frozenset().union(*[f for c in node.children if (f := _plain_forms(c)) is not None])
        rest = [truth(c) for c in node.children if _plain_forms(c) is None]
        if plain:
            rest.insert(0, truth(_words_node(plain)))
        if len(rest) == 2:
            r0, r1 = rest
            return lambda ix: r0(ix) or r1(ix)
        return lambda ix: any(f(ix) for f in rest)
    if isinstance(node, And):
        # Cheap set tests first: a candidate rule usually fails on one, before any positions.
        parts = [truth(c) for c in sorted(node.children, key=_cost)]
        if len(parts) == 2:
            p0, p1 = parts
            return lambda ix: p0(ix) and p1(ix)
        if len(parts) == 3:
            q0, q1, q2 = parts
            return lambda ix: q0(ix) and q1(ix) and q2(ix)
        return lambda ix: all(f(ix) for f in parts)
    if isinstance(node, Not):
        inner = truth(node.child)
        return lambda ix: not inner(ix)
    if isinstance(node, Near):
        return _near_truth(node)
    if isinstance(node, Meta):
        return lambda ix: meta_true(node, ix)
    if isinstance(node, About):
        about = node
        return lambda ix: about_true(about, ix)
    seq = node
    return lambda ix: bool(seq_occ(seq, ix, first_only=True))


def _cost(node: Node) -> int:
    """Rough evaluation cost: 0 set test, 1 word positions, 2 phrase, 3 proximity, 9 about()
    (sentence vectors): the cheap clauses of an AND decide first."""
    if isinstance(node, About):
        return 9
    if isinstance(node, Meta) or _plain_forms(node) is not None:
        return 0
    if isinstance(node, Not):
        return _cost(node.child)
    if isinstance(node, Seq):
        return 1 if len(node.words) == 1 else 2
    if isinstance(node, Or | And):
        return max(_cost(c) for c in node.children)
    return 3


def _words_node(forms: frozenset[str]) -> Node:
    return Seq((W("exact", stem=min(forms), forms=forms),))


@entity_memo
def spans(node: Node) -> Spans:
    """Sorted (field, start, end) of every occurrence of a positional node."""
    forms = _plain_forms(node)
    if forms is not None:
        if len(forms) == 1:
            (word,) = forms

            def one(ix: DocIndex) -> list[Span]:
                out: list[Span] = []
                for fi, f in enumerate(ix.fields):
                    pos = f.pos.get(word)
                    if pos:
                        out.extend((fi, p, p + 1) for p in pos)
                return out
            return one

        def many(ix: DocIndex) -> list[Span]:
            out: list[Span] = []
            # The article's words (a set) against the forms: the smaller side is walked, not
            # an entity's thousand inflections and transliterations once per field.
            found = forms.intersection(ix.uniq)
            if not found:
                return out
            for fi, f in enumerate(ix.fields):
                pos = f.pos
                present = [w for w in found if w in pos]
                if present:
                    out.extend((fi, p, p + 1) for p in sorted(p for w in present for p in pos[w]))
            return out
        return many
    if isinstance(node, Or):
        # Plain words (an entity's one-word aliases in every spelling) in one lookup, as in truth().
        plain = frozenset().union(*[f for c in node.children if (f := _plain_forms(c)) is not None])
        kids = [spans(c) for c in node.children if _plain_forms(c) is None]
        if plain:
            kids.insert(0, spans(_words_node(plain)))
        if len(kids) == 1:
            return kids[0]

        def union(ix: DocIndex) -> list[Span]:
            out: list[Span] = []
            for k in kids:
                out.extend(k(ix))
            out.sort()
            return out
        return union
    if isinstance(node, Near):
        return _near_spans(node)
    if isinstance(node, Seq):
        seq = node
        return lambda ix: sorted(o[:3] for o in seq_occ(seq, ix))
    raise TypeError(f"not positional: {node!r}")  # pragma: no cover - the parser forbids it


def _pairs(node: Near, left: list[Span], right: list[Span], ix: DocIndex, first: bool) -> list[Span]:
    """Combined spans of the left/right pairs that satisfy the proximity condition."""
    out: list[Span] = []
    for a, b in near_pairs(node, ix, left, right):
        out.append((a[0], min(a[1], b[1]), max(a[2], b[2])))
        if first:
            break
    return out


def _near_spans(node: Near) -> Spans:
    lf, rf = spans(node.left), spans(node.right)

    def near(ix: DocIndex) -> list[Span]:
        left = lf(ix)
        if not left:
            return []
        right = rf(ix)
        if not right:
            return []
        return sorted(_pairs(node, left, right, ix, first=False))
    return near


def _near_truth(node: Near) -> Truth:
    lf, rf = spans(node.left), spans(node.right)

    def near(ix: DocIndex) -> bool:
        left = lf(ix)
        if not left:
            return False
        right = rf(ix)
        return bool(right) and bool(_pairs(node, left, right, ix, first=True))
    return near
