"""The event signature's faster walks (``events._capitalised``, ``events._caseless``) find what
the plain definitions below find, on texts mixing scripts, sentence ends, hyphens, apostrophes,
katakana and digits, and on the real pages' texts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.syndicate import build, load_ground_truth
from monitor.story.events import (
    _CALENDAR,
    _ENDS,
    _KATAKANA,
    _PARTS,
    _WORD,
    _capitalised,
    _caseless,
    name_key,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dedup"


def _capitalised_plainly(paragraphs: Sequence[str]) -> list[tuple[int, str, bool]]:
    """Every word's gap to the word before looked at, every word split at its joiners."""
    out: list[tuple[int, str, bool]] = []
    for n, para in enumerate(paragraphs):
        end = 0
        for m in _WORD.finditer(para):
            gap = para[end:m.start()]
            initial = end == 0 or any(c in _ENDS for c in gap)
            end = m.end()
            w = m.group()
            if len(w) < 2 or not w[0].isupper():
                continue
            for part in _PARTS.split(w):
                if len(part) >= 2 and part[0].isupper() and part.lower() not in _CALENDAR:
                    k = name_key(part)
                    if len(k) >= 2:
                        out.append((n, k, initial))
        for m in _KATAKANA.finditer(para):
            k = name_key(m.group())
            if len(k) >= 2:
                out.append((n, k, False))
    return out


def _caseless_plainly(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return sum(c.lower() != c.upper() for c in letters) < 0.5 * len(letters) if letters else False


# Latin (with capitals and a dotted I), Cyrillic, Greek, CJK, katakana, Arabic, Thai, the joiners,
# sentence ends, digits, an underscore and spaces
_ALPHABET = ("AaBbTtKkOoVvIıİßÄäЁёТтКкОоАаВвΣσΩω中国語日本カタナトキョウالعربيةไทย"
             "-'\u2019.!?\u3002:;\u2014\u2013,0123456789_ \u00a0")
_texts = st.text(alphabet=_ALPHABET, max_size=80)


@settings(max_examples=400, deadline=None)
@given(st.lists(_texts, max_size=4))
def test_capitalised_finds_what_the_plain_walk_finds(paragraphs: list[str]) -> None:
    assert _capitalised(paragraphs) == _capitalised_plainly(paragraphs)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_caseless_decides_as_counting_every_letter(text: str) -> None:
    assert _caseless(text) is _caseless_plainly(text)


def test_the_same_on_real_articles() -> None:
    corpus = build(load_ground_truth(FIXTURE), variants=2, seed=5)
    texts = [(item.title, "\n".join(item.paragraphs or [])) for item in corpus.items]
    assert len(texts) > 10
    for title, text in texts:
        paragraphs = [title] + [p for p in text.split("\n") if p.strip()]
        assert _capitalised(paragraphs) == _capitalised_plainly(paragraphs)
        assert _caseless(title + "\n" + text) is _caseless_plainly(title + "\n" + text)
