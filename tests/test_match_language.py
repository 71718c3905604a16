"""The rule language, case by case: query, text, expected. Texts are title + body; a case's text
is the body unless it contains a newline (then the first line is the title)."""

from __future__ import annotations

import pytest

from monitor.config import EntityConfig
from monitor.match import Document, QuerySyntaxError, RuleSet, compile_query
from monitor.match.evaluate import plain_title_body
from tests.match_reference import reference_match

ENTITIES = {
    "kazakhstan": EntityConfig("kazakhstan", ("Kazakhstan", "Казахстан", "Қазақстан"), True),
    "tokayev": EntityConfig("tokayev", ("Tokayev", "Tokaev", "Токаев", "Тоқаев", "Kassym-Jomart Tokayev"), True),
    "moscow": EntityConfig("moscow", ("Moscow", "Москва"), True),
    "russia": EntityConfig("russia", ("Russia", "Россия"), True),
    "plain": EntityConfig("plain", ("Токаев",), False),
    "beijing": EntityConfig("beijing", ("北京",), False),
}

CASES: list[tuple[str, str, bool]] = [
    # terms: whole words, case and accents folded, no stemming
    ("mediator", "Kazakhstan is not a Mediator.", True),
    ("mediator", "They are mediators.", False),
    ("mediator", "Mediation is hard.", False),
    ("Türkiye", "Turkiye hosted talks.", True),
    ("Turkiye", "TÜRKİYE hosted talks.", True),
    ("café", "a CAFE in Paris", True),
    ("елка", "Ёлка в Кремле", True),
    ("art", "the start of talks", False),
    # apostrophes and hyphens
    ("Kazakhstan", "Kazakhstan's president spoke.", True),
    ("Kazakhstan's", "Kazakhstan’s president spoke.", True),
    ("Kazakhstan’s", "Kazakhstan's president spoke.", True),
    ("Kassym-Jomart", "Kassym Jomart Tokayev spoke.", True),
    ("Kassym-Jomart", "Kassym-Jomart Tokayev spoke.", True),
    ('"Kassym Jomart"', "Kassym-Jomart Tokayev spoke.", True),
    ("Russian-Ukrainian", "the Russian Ukrainian war", True),
    # numbers
    ("2025", "On 24 September 2025 he spoke.", True),
    ("1,000", "1,000 people came", True),
    ('"1 000"', "1,000 people came", True),
    ("100", "1,000 people came", False),
    # phrases and slop
    ('"venue for negotiations"', "a venue for negotiations and meetings", True),
    ('"venue for negotiations"', "a venue for the negotiations", False),
    ('"venue for negotiations"~1', "a venue for the negotiations", True),
    ('"venue negotiations"~2', "a venue for the negotiations", True),
    ('"venue negotiations"~1', "a venue for the negotiations", False),
    ('"negotiations venue"~3', "a venue for the negotiations", False),
    ('"good services"', 'to perform "good services" as a place', True),
    # boolean
    ("Kazakhstan AND mediator", "Kazakhstan is a mediator", True),
    ("Kazakhstan AND mediator", "Kazakhstan is a host", False),
    ("Kazakhstan mediator", "Kazakhstan is a mediator", True),
    ("Kazakhstan OR mediator", "a mediator was named", True),
    ("Kazakhstan NOT mediator", "Kazakhstan is a mediator", False),
    ("Kazakhstan NOT mediator", "Kazakhstan is a host", True),
    ("Kazakhstan -mediator", "Kazakhstan is a mediator", False),
    ("Kazakhstan -mediator", "Kazakhstan is a host", True),
    ("NOT mediator AND Kazakhstan", "Kazakhstan is a host", True),
    ("+Kazakhstan +host", "Kazakhstan is a host", True),
    ('Kazakhstan -"a host"', "Kazakhstan is a host", False),
    ("Kazakhstan -(mediator OR guest)", "Kazakhstan is a host", True),
    ("Kazakhstan -(mediator OR host)", "Kazakhstan is a host", False),
    ("+Kazakhstan +mediator", "Kazakhstan is a host", False),
    ("Kazakhstan AND (mediator OR host)", "Kazakhstan is a host", True),
    ("Kazakhstan AND mediator OR host", "a host", True),  # AND binds tighter than OR
    ("Kazakhstan AND (mediator OR host)", "a host", False),
    ("Kazakhstan OR Uzbekistan AND mediator", "Kazakhstan alone", True),
    ("kazakhstan and mediator", "Kazakhstan is a mediator", False),  # lowercase "and" is a word
    ("kazakhstan and mediator", "Kazakhstan and a mediator", True),
    # NEAR / ONEAR / SENT
    ("Kazakhstan NEAR/3 mediator", "Kazakhstan is not a mediator", True),
    ("Kazakhstan NEAR/2 mediator", "Kazakhstan is not a mediator", False),
    ("mediator NEAR/3 Kazakhstan", "Kazakhstan is not a mediator", True),
    ("Kazakhstan ONEAR/3 mediator", "Kazakhstan is not a mediator", True),
    ("mediator ONEAR/3 Kazakhstan", "Kazakhstan is not a mediator", False),
    ("Kazakhstan NEAR/0 mediator", "Kazakhstan mediator", True),
    ("Kazakhstan NEAR/1 mediator", "Kazakhstan — yes, the mediator!", False),
    ("Kazakhstan NEAR/2 mediator", "Kazakhstan — yes, the mediator!", True),  # punctuation is no word
    ("Kazakhstan NEAR/3 mediator", "Kazakhstan. It is a mediator.", True),  # NEAR crosses sentences
    ("Kazakhstan SENT mediator", "Kazakhstan. It is a mediator.", False),
    ("Kazakhstan SENT mediator", "Kazakhstan is, as said, a mediator.", True),
    ("Kazakhstan SENT mediator", "Kazakhstan met U.S. officials as a mediator.", True),  # "U.S." no end
    ("Казахстан SENT посредник", "Казахстан провел встречу в г. Астана как посредник.", True),
    ("Kazakhstan SENT mediator", "Kazakhstan met Dr. Smith, a mediator.", True),
    ('Kazakhstan NEAR/10 (mediator OR "venue for negotiations")', "Kazakhstan offered itself as a venue for negotiations", True),
    ('Kazakhstan NEAR/2 (mediator OR "venue for negotiations")', "Kazakhstan offered itself as a venue for negotiations", False),
    ('(Kazakhstan OR Astana) NEAR/3 (talks OR summit)', "Astana will host a summit", True),
    ('(Kazakhstan OR Astana) NEAR/2 (talks OR summit)', "Astana will host a summit", False),
    ("(Kazakhstan AND Astana) NEAR/3 summit", "Kazakhstan: Astana summit", True),
    ("(Kazakhstan AND Astana) NEAR/1 summit", "Kazakhstan will host, in Astana, a summit", False),
    ("(Putin NEAR/2 Zelensky) NEAR/3 Astana", "Putin and Zelensky may meet in Astana", True),
    ("(Putin NEAR/2 Zelensky) NEAR/1 Astana", "Putin and Zelensky may meet in Astana", False),
    ("Kazakhstan NEAR/3 Kazakhstan", "Kazakhstan is big", False),
    ("Kazakhstan NEAR/3 Kazakhstan", "Kazakhstan and Kazakhstan", True),
    ("title:Kazakhstan NEAR/5 mediator", "Kazakhstan news\nKazakhstan is a mediator", False),
    # wildcards
    ("negotiat*", "negotiations are underway", True),
    ("negotiat*", "renegotiation is needed", False),
    ("mediator*", "they are mediators", True),
    ("wom?n", "a woman spoke", True),
    ("wom?n", "a womman spoke", False),
    ("посредни*", "Казахстан не является посредником", True),
    # case-sensitive
    ("!AIDS", "The AIDS epidemic", True),
    ("!AIDS", "hearing aids", False),
    ("!AIDS OR cure", "hearing aids", False),
    # fields
    ("title:Kazakhstan", "Kazakhstan news\nnothing here", True),
    ("title:Kazakhstan", "Other news\nKazakhstan is here", False),
    ("body:Kazakhstan", "Other news\nKazakhstan is here", True),
    ('title:"good services"', '"Good services" offered\nbody', True),
    ("title:(mediator OR host)", "Kazakhstan as host\nbody", True),
    # entities: every spelling and script, inflection, no fuzziness
    ("@tokayev", "Tokaev said", True),
    ("@tokayev", "Тоқаев айтты", True),
    ("@tokayev", "заявил Токаеву вчера", True),
    ("@tokayev", "встреча с Токаевым", True),
    ("@tokayev", "Тоқаевтың сөзі", True),
    ("@tokayev", "Kassym Jomart Tokayev spoke", True),
    ("@tokayev", "Tokarev spoke", False),
    ("@tokayev", "Токарев сказал", False),
    ("@plain", "встреча с Токаевым", False),  # inflect = false: exact forms only
    ("@kazakhstan", "в Казахстане", True),
    ("@kazakhstan", "Қазақстанда өтті", True),
    ("@kazakhstan", "Қазақстанның президенті", True),
    ("@kazakhstan", "Kazakhstan's capital", True),
    ("@kazakhstan", "Kazakhstani officials", False),
    ("@moscow", "из Москвы", True),
    ("@moscow", "в Москве", True),
    ("@russia", "из России", True),
    ("@russia", "Росією", False),
    ("@kazakhstan NEAR/15 посредник*", "Казахстан не является посредником в конфликте", True),
    # mixed scripts and CJK
    ("Kazakhstan AND Казахстан", "Kazakhstan (Казахстан) news", True),
    ("北京", "我们在北京见面", True),
    ("北京大学", "我们在北京见面", False),
    ('"北京"', "我们在北京见面", True),
    ("@beijing NEAR/2 见面", "我们在北京见面", True),
    ("Москва", "МОСКВА, 24 сентября", True),
]


