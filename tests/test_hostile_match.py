"""Hostile rules and texts against the rule engine (issue 17.10): a sloppy phrase on a huge text
must cost work in proportion to the text, never text x slop, and still find every occurrence."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import pytest

import monitor.match.evaluate as evaluate
from monitor.match import Document, RuleSet, compile_query
from monitor.match.evaluate import DocIndex, seq_occ
from monitor.match.query import Seq, W
from tests.match_reference import Plain, _spans

WORDS = 100_000


class TooMuchWork(Exception):
    pass


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the word tests and position bisections the evaluator makes; past 4 per word of the
    text it stops the evaluation (the code before the fix made 50 million: it would run for
    minutes before failing)."""
    count = [0]

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            count[0] += 1
            if count[0] > 4 * WORDS:
                raise TooMuchWork(f"more than {4 * WORDS} steps for a {WORDS}-word text")
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(W, "accepts", counted(W.accepts))
    monkeypatch.setattr(evaluate, "bisect_right", counted(bisect_right), raising=False)
    return count


@pytest.mark.parametrize("body, matches", [
    ("a " * WORDS, False),  # no "b" at all
    ("a " * (WORDS - 1) + "b", True),  # one "b", at the very end, within 500 of the last "a"s
    ("a b " * (WORDS // 2), True),  # a match at every "a"
    ("a " * (WORDS // 2) + "b " + "a " * (WORDS // 2), True),
])
def test_sloppy_phrase_on_a_huge_text_costs_steps_in_proportion_to_the_text(body: str, matches: bool,
                                                                          work: list[int]) -> None:
    tree = compile_query('"a a b"~500', {})
    assert isinstance(tree, Seq)
    ix = DocIndex(Document(title="", body=body))
    found = seq_occ(tree, ix)
    assert bool(found) is matches
    assert work[0] <= 4 * WORDS
    if matches:
        last_b = body.split().index("b") if body.count("b") == 1 else None
        if last_b is not None:  # every start within reach of the one "b" is an occurrence
            assert [o[1] for o in found] == list(range(max(0, last_b - 502), last_b - 1))


def test_a_rule_with_a_sloppy_phrase_matches_a_huge_text(work: list[int]) -> None:
    rules = RuleSet([("r", '"a a b"~500'), ("s", '"a b"~500 AND c')], {})
    body = "a " * (WORDS - 1) + "b"
    assert rules.matching_each(Document(title="", body=body)) == ["r"]
    assert rules.matching(Document(title="", body=body)) == ["r"]
    assert rules.matching(Document(title="", body="a " * (WORDS - 600) + "c " * 600 + "b")) == []


@pytest.mark.parametrize("seed", range(6))
def test_sloppy_phrase_occurrences_are_the_reference_evaluators(seed: int) -> None:
    """Every start and end, on random texts of a few words (so phrases overlap and repeat)."""
    rng = random.Random(seed)
    vocab = ["a", "b", "c", "d"]
    for _ in range(40):
        title = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 8)))
        body = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 120)))
        doc = Document(title=title, body=body)
        phrase = " ".join(rng.choice(vocab) for _ in range(rng.randint(2, 4)))
        query = f'"{phrase}"~{rng.randint(1, 7)}'
        tree = compile_query(query, {})
        assert isinstance(tree, Seq)
        got = sorted(o[:3] for o in seq_occ(tree, DocIndex(doc)))
        assert got == sorted(_spans(tree, Plain(doc))), (query, title, body)
        assert bool(seq_occ(tree, DocIndex(doc), first_only=True)) is bool(got)
