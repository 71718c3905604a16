"""Words and sentences of a text, the same way for queries and articles.

Folding (case, accents, apostrophes and hyphens) must be identical on both sides, so it lives
here once. Two tokenizers share one regex: ``words`` is the per-article fast path (no offsets,
C-speed string operations only) and ``tokens`` keeps character offsets into the original text
for quoting. They are guaranteed to yield the same word sequence, because both tokenise the
same accent-stripped string.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import filterfalse

# Ideographic scripts are written without spaces: each character is a word of its own, so a
# query phrase of several characters matches as a character sequence.
# Kana voicing marks (U+3099, U+309A; NFKD splits が into か + U+3099) belong to the character
# before them: が and か are different syllables, and the mark is not a word of its own.
_CJK = "\u3040-\u3098\u309b-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006"
_VOICING = "\u3099\u309a"
WORD_RE = re.compile(rf"[{_CJK}][{_VOICING}]*|[^\W{_CJK}]+")
_CJK_RE = re.compile(rf"[{_CJK}]")
_PLAIN_WORD_RE = re.compile(r"\w+")  # the same as WORD_RE on text without CJK, twice as fast
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
# Vulgar fractions: NFKD turns ½ into 1⁄2, which would glue to a digit before it ("2½" -> "21").
_FRACTION = re.compile("[\u00bc-\u00be\u2150-\u215f\u2189]")
# Cyrillic letters whose decomposition looks like an accent but which are letters of their own
# (й is not и, ї is not і, ў is not у): put back together before accents are stripped.
_BREVE_LETTERS = [(unicodedata.normalize("NFD", c), c) for c in "йЙўЎ"]
_DIAERESIS_LETTERS = [(unicodedata.normalize("NFD", c), c) for c in "їЇ"]


def strip_accents(text: str) -> str:
    """Accent-insensitive form that keeps case (for ``!Term``): accents on Latin letters go,
    ё = е; Cyrillic й, ї, ў and kana voicing stay; a vulgar fraction is a number of its own."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    if "\u2044" in decomposed and _FRACTION.search(text):  # cheap test first: fractions are rare
        decomposed = unicodedata.normalize("NFKD", _FRACTION.sub(lambda m: f" {m.group(0)} ", text))
    for mark, letters in (("\u0306", _BREVE_LETTERS), ("\u0308", _DIAERESIS_LETTERS)):
        if mark in decomposed:
            for pair, letter in letters:
                decomposed = decomposed.replace(pair, letter)
    return _COMBINING.sub("", decomposed)


def fold(text: str) -> str:
    """Case- and accent-insensitive form: Türkiye = turkiye, Ёлка = елка."""
    if text.isascii():
        return text.lower()
    return strip_accents(text.casefold())


_HEAD = 512  # characters ``words`` looks at before scanning a whole text


def words(text: str) -> list[str]:
    """Folded words of a text, in order, without offsets (the per-article fast path)."""
    if text.isascii():
        return _word_runs(text.lower())
    simple = _simple_folds()
    # The first characters decide most texts (Chinese, Japanese: the first one sends them to the
    # full fold below): the rest is scanned only while a simple fold is still possible.
    special = set(simple.special.findall(text, 0, _HEAD))
    if special <= simple.changing:
        special.update(simple.special.findall(text, _HEAD))
    if special <= simple.changing:
        # Only characters that fold on their own, as lowercase or to a word (``_simple_folds``):
        # the same words without decomposing and re-scanning the whole text.
        low = text.lower()
        for ch in {ch.lower() for ch in special}:
            low = low.replace(ch, simple.folds[ch])
        return _word_runs(low)
    low = strip_accents(text.casefold())
    return WORD_RE.findall(low) if _CJK_RE.search(low) else _word_runs(low)


# ASCII characters that are no word character (\w: letters, digits, "_"), as spaces.
_ASCII_GAPS = bytes(c if chr(c).isalnum() or chr(c) == "_" or c >= 128 else 32 for c in range(256))
_ASCII_GAPS_STR = {c: " " for c in range(128) if _ASCII_GAPS[c] == 32 and not chr(c).isspace()}
SHORT_TEXT = 160  # characters
# The punctuation outside ASCII that news text is full of (quotes, dashes, ellipsis).
_TYPOGRAPHIC = "’“”‘«»„—–…•·"