def _doc(text: str) -> Document:
    if "\n" in text:
        title, body = plain_title_body(text)
        return Document(title=title, body=body)
    return Document(title="", body=text)


@pytest.mark.parametrize(("query", "text", "expected"), CASES, ids=[f"{i}:{c[0]}" for i, c in enumerate(CASES)])
def test_query_table(query: str, text: str, expected: bool) -> None:
    rules = RuleSet([("r", query)], ENTITIES)
    doc = _doc(text)
    assert bool(rules.matching(doc)) is expected
    assert bool(rules.matching_each(doc)) is expected
    assert reference_match(compile_query(query, ENTITIES), doc) is expected


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60


META_DOC = Document(title="Talks", body="Kazakhstan offers talks", site="www.astanatimes.com",
                    source="The Astana Times", lang="en", author="Aigerim Seitkali")


@pytest.mark.parametrize(("query", "expected"), [
    ("talks site:astanatimes.com", True),
    ("talks site:times.com", False),
    ("talks AND NOT site:astanatimes.com", False),
    ('talks source:"Astana Times"', True),
    ("talks source:Kazinform", False),
    ("talks lang:en", True),
    ("talks lang:ru", False),
    ("talks author:Seitkali", True),
    ("talks author:Smith", False),
])
def test_metadata_fields(query: str, expected: bool) -> None:
    assert bool(RuleSet([("r", query)]).matching(META_DOC)) is expected
    assert reference_match(compile_query(query), META_DOC) is expected


