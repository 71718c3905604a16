"""Queries that check-config used to accept and that then never matched, or meant something
other than what the user wrote: a meaning rule written ``about ("...")`` (the word "about" AND
the phrase), an unknown ``lang:``, another engine's operators (``^2``, ``word~``, ``a|b``,
``near/5``, ``AROUND(3)``, ``[a TO b]``), a NUL, an empty query. Each is refused with the file,
line, column and a caret; the documented constructs around them still parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.match import QuerySyntaxError, parse_query
from monitor.match.query import About, And, Meta, Seq
from tests.harness import block, rule, run_monitor, webhook_channel, write_config


@pytest.mark.parametrize(("query", "column", "words"), [
    ('about ("Kazakhstan mediates")', 0, 'written about("...") in lower case with no space'),
    ('@x AND about  ("Kazakhstan mediates", 0.6)', 7, "no space before the parenthesis"),
    ('About("Kazakhstan mediates")', 0, 'quote it: "about"'),
    ("lang:klingon", 5, "unknown language 'klingon' in lang: (write a code the language detector reports: "),
    ("talks lang:en-US", 11, "write lang:en: languages are detected without a region"),
    ("Kazakhstan^2", 10, "boosts (^) are not supported"),
    ('"venue for negotiations"^3', 24, "boosts (^) are not supported"),
    ("title:Kazakhstan^2", 16, "boosts (^) are not supported"),
    ("mediator~", 8, "fuzzy words (word~) are not supported"),
    ("mediator~2 OR host", 8, "fuzzy words"),
    ("-mediator~0.8 host", 9, "fuzzy words"),
    ("Kazakhstan|Astana", 10, "'|' is not an operator: write OR"),
    ("Kazakhstan&&Astana", 10, "'&&' is not an operator: write AND"),
    ("Kazakhstan near/5 mediator", 11, "write A NEAR/n B"),
    ("Kazakhstan w/5 mediator", 11, "write A NEAR/n B"),
    ("Kazakhstan NEAR5 mediator", 11, "write NEAR/n"),
    ("Kazakhstan AROUND(5) mediator", 11, "AROUND(n) is not supported: write A NEAR/n B"),
    ("talks [2020 TO 2024]", 6, "ranges ([a TO b]) are not supported"),
    ("talks site:https://astanatimes.com/", 11, "site: takes a domain such as astanatimes.com"),
    ("talks site:astanatimes.com/politics", 11, "not a URL, path"),
    ("talks site:*.kz", 11, "wildcard"),
    ("talks author:Seit*", 17, "'*' is not supported here"),
    ('talks source:"Astana Times"~2', 27, "no ~n after it"),
    ("Kazakhstan\x00 mediator", 10, "control character U+0000 in the query"),
    ("Kazakhstan\x01 mediator", 10, "control character U+0001"),
])
def test_never_matching_queries_are_refused_at_their_column(query: str, column: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as exc:
        parse_query(query, {"x": _Entity(("X",))})
    assert words in exc.value.message, exc.value.message
    assert exc.value.column == column, exc.value.message
    assert exc.value.describe().splitlines()[-1] == "    " + " " * column + "^"


class _Entity:
    def __init__(self, aliases: tuple[str, ...]):
        self.aliases = aliases
        self.inflect = False


def test_the_documented_constructs_beside_the_refused_ones_still_parse() -> None:
    about = parse_query('@x AND about("Kazakhstan mediates", 0.6)', {"x": _Entity(("X",))})
    assert isinstance(about, And) and isinstance(about.children[1], About)
    # The word "about" quoted, or before a group of words: the user meant the word.
    for q in ('"about" ("Kazakhstan mediates")', "about (Kazakhstan OR Astana)"):
        tree = parse_query(q)
        assert isinstance(tree, And) and isinstance(tree.children[0], Seq), q
        assert tree.children[0].label in ('"about"', "about")
    assert parse_query('"venue negotiations"~2') == Seq(parse_query('"venue negotiations"').words, slop=2,  # type: ignore[union-attr]
                                                        label='"venue negotiations"~2')
    # Inside quotes the characters are the user's literal text: "E=mc^2" is its words.
    assert isinstance(parse_query('"E=mc^2"'), Seq)
    assert isinstance(parse_query("AT&T NEARBY ONEARTH"), And)
    assert parse_query("lang:KK") == Meta("lang", "kk")
    assert parse_query("site:www.AstanaTimes.com") == Meta("site", "astanatimes.com")
    assert parse_query('source:"Astana Times"') == Meta("source", "astana times")
    # A tab or a newline (a TOML multi-line query) is a space between terms.
    assert isinstance(parse_query("Kazakhstan\n\tAND mediator"), And)


def test_lang_codes_are_the_language_detectors() -> None:
    from monitor.extract.language import _identifier
    from monitor.match.query import DETECTED_LANGUAGES

    assert set(_identifier().nb_classes) == DETECTED_LANGUAGES


def test_a_nul_is_shown_as_a_symbol_with_the_caret_under_it() -> None:
    with pytest.raises(QuerySyntaxError) as exc:
        parse_query("Kazakhstan\x00 mediator")
    assert exc.value.describe().splitlines()[1:] == ["    Kazakhstan\u2400 mediator",
                                                     "              ^"]


def test_check_config_names_file_line_and_column_of_each_refused_query(tmp_path: Path) -> None:
    rules = [
        rule("meaning-with-space", 'about ("Kazakhstan says it is ready to host negotiations")', ["hook"]),
        rule("klingon", "talks lang:klingon", ["hook"]),
        rule("boost", "Kazakhstan^2 mediator", ["hook"]),
        '[[rule]]\nname = "nul"\nquery = "Kazakhstan\\u0000 mediator"\nchannels = ["hook"]\n\n',
        rule("empty", "", ["hook"]),
        rule("quoted-about", '"about" ("Kazakhstan mediates")', ["hook"]),
    ]
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}", *rules,
                       webhook_channel("hook", "http://example.org/hook"))
    lines = cfg.read_text(encoding="utf-8").splitlines()

    def query_line(name: str) -> int:
        at = next(i for i, text in enumerate(lines) if text in (f'name = "{name}"', f"name = {name!r}"))
        return next(i for i in range(at, len(lines)) if lines[i].startswith("query")) + 1

    r = run_monitor(cfg, "check-config")
    assert r.returncode == 2, r.stderr
    out = r.stderr.splitlines()

    def problem(name: str, message: str, shown: str, column: int) -> None:
        head = f"{cfg}:{query_line(name)}: rule '{name}': invalid query: {message}"
        i = next(i for i, text in enumerate(out) if text.startswith(head))
        assert out[i].endswith(f" at column {column + 1}"), out[i]
        assert out[i + 1:i + 3] == ["    " + shown, "    " + " " * column + "^"], out[i:i + 3]

    problem("meaning-with-space", 'a rule by meaning is written about("...") in lower case with no space '
            'before the parenthesis; for the word "about" itself, quote it: "about"',
            'about ("Kazakhstan says it is ready to host negotiations")', 0)
    problem("klingon", "unknown language 'klingon' in lang: (write a code the language detector "
            "reports: ace, af, am,", "talks lang:klingon", 11)
    assert ", kk, " in r.stderr and ", ru, " in r.stderr
    problem("boost", "boosts (^) are not supported", "Kazakhstan^2 mediator", 10)
    problem("nul", "control character U+0000 in the query", "Kazakhstan\u2400 mediator", 10)
    assert f"{cfg}:{query_line('empty')}: rule 'empty': 'query' is empty" in out
    assert "missing 'query'" not in r.stderr
    assert "quoted-about" not in r.stderr  # the word "about", quoted, is still a keyword rule
    assert sum(text.startswith(f"{cfg}:") for text in out) == 5, r.stderr


def test_a_missing_query_is_still_called_missing(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'm.db'}",
                       block("rule", name="no-query", channels=["hook"]),
                       webhook_channel("hook", "http://example.org/hook"))
    r = run_monitor(cfg, "check-config")
    assert r.returncode == 2
    assert "rule 'no-query': missing 'query'" in r.stderr, r.stderr
