"""The statement behind a match: the sentence(s) holding the evidence, and who said it.

Speaker attribution is pattern-based, for English and Russian (and Kazakh "деді"): a quotation
closed by '..., Tokayev said' or '..., — заявил Токаев', opened by 'Tokayev said: "...', or
reported speech in the sentence itself ('Tokayev said that', 'по словам Токаева'). A pronoun
("he said", "сказал он") resolves to the last named speaker before it.
"""

from __future__ import annotations

import re

from monitor.match.text import split_sentences
from monitor.match.types import RuleMatch, Statement

_UP = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІЇЄҐ"
_NAME_WORD = rf"[{_UP}](?:[\w’'\-]+|\.)"
_NAME = (rf"(?:(?:the|The)\s+)?{_NAME_WORD}(?:\s+(?:of\s+(?:the\s+)?)?{_NAME_WORD}){{0,4}}")
# A lowercase title before a name after the verb: "заявил президент Казахстана Касым-Жомарт Токаев".
_TITLE = (r"(?:(?:президент|премьер-министр|министр|глава|лидер|спикер|председатель|посол|"
          r"представитель|пресс-секретарь|president|prime\s+minister|minister|spokesman|"
          r"spokeswoman|spokesperson|ambassador|leader)\s+(?:[\w-]+\s+){0,2}?)")
_WHO = rf"(?:{_TITLE}?{_NAME})"
_PRON_EN = r"(?:he|she|they|He|She|They)"
_PRON_RU = r"(?:он|она|они)"
_VERB_EN = (r"(?:said|says|told|added|stated|noted|stressed|emphasi[sz]ed|summari[sz]ed|continued|"
            r"explained|declared|announced|wrote|replied|insisted|warned|argued|claimed|concluded|"
            r"underlined|pointed out|remarked|commented|recalled|asked|urged|spoke)")
_VERB_RU = (r"(?:заявил|сказал|отметил|подчеркнул|добавил|сообщил|пояснил|написал|заключил|"
            r"резюмировал|уточнил|считает|говорит|признал|предупредил|ответил|выступил|деді|айтты|мәлімдеді)"
            r"(?:а|и)?")
_CLOSE = r"[\"”»“]"
_OPEN = r"[\"“«„]"

_AFTER_EN = [
    re.compile(rf"{_CLOSE}\s*,?\s*(?P<who>{_NAME}|{_PRON_EN})\s+{_VERB_EN}\b"),
    re.compile(rf"{_CLOSE}\s*,?\s*{_VERB_EN}\s+(?P<who>{_WHO})"),
]
_AFTER_RU = [
    re.compile(rf"{_CLOSE}\s*,?\s*[—–-]+\s*{_VERB_RU}\s+(?P<who>{_WHO}|{_PRON_RU})"),
    re.compile(rf"{_CLOSE}\s*,?\s*[—–-]+\s*(?P<who>{_NAME}|{_PRON_RU})\s+{_VERB_RU}\b"),
]
_BEFORE = [
    re.compile(rf"(?P<who>{_NAME}|{_PRON_EN})\s+{_VERB_EN}[^\"“«.]{{0,40}}[:,]\s*{_OPEN}"),
    re.compile(rf"(?P<who>{_NAME}|{_PRON_RU})\s+{_VERB_RU}[^\"“«.]{{0,40}}:\s*{_OPEN}"),
]
_INDIRECT = [
    re.compile(rf"(?P<who>{_NAME}|{_PRON_EN})\s+(?:also\s+|has\s+|had\s+)?{_VERB_EN}\b"),
    re.compile(rf"\b{_VERB_EN}\s+by\s+(?P<who>{_NAME})"),
    re.compile(rf"\b[Aa]ccording\s+to\s+(?P<who>{_NAME})"),
    re.compile(rf"(?P<who>{_NAME})\s+(?:также\s+)?{_VERB_RU}\b"),
    re.compile(rf"\b{_VERB_RU}\s+(?P<who>{_WHO})"),
    re.compile(rf"[Пп]о\s+словам\s+(?P<who>{_NAME})"),
]
# The sentence after a statement that says who made it: "This was announced by ...".
_NEXT = [
    re.compile(rf"^\W*(?:This|That|It)\s+was\s+{_VERB_EN}\s+by\s+(?P<who>{_NAME})"),
    re.compile(rf"^\W*Об\s+этом\s+(?:\w+\s+)?{_VERB_RU}\s+(?P<who>{_NAME})"),
]
_PRONOUNS = {"he", "she", "they", "он", "она", "они"}
_NOT_NAMES = {"this", "that", "it", "the", "there", "here", "we", "i", "you", "это", "в", "на",
              "и", "но", "а", "as", "in", "on", "but", "and", "if", "when", "so", "yes", "no"}


def _clean(who: str) -> str | None:
    who = who.strip().rstrip(".,")
    if who[:4].lower() == "the ":
        who = who[4:]
    first = who.split()[0].lower() if who.split() else ""
    if not who or (first in _NOT_NAMES and who.lower() not in _PRONOUNS):
        return None
    return who


def _paragraph(text: str, start: int, end: int) -> tuple[int, int]:
    ps = text.rfind("\n", 0, start) + 1
    pe = text.find("\n", end)
    return ps, len(text) if pe < 0 else pe


def _first(patterns: list[re.Pattern[str]], text: str, start: int, end: int) -> str | None:
    best: tuple[int, str] | None = None
    for rx in patterns:
        for m in rx.finditer(text, start, end):
            who = _clean(m.group("who"))
            if who and (best is None or m.start() < best[0]):
                best = (m.start(), who)
            if who:
                break
    return best[1] if best else None


def _last_named_speaker(text: str, before: int) -> str | None:
    last: tuple[int, str] | None = None
    for rx in _AFTER_EN + _AFTER_RU + _BEFORE + _INDIRECT:
        for m in rx.finditer(text, 0, before):
            who = _clean(m.group("who"))
            if who and who.lower() not in _PRONOUNS and (last is None or m.start() > last[0]):
                last = (m.start(), who)
    return last[1] if last else None


def find_speaker(text: str, start: int, end: int) -> str | None:
    """Who made the statement at text[start:end], if the text says so; pronouns resolved."""
    ps, pe = _paragraph(text, start, end)
    who = (_first(_AFTER_EN + _AFTER_RU, text, start, pe)
           or _first(_INDIRECT, text, start, end)
           or _first(_BEFORE, text, ps, end)
           or _first(_NEXT, text[end:pe].lstrip(), 0, pe - end))
    if who and who.lower() in _PRONOUNS:
        who = _last_named_speaker(text, start)
    return who


def body_statements(body: str, match: RuleMatch) -> list[Statement]:
    """Every body sentence holding a hit of the match (the match quotes only the first few).

    A re-alert must see them all: the new statement is often further down in a later copy.
    """
    spans = [(h.start, h.end) for h in match.hits if h.field == "body"]
    out = []
    for a, b in split_sentences(body):
        hl = tuple((x - a, y - a) for x, y in spans if a <= x and y <= b)
        if hl:
            out.append(Statement(field="body", start=a, end=b, text=body[a:b], highlights=hl,
                                 speaker=find_speaker(body, a, b)))
    return out