@pytest.mark.parametrize(("query", "column", "words"), [
    ("Kazakhstan AND (mediator OR", 27, "ends where a term"),
    ("(Kazakhstan", 0, "missing ')'"),
    ("Kazakhstan)", 10, "without a matching"),
    ('"venue for', 0, "unclosed quote"),
    ("*stan", 0, "start with a wildcard"),
    ("ne*", 0, "at least 3 letters"),
    ("wo?d", 0, "at least 3 letters"),
    ("neg*ate", 3, "only at the end"),
    ("Kazakhstan NEAR mediator", 11, "NEAR/n"),
    ("Kazakhstan NEAR/5 NOT mediator", 18, "NOT cannot be a side"),
    ("@nowhere NEAR/3 x", 0, "unknown entity '@nowhere'"),
    ("titel:Kazakhstan", 0, "unknown field 'titel'"),
    ("NOT Kazakhstan", 0, "at least one positive"),
    ("Kazakhstan OR OR mediator", 14, "expected a term"),
    ("()", 0, "empty parentheses"),
    ('"x"~', 3, "~n"),
])
def test_syntax_errors_point_at_the_problem(query: str, column: int, words: str) -> None:
    with pytest.raises(QuerySyntaxError) as exc:
        compile_query(query, ENTITIES)
    assert words in exc.value.message
    assert exc.value.column == column
    caret = exc.value.describe().splitlines()[-1]
    assert caret.index("^") - 4 == column
