"""Property tests: on random queries and texts, the fast engine (presearcher + compiled rules)
and the tree walker agree with the plain reference evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.config import EntityConfig
from monitor.match import Document, RuleSet, compile_query
from tests.match_reference import reference_match

VOCAB = ["alpha", "beta", "gamma", "delta", "talks", "talk", "mediator", "mediators",
         "астана", "астане", "казахстан", "kassym", "jomart", "北", "京"]
ENTITIES = {"ent": EntityConfig("ent", ("Alpha Beta", "gamma", "Астана"), True)}

words = st.sampled_from(VOCAB)


def _term(w: str, cap: bool) -> str:
    return w.capitalize() if cap else w


leaf = st.one_of(
    words,
    st.builds(lambda w: w[:3] + "*", st.sampled_from([w for w in VOCAB if len(w) >= 4])),
    st.builds(lambda ws, n: '"' + " ".join(ws) + '"' + (f"~{n}" if n else ""),
              st.lists(words, min_size=1, max_size=3), st.integers(0, 2)),
    st.builds(lambda w: "!" + w.capitalize(), st.sampled_from(["alpha", "beta", "talks"])),
    st.builds(lambda w: "title:" + w, words),
    st.just("@ent"),
)

positional = st.recursive(
    leaf.filter(lambda s: not s.startswith("title:")),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a, n, b: f"({a} NEAR/{n} {b})", inner, st.integers(0, 4), inner),
        st.builds(lambda a, n, b: f"({a} ONEAR/{n} {b})", inner, st.integers(0, 4), inner),
        st.builds(lambda a, b: f"({a} SENT {b})", inner, inner),
    ),
    max_leaves=5,
)

boolean = st.recursive(
    st.one_of(leaf, positional),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a} AND {b})", inner, inner),
        st.builds(lambda a, b: f"({a} OR {b})", inner, inner),
        st.builds(lambda a, b: f"{a} {b}", inner, inner),
        st.builds(lambda a, b: f"({a} AND NOT {b})", inner, inner),
        st.builds(lambda a, b: f"({a} -{b})", inner, words),
    ),
    max_leaves=6,
)

separators = st.sampled_from([" ", " ", " ", ", ", ". ", "! ", " - ", "-", "'s ", "\n", " U.S. "])
texts = st.lists(st.tuples(words, st.booleans(), separators), min_size=0, max_size=30).map(
    lambda parts: "".join(_term(w, cap) + sep for w, cap, sep in parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=boolean, title=texts, body=texts)
def test_fast_engine_agrees_with_reference(query: str, title: str, body: str) -> None:
    doc = Document(title=title, body=body)
    tree = compile_query(query, ENTITIES)
    expected = reference_match(tree, doc)
    rules = RuleSet([("r", query)], ENTITIES)
    assert bool(rules.matching(doc)) == expected
    assert bool(rules.matching_each(doc)) == expected
    if expected:
        [m] = rules.match(doc)
        assert m.statements, "a match always quotes something"


small = st.sampled_from(["alpha", "beta", "gamma", "alp*", '"beta gamma"', '"alpha gamma"~1', "@ent"])
small_texts = st.lists(st.tuples(st.sampled_from(["alpha", "beta", "gamma", "delta", "Астане"]),
                                 st.booleans(), separators), min_size=2, max_size=14).map(
    lambda parts: "".join(_term(w, cap) + sep for w, cap, sep in parts))


@settings(max_examples=400, deadline=None)
@given(a=small, op=st.sampled_from(["NEAR", "ONEAR", "SENT"]), n=st.integers(0, 3), b=small,
       c=small, body=small_texts)
def test_proximity_edges_agree_with_reference(a: str, op: str, n: int, b: str, c: str, body: str) -> None:
    """Few words, short texts: distances at exactly n words and sentence edges come up often."""
    opn = op if op == "SENT" else f"{op}/{n}"
    doc = Document(title="", body=body)
    for query in (f"{a} {opn} {b}", f"({a} {opn} {b}) NEAR/{n} {c}", f"({a} OR {c}) {opn} {b}"):
        expected = reference_match(compile_query(query, ENTITIES), doc)
        rules = RuleSet([("r", query)], ENTITIES)
        assert bool(rules.matching(doc)) == expected, query
        assert bool(rules.matching_each(doc)) == expected, query


@settings(max_examples=60, deadline=None)
@given(queries=st.lists(boolean, min_size=2, max_size=12), body=texts)
def test_many_rules_at_once_equal_one_at_a_time(queries: list[str], body: str) -> None:
    doc = Document(title="", body=body)
    rules = RuleSet([(f"r{i}", q) for i, q in enumerate(queries)], ENTITIES)
    expected = [f"r{i}" for i, q in enumerate(queries) if reference_match(compile_query(q, ENTITIES), doc)]
    assert rules.matching(doc) == expected


# Latin, Cyrillic and punctuation (the table of ``text._simple_folds``) with the characters it
# leaves to the full fold mixed in: combining marks, fractions, Ŀ, İ, Greek, CJK.
_FOLD_CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F),
    st.characters(min_codepoint=0x400, max_codepoint=0x52F),
    st.characters(min_codepoint=0x2000, max_codepoint=0x206F),
    st.sampled_from(list("\u0301\u0306\u0308\u0483½Ŀİσς北京ﬁ™")),
)


@settings(max_examples=2000, deadline=None)
@given(st.text(_FOLD_CHARS, max_size=30))
def test_words_of_simple_text_are_those_of_the_full_fold(text: str) -> None:
    """``words`` skips decomposing a text made of characters that fold on their own; the words
    must be those of folding the whole text (which ``article_terms`` and the queries rely on)."""
    from monitor.match.text import _CJK_RE, _PLAIN_WORD_RE, SHORT_TEXT, WORD_RE, strip_accents
    from monitor.match.text import words as split

    for t in (text, " ".join([text] * (SHORT_TEXT // max(len(text), 1) + 1))):  # short and long
        low = t.lower() if t.isascii() else strip_accents(t.casefold())
        assert split(t) == (WORD_RE if _CJK_RE.search(low) else _PLAIN_WORD_RE).findall(low)


@settings(max_examples=3000, deadline=None)
@given(st.text(st.one_of(st.characters(), st.sampled_from(list("_,.'-\u00ad\u200b\u2019\u201c\u2014\u2026£©\x1c\u3000\ud800 ")),
                         st.sampled_from(list("abcабв1"))), max_size=40))
def test_word_runs_from_string_operations_equal_the_regex(text: str) -> None:
    """``words`` splits at whitespace once punctuation is spaced out instead of running the
    ``\\w+`` regex (a Unicode table look-up per character): the pieces must be the regex's runs,
    on any text (underscores, soft hyphens, lone surrogates, every script)."""
    from monitor.match.text import _PLAIN_WORD_RE, SHORT_TEXT, _word_runs

    long = text * (SHORT_TEXT // max(len(text), 1) + 1)  # short texts take the regex itself
    assert len(long) >= SHORT_TEXT or not text
    assert _word_runs(long) == _PLAIN_WORD_RE.findall(long)
    assert _word_runs(text) == _PLAIN_WORD_RE.findall(text)


@settings(max_examples=2000, deadline=None)
@example("a \u0345 b", False)  # a lone iota subscript: a word to ``words``, none to quoting, which then failed
@given(st.text(st.one_of(st.characters(), st.sampled_from(list("_,.'-\u00ad\u2019\u2014\u2026\u00bd\u0301\u3099\ud800 \n")),
                         st.sampled_from(list("abcAéЁйї東京が1"))), max_size=60), st.booleans())
def test_token_offsets_are_the_regex_words_mapped_back_to_the_text(text: str, long: bool) -> None:
    """Quoting's words with their offsets (``tokens``, found by string operations) are the word
    regex's matches over the accent-stripped text, each mapped back to the characters it came
    from (a highlight must cover exactly the word in the original text)."""
    from monitor.match.text import SHORT_TEXT, WORD_RE, strip_accents, tokens, words

    if long:  # long texts take the string operations, short ones the regex itself
        text = text * (SHORT_TEXT // max(len(text), 1) + 1)
    if strip_accents(text) == text:
        stripped, index = text, list(range(len(text) + 1))
    else:  # each character's own stripped form, as quoting maps offsets back (U+0345, the one
        # mark casefold makes a letter, is that letter: ``words`` folds case first)
        parts = [strip_accents(ch) or strip_accents(ch.casefold()) for ch in text]
        stripped = "".join(parts)
        index = [i for i, p in enumerate(parts) for _ in p] + [len(text)]
    found = list(WORD_RE.finditer(stripped))
    t = tokens(text)
    assert t.cased == [m.group() for m in found]
    assert t.spans == [(index[m.start()], index[m.end() - 1] + 1) for m in found]
    assert t.words == words(text) and tokens(text, words(text)) == t


_QUERY_ATOMS = ["a", "AND", "OR", "NOT", "NEAR/3", "ONEAR/2", "NEARBY", "SENT", "(", ")", '"x y"', '"x',
                '"x y"~2', "-", "+", "-a", "title:x", "site:a.b", "@e1", "!Bob", "ab*", "w?rd", "Ёлка", "北京"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_QUERY_ATOMS), min_size=1, max_size=8), st.lists(st.sampled_from([" ", "", "  ", "\t"]),
                                                                                min_size=8, max_size=8))
def test_query_tokens_from_one_findall_equal_the_token_by_token_scan(atoms: list[str], gaps: list[str]) -> None:
    """A query without about() is tokenized by one findall, the columns counted from the spaces
    before each token; the token-by-token scan (kept for about()) must give the same tokens."""
    from monitor.match.query import QuerySyntaxError, _tokenize, _tokenize_about

    def tokens(tokenize: Callable[[str], list[Any]], q: str) -> object:
        try:
            return tokenize(q)
        except QuerySyntaxError as exc:  # the same error at the same column
            return exc.message, exc.column

    q = "".join(a + g for a, g in zip(atoms, gaps, strict=False))
    assert tokens(_tokenize, q) == tokens(_tokenize_about, q)
