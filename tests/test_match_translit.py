"""Names across scripts: an entity alias also matches its generated transliterations."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.match import Document, RuleSet
from monitor.match.translit import transliterations


@dataclass
class Entity:
    aliases: tuple[str, ...]
    inflect: bool = True


@pytest.mark.parametrize("alias", ["Токаев", "Tokayev"])
@pytest.mark.parametrize("text", ["Tokayev said", "Tokaev told reporters", "заявил Токаев",
                                  "по словам Токаева", "Токаєв заявив", "Tokajew sagte", "a déclaré Tokaïev"])
def test_alias_in_one_script_matches_the_others(alias: str, text: str) -> None:
    rules = RuleSet([("r", "@tokayev")], {"tokayev": Entity((alias,))})
    assert rules.matching(Document("", text)) == ["r"]


def test_kazakh_letters_and_chinese_need_their_own_alias() -> None:
    """Тоқаев (Kazakh қ) and 托卡耶夫 cannot be generated from Токаев: the README says so."""
    rules = RuleSet([("r", "@tokayev")], {"tokayev": Entity(("Токаев",))})
    assert rules.matching(Document("", "Тоқаев мәлімдеді")) == []
    assert rules.matching(Document("", "托卡耶夫表示")) == []
    both = RuleSet([("r", "@tokayev")], {"tokayev": Entity(("Токаев", "Тоқаев", "托卡耶夫"))})
    assert both.matching(Document("", "Тоқаевтың сөзі")) == ["r"]  # Kazakh genitive
    assert both.matching(Document("", "托卡耶夫表示")) == ["r"]


def test_generated_spellings() -> None:
    assert {"Tokayev", "Tokaev", "Tokajew", "Tokaïev", "Токаєв"} <= transliterations("Токаев")
    assert {"Токаев", "Токаєв"} <= transliterations("Tokayev")
    assert "Зеленский" in transliterations("Zelensky")
    assert transliterations("托卡耶夫") == {"托卡耶夫"}