def _word_runs(low: str) -> list[str]:
    """``_PLAIN_WORD_RE.findall(low)`` (the runs of word characters), from C string operations:
    the regex tests every character against Unicode's tables (two thirds of an article's index).

    Every punctuation mark becomes a space and the text is split at whitespace (which is no
    word character either); a word character is one that ``str.isalnum`` accepts, or "_", so
    the pieces are the runs once every piece is alphanumeric. A piece that is not still holds a
    rarer mark (£, ©, a soft hyphen): those become spaces too and the text is split again.
    Below ~150 characters (titles, names, an entity's alias forms) the regex costs less than
    these steps' fixed cost."""
    if len(low) < SHORT_TEXT:
        return _PLAIN_WORD_RE.findall(low)
    if low.isascii():
        s = low.translate(_ASCII_GAPS_STR)
    else:
        # UTF-8 bytes of non-ASCII characters are all >= 0x80: only ASCII ones are translated.
        s = low.encode("utf-8", "surrogatepass").translate(_ASCII_GAPS).decode("utf-8", "surrogatepass")
        for ch in _TYPOGRAPHIC:
            if ch in s:
                s = s.replace(ch, " ")
    pieces = s.split()
    if all(map(str.isalnum, pieces)):
        return pieces
    marks = {ch for p in filterfalse(str.isalnum, pieces) for ch in p if not ch.isalnum()}
    if "_" in marks:  # a word character that is not alphanumeric
        return _PLAIN_WORD_RE.findall(low)
    for ch in marks:
        s = s.replace(ch, " ")
    return s.split()


@dataclass(frozen=True)
class _SimpleFolds:
    # Any character outside the table, or one whose fold differs from its lowercase (one scan
    # of the text finds both kinds) ...
    special: re.Pattern[str]
    changing: frozenset[str]  # ... the second kind (É, é, Ё, ё, ß): their lowercase is in folds
    folds: dict[str, str]  # lowercase characters whose fold differs (é, ё, ß) and their folds


# Latin (with Latin-1 and Extended-A/B), Cyrillic and general punctuation: the scripts of nearly
# every article we read that is not written in Chinese.
_SIMPLE_RANGES = ((0x80, 0x24F), (0x400, 0x52F), (0x2000, 0x206F))


@lru_cache(maxsize=1)
def _simple_folds() -> _SimpleFolds:
    """The characters whose fold needs no context, so that a text made of them has the words of
    its lowercase form with a few characters replaced.

    Folding a text (casefold, NFKD, accents removed, й/ї/ў put back, fractions spaced) equals
    folding it character by character when it holds no combining mark (a decomposed letter's
    marks then stay behind their own letter) and no fraction. Its words are then those of
    ``text.lower()`` when each character lowercases to one character that folds as the
    character does, and either is its own fold, or is a word character folding to a word
    (é -> e, ё -> е, ß -> ss), or is no word character before or after (… -> ...). The rest (marks,
    ½, Ŀ, İ, whose lowercase is two characters, and every other script) takes the full fold.
    Built on first use from these rules, over ~1,500 characters (a few ms)."""
    word = re.compile(r"\w")
    folds: dict[str, str] = {}
    other: list[str] = []
    for lo, hi in _SIMPLE_RANGES:
        for ch in map(chr, range(lo, hi + 1)):
            low = ch.lower()
            if len(low) != 1 or unicodedata.category(ch)[0] == "M" or fold(ch) != fold(low):
                other.append(ch)
                continue
            f = fold(low)
            if f == low:
                continue
            if word.match(low) and _PLAIN_WORD_RE.fullmatch(f) and not _CJK_RE.search(f):
                folds[low] = f
            elif not word.match(low) and f and not word.search(f):
                continue
            else:
                other.append(ch)
    changing = frozenset(ch for lo, hi in _SIMPLE_RANGES for ch in map(chr, range(lo, hi + 1))
                         if ch not in other and ch.lower() in folds)
    # One class of the characters that need nothing but lower(), as ranges (one test per
    # character of an article).
    allowed = sorted({*range(0x80), *(c for lo, hi in _SIMPLE_RANGES for c in range(lo, hi + 1))}
                     - {ord(ch) for ch in other} - {ord(ch) for ch in changing})
    runs: list[list[int]] = []
    for c in allowed:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    ranges = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs)
    return _SimpleFolds(special=re.compile(f"[^{ranges}]"), changing=changing, folds=folds)


def terms(title: str, body: str) -> str:
    """An article's distinct folded words (title and body), sorted, each between spaces:
    " astana kazakhstan mediator ". Stored beside the article (``article_terms``) so the rule
    editor's preview can narrow in SQL with ``LIKE '% word %'`` (or ``'% stem%'``) and miss no
    article the matcher would match: the words are this module's, the same the evaluator sees
    (``DocIndex.uniq``). A change to ``words`` or ``fold`` therefore needs a migration that
    rebuilds ``article_terms`` (see migrations/versions/1402_web_terms.py)."""
    distinct = set(words(title))
    distinct.update(words(body))
    return terms_of(distinct)


def terms_of(distinct: Iterable[str]) -> str:
    """``terms`` from the distinct words already split (the matcher's ``DocIndex.uniq``)."""
    return " " + " ".join(sorted(distinct)) + " "


