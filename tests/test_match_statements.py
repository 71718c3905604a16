"""What a match carries: the statement sentence(s), highlights, and who said it; and the bundled
config's rule on the seed article (the product's acceptance case)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.match import Document, RuleSet, rule_set
from monitor.match.evaluate import plain_title_body
from monitor.match.text import split_sentences
from tests.harness import FIXTURES, ROOT

SEED = FIXTURES / "seed" / "kazakhstan-good-services.txt"
ENV = {"SMTP_HOST": "smtp.example.org", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p",
       "ALERT_EMAIL_FROM": "a@example.org", "ALERT_EMAIL_TO": "b@example.org",
       "WEBHOOK_URL": "https://hooks.example.org/x"}


def _bundled_rules() -> RuleSet:
    return rule_set(load_config(ROOT / "config.toml", env=ENV))


def test_bundled_rule_quotes_the_seed_statement_and_its_speaker() -> None:
    """The sentence closest in meaning is quoted (quoted speech first), with its speaker."""
    title, body = plain_title_body(SEED.read_text(encoding="utf-8"))
    [m] = _bundled_rules().match(Document(title=title, body=body))
    assert m.rule == "kz-mediation"
    first = m.statements[0]
    assert first.field == "body"
    # The reporter's summary or the president's own words: both say it, both are his.
    assert first.text.startswith(("Kazakhstan does not see itself as a mediator in the settlement",
                                  '"Kazakhstan is not a mediator in the military conflict')), first.text
    # Tokayev is named as its speaker, also when the quote is the summary and the sentence
    # that names him ("This was announced by the President of Kazakhstan ...").
    assert first.speaker_entity == "tokayev", (first.text, first.speaker)
    assert {"Kazakhstan", "mediator"} <= set(first.text.split()) | {first.text[a:b] for a, b in first.highlights}
    assert body[first.start:first.end] == first.text
    # Offsets of hits point into the article text.
    for h in m.hits:
        assert (body if h.field == "body" else title)[h.start:h.end] == h.text


def test_bundled_rule_matches_russian_and_kazakh_reports() -> None:
    rules = _bundled_rules()
    ru = ("Токаев: Казахстан не посредник\n"
          "«Казахстан не является посредником в военном конфликте между Россией и Украиной», — "
          "заявил Токаев. Он добавил, что страна готова предоставить площадку для переговоров.")
    [m] = rules.match(Document(*plain_title_body(ru)))
    st = m.statements[0]
    assert "посредником" in st.text and st.speaker == "Токаев"
    kk = ("Тоқаев мәлімдеме жасады\nТоқаев Қазақстан Ресей мен Украина арасындағы делдал емес екенін, "
          "бірақ екі ел арасындағы келіссөздер үшін алаң беруге әзір екенін айтты.")
    assert [m.rule for m in rules.match(Document(*plain_title_body(kk)))] == ["kz-mediation"]
    assert rules.match(Document("Weather", "Kazakhstan expects snow in Astana tomorrow.")) == []


def test_near_across_a_sentence_boundary_quotes_both_sentences() -> None:
    rules = RuleSet([("r", "Kazakhstan NEAR/6 mediator")])
    body = "Nobody asked Kazakhstan. It is a mediator, officials said. Other news follows."
    [m] = rules.match(Document("", body))
    assert [s.text for s in m.statements] == ["Nobody asked Kazakhstan. It is a mediator, officials said."]


@pytest.mark.parametrize(("text", "sentence", "speaker"), [
    ('"We will not mediate," Tokayev said. Later news.', '"We will not mediate," Tokayev said.', "Tokayev"),
    ('"We will not mediate," said Kassym-Jomart Tokayev.', None, "Kassym-Jomart Tokayev"),
    ('Tokayev said: "We will not mediate."', None, "Tokayev"),
    ("Tokayev said that Kazakhstan will not mediate.", None, "Tokayev"),
    ("According to Tokayev, Kazakhstan will not mediate.", None, "Tokayev"),
    ("«Казахстан не будет посредником», — заявил Токаев.", None, "Токаев"),
    ("Токаев заявил: «Казахстан не будет посредником».", None, "Токаев"),
    ("По словам Токаева, Казахстан не будет посредником.", None, "Токаева"),
    ("Kazakhstan will not mediate, the weather was fine.", None, None),
    ("«Казахстан не будет посредником», — заявил президент Казахстана Касым-Жомарт Токаев.", None,
     "президент Казахстана Касым-Жомарт Токаев"),
    ('"We will not mediate," said Kazakh President Kassym-Jomart Tokayev.', None,
     "Kazakh President Kassym-Jomart Tokayev"),
    ("Kazakhstan will not mediate. This was announced by Kassym-Jomart Tokayev.", None, "Kassym-Jomart Tokayev"),
    ("Казахстан не будет посредником. Об этом заявил Токаев.", None, "Токаев"),
    ('Tokayev spoke first.\n"We will not mediate," he added.', None, "Tokayev"),
])
def test_speaker(text: str, sentence: str | None, speaker: str | None) -> None:
    rules = RuleSet([("r", "mediate* OR посредник*")])
    [m] = rules.match(Document("", text))
    if sentence:
        assert m.statements[0].text == sentence
    assert m.speaker == speaker


@pytest.mark.parametrize(("query", "text", "speaker"), [
    # The second sentence names the first one's speaker, and the rule's clauses make the quote
    # both: the lead-in inside the quote names its speaker, as it does after a one-sentence quote.
    ("broker AND Voss", "Norland does not count itself a broker in the dispute. "
     "This was announced by Foreign Minister Elara Voss.", "Elara Voss"),
    ("посредник* AND Воронов*", "Норландия не считает себя посредником в споре. "
     "Об этом заявил министр иностранных дел Илья Воронов.", "Илья Воронов"),
    ("Vermittler* AND Brandel", "Norland sieht sich nicht als Vermittler im Streit. "
     "Das sagte Präsident Emil Brandel am Dienstag.", "Emil Brandel"),
    # Each sentence has its own speaker: the person is named before the body.
    ("harbour AND strike", "The Norland Port Authority said the harbour would stay open. "
     "Its director, Tomas Erb, said the strike was unlawful.", "Tomas Erb"),
])
def test_two_sentence_quote_names_its_speaker(query: str, text: str, speaker: str) -> None:
    """A statement of two sentences is attributed as its sentences are when quoted alone."""
    [m] = RuleSet([("r", query)]).match(Document("", text))
    [st] = m.statements
    assert len(split_sentences(st.text)) == 2, st.text
    assert st.speaker_display == speaker


@pytest.mark.parametrize(("text", "expected"), [
    ("The U.S. Army arrived. Then it left.", ["The U.S. Army arrived.", "Then it left."]),
    ("Dr. Smith met J. Doe in Astana. They talked.", ["Dr. Smith met J. Doe in Astana.", "They talked."]),
    ("Встреча прошла в г. Астана. Потом все уехали.", ["Встреча прошла в г. Астана.", "Потом все уехали."]),
    ('He said: "No." Then he left!', ['He said: "No."', "Then he left!"]),
    ("First paragraph\nSecond one", ["First paragraph", "Second one"]),
    ("Price is 3.5 million. Fine.", ["Price is 3.5 million.", "Fine."]),
])
def test_sentence_splitter_knows_abbreviations(text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in split_sentences(text)] == expected


def _bundled_with(tmp_path: Path, old: str, new: str) -> tuple[str, list[str]]:
    """The bundled config with one edit, and the problems loading it reports."""
    cfg = (ROOT / "config.toml").read_text(encoding="utf-8").replace(old, new, 1)
    p = tmp_path / "config.toml"
    p.write_text(cfg, encoding="utf-8")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")  # the rule's examples, relative to the config
    with pytest.raises(ConfigError) as exc:
        load_config(p, env=ENV)
    return cfg, exc.value.problems


def test_malformed_query_in_config_names_rule_line_and_column(tmp_path: Path) -> None:
    cfg, [msg] = _bundled_with(tmp_path, "AND @ukraine AND", "AND @ukraine NEAR/15 NEAR/2")
    line_no = next(i + 1 for i, line in enumerate(cfg.splitlines()) if line.startswith("query ="))
    assert f"config.toml:{line_no}: rule 'kz-mediation': invalid query:" in msg
    query_line, caret_line = msg.splitlines()[-2:]
    assert query_line[caret_line.index("^"):].startswith("NEAR/2")


def test_about_inside_near_names_rule_line_and_column(tmp_path: Path) -> None:
    cfg, [msg] = _bundled_with(tmp_path, "@ukraine AND about(", "@ukraine NEAR/5 about(")
    line_no = next(i + 1 for i, line in enumerate(cfg.splitlines()) if line.startswith("query ="))
    assert f"config.toml:{line_no}: rule 'kz-mediation': invalid query: about() cannot be a side of NEAR" in msg
    query_line, caret_line = msg.splitlines()[-2:]
    assert query_line[caret_line.index("^"):].startswith('about("Kazakhstan says')


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('about("Kazakhstan says it is not a mediator between Russia and Ukraine but is ready to host negotiations")',
     'about("  ")', "about() needs a statement: the text is empty"),
    ('about("Kazakhstan says', 'about("' + "Kazakhstan says it will host talks. " * 12 + 'Kazakhstan says',
     "about() text is 529 characters; at most 400"),
])
def test_bad_about_text_names_rule_and_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    cfg, [msg] = _bundled_with(tmp_path, old, new)
    line_no = next(i + 1 for i, line in enumerate(cfg.splitlines()) if line.startswith("query ="))
    assert f"config.toml:{line_no}: rule 'kz-mediation'" in msg and expected in msg


def test_missing_counterexample_file_names_rule_and_line(tmp_path: Path) -> None:
    cfg, [msg] = _bundled_with(tmp_path, "rules/kz-mediation.counterexamples.txt", "rules/gone.txt")
    line_no = next(i + 1 for i, line in enumerate(cfg.splitlines()) if line.startswith("counterexamples ="))
    assert msg == (f"{tmp_path / 'config.toml'}:{line_no}: rule 'kz-mediation': counterexamples file "
                   f"'rules/gone.txt' does not exist (looked for {tmp_path / 'rules' / 'gone.txt'})")


def test_unknown_entity_in_config(tmp_path: Path) -> None:
    _, problems = _bundled_with(tmp_path, "'@tokayev AND", "'@kz AND")
    assert "unknown entity '@kz' (known: kazakhstan, tokayev, ukraine)" in problems[0]


def test_unusable_entity_alias_is_named_at_load(tmp_path: Path) -> None:
    cfg, problems = _bundled_with(tmp_path, '"كازاخستان"]', '"كازاخستان", "*stan"]')
    line_no = next(i + 1 for i, line in enumerate(cfg.splitlines()) if "*stan" in line)
    assert problems == [f"{tmp_path / 'config.toml'}:{line_no}: entity 'kazakhstan': alias '*stan': "
                        "a word cannot start with a wildcard"]


def test_huge_sentence_full_of_both_sides_quotes_a_bounded_number_of_pairs() -> None:
    """One 14,000-word "sentence" pairing every "the" with every "bird": quoting stays bounded."""
    from monitor.match.evaluate import MAX_EVIDENCE

    body = "the cat and the dog and the bird, " * 2000
    [m] = RuleSet([("r", "the SENT bird")]).match(Document("", body))
    assert 0 < len(m.hits) <= 2 * MAX_EVIDENCE
    [st] = m.statements
    # The alert quotes a window around the first matched words, not 14,000 words.
    assert st.text.startswith("the cat and the dog and the bird,") and st.text.endswith("…")
    assert len(st.text) <= 601 and st.text[:-1] == body[st.start:st.end]
    assert {st.text[a:b] for a, b in st.highlights} == {"the", "bird"}
