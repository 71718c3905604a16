"""Rule-engine cases a differential test against FTS5, Whoosh and tantivy found (issue 16.6)."""

from __future__ import annotations

import pytest

from monitor.match import Document, RuleSet
from monitor.match.text import words


def _matches(query: str, body: str) -> bool:
    return bool(RuleSet([("r", query)], {}).match(Document(title="", body=body)))


@pytest.mark.parametrize("query", [
    "(alpha OR (beta AND gamma)) NEAR/2 delta",
    "(alpha OR beta gamma) NEAR/2 delta",
    "(alpha OR (beta AND gamma)) SENT delta",
    "delta NEAR/2 (alpha OR (beta AND gamma))",
])
def test_and_inside_or_inside_near_distributes(query: str) -> None:
    # (alpha NEAR/2 delta) OR ((beta NEAR/2 delta) AND (gamma NEAR/2 delta)), as the README says
    assert _matches(query, "beta gamma delta.")
    assert _matches(query, "alpha delta.")
    assert not _matches(query, "beta delta. Nothing here, nothing at all, then gamma.")


def test_vulgar_fractions_do_not_join_the_digit_before_them() -> None:
    assert words("Add 2½ cups") == ["add", "2", "1", "2", "cups"]
    assert not _matches("21", "Add 2½ cups")
    assert _matches('"2 ½ cups"', "Add 2½ cups")


def test_japanese_voiced_kana_stay_one_character() -> None:
    assert not _matches("か", "がっこう")
    assert not _matches("ハ", "パン")
    assert _matches("が", "がっこう") and _matches("パン", "パンを買う")
    assert _matches("私 NEAR/2 っ", "私はがっこうへ")


def test_cyrillic_letters_with_marks_are_letters_of_their_own() -> None:
    assert not _matches("мои", "это мой дом")
    assert _matches("мой", "это мой дом")
    assert not _matches("Киів", "Київ") and _matches("Київ", "КИЇВ")
    assert not _matches("усе", "ўсё")
    assert _matches("елка", "Ёлка") and _matches("Turkiye", "Türkiye")  # still folded, as promised


def test_compiled_rules_hold_no_reference_cycles() -> None:
    """A large rule set is frozen out of the garbage collector's reach (``RuleSet``): a replaced
    one must then be freed by reference counting alone, so nothing in it may form a cycle."""
    import gc
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Entity:
        name: str
        aliases: tuple[str, ...]
        inflect: bool = True

    ents = {"kz": Entity("kz", ("Kazakhstan", "Казахстан")), "tk": Entity("tk", ("Tokayev", "Токаев"))}
    queries = ['@kz NEAR/5 (mediator* OR "good offices")', "@tk AND NOT sport", "alpha OR beta* AND gamma",
               '"a b c"~4 AND site:example.com']
    doc = Document(title="Tokayev: Kazakhstan is no mediator", body="Токаев сказал, что Казахстан готов.")
    RuleSet([(f"r{i}", q) for i, q in enumerate(queries)], ents).match(doc)  # first imports and caches
    gc.collect()
    paused = gc.isenabled()
    gc.disable()
    try:
        rs = RuleSet([(f"r{i}", q) for i, q in enumerate(queries)], ents)
        rs.match(doc)
        del rs
        # Only our own objects count: another test's leftover thread in this worker may make
        # garbage of its own meanwhile (an asyncio loop, a server), which says nothing of ours.
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage if str(getattr(o, "__module__", None) or "").startswith("monitor.")]
        assert not ours, ours[:5]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if paused:
            gc.enable()