def cased_words(text: str) -> list[str]:
    """Words with case kept (accents stripped), aligned with ``words(text)`` (for ``!Term``)."""
    stripped = strip_accents(text)
    cased = (WORD_RE if _CJK_RE.search(stripped) else _PLAIN_WORD_RE).findall(stripped)
    folded = words(text)
    # A case mapping that changes the word count (none in real text) disables !Term there.
    return cased if len(cased) == len(folded) else folded


def query_words(text: str) -> list[str]:
    """The words of a query term or phrase, case kept, accents stripped."""
    return WORD_RE.findall(strip_accents(text))


_CHAR_FOLD: dict[str, str] = {}  # character -> its accent-stripped form (offset mapping)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


@dataclass(frozen=True)
class Tokens:
    """One field's words with character offsets into its original text."""

    text: str
    words: list[str]  # folded
    cased: list[str]
    spans: list[tuple[int, int]]  # offsets into ``text``


def tokens(text: str, folded: list[str] | None = None) -> Tokens:
    """Words with offsets, for quoting and highlighting (slower path, matched articles only).
    ``folded``: ``words(text)``, when the caller has it already."""
    stripped = strip_accents(text)
    if stripped == text:
        index = None
    else:
        parts: list[str] = []
        idx: list[int] = []
        cache = _CHAR_FOLD
        last = 0
        for m in _NON_ASCII.finditer(text):  # ASCII stays as it is: only the rest is looked up
            a, b = m.span()
            parts.append(text[last:a])
            idx.extend(range(last, a))
            for i in range(a, b):
                ch = text[i]
                d = cache.get(ch)
                if d is None:
                    # ``words`` folds case first: the one mark that casefold turns into a letter
                    # (U+0345, the Greek iota subscript, into ι) is that letter here too, or a lone
                    # one made a word there and none here, and quoting the text failed.
                    d = cache[ch] = strip_accents(ch) or strip_accents(ch.casefold())
                parts.append(d)
                idx.extend([i] * len(d))
            last = b
        parts.append(text[last:])
        idx.extend(range(last, len(text)))
        stripped = "".join(parts)
        idx.append(len(text))
        index = idx
    # Without CJK, the runs of word characters: found by C string operations, as ``words`` does.
    cased = WORD_RE.findall(stripped) if _CJK_RE.search(stripped) else _word_runs(stripped)
    # Each word is where it is next found: only non-word characters stand between two words.
    spans: list[tuple[int, int]] = []
    find, at = stripped.find, 0
    for w in cased:
        s = find(w, at)
        at = s + len(w)
        # The end maps to the character after the last one of the word.
        spans.append((s, at) if index is None else (index[s], index[at - 1] + 1))
    if folded is None:
        folded = words(text)
    if len(folded) != len(cased):  # pragma: no cover - same regex on the same string
        raise AssertionError("tokenizers disagree")
    return Tokens(text, folded, cased, spans)


# --- sentences -----------------------------------------------------------------------------

# Words that end with a period without ending the sentence (lowercase, without the period).
_ABBREVIATIONS = """
mr mrs ms dr prof sr jr st gen col lt sgt capt cmdr adm gov sen rep pres vs etc inc ltd co corp
vol fig approx dept est jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri
sat sun e.g i.e u.s u.k u.n u.s.a e.u a.m p.m ph.d mt ft hon rev
г гг т.е т.д т.п т.к др пр см стр рис ул им млн млрд тыс руб долл коп проф акад обл р-н р
ст чл каб корр тел г-н г-жа
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS.split())
_TERMINATOR = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|\n\s*")
_NEXT_START = re.compile(r"\s*[\"'“”‘«(\[—–-]*\s*[^\W_a-zа-яё]", re.UNICODE)
_LAST_WORD = re.compile(r"([^\s\"'“”‘’«»(\[]+)$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) over ``text``, trimmed of surrounding whitespace.

    A period after a known abbreviation ("U.S.", "Dr.", "г.") or a single capital initial
    ("J. Smith") does not end a sentence; nor does one followed by a lowercase word. A newline
    always does: paragraphs never share a sentence.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _TERMINATOR.finditer(text):
        end = m.end()
        if m.group(0)[0] not in "\n\r\t\f\v ":
            if not _NEXT_START.match(text, end):
                continue
            if m.group(0).startswith(".") and len(m.group(0).rstrip("\"'”’»)]")) == 1:
                lw = _LAST_WORD.search(text, max(0, m.start() - 40), m.start())
                word = lw.group(1) if lw else ""
                bare = word.rstrip(".").lower()
                if bare in ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                    continue
                if "." in word and len(word) <= 6 and all(len(p) <= 2 for p in word.split(".")):
                    continue  # U.S. / Н.А. style initialisms
        _add(text, start, end, spans)
        start = end
    _add(text, start, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    seg = text[start:end]
    stripped = seg.strip()
    if stripped:
        lead = len(seg) - len(seg.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
