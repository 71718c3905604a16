"""Names across scripts: the spellings an entity alias takes in other alphabets.

Reporters transliterate a Cyrillic name by their language's habit: Токаев is Tokayev in English
and Turkish, Tokajew in German and Polish, Tokaïev in French, Tokaev in scholarly or wire copy;
and a Latin alias has its Russian, Ukrainian and Kazakh forms (Tokayev: Токаев, Токаєв). This
module generates those, so one alias in one script matches all of them; the match stage adds the
inflected forms of the Cyrillic ones as before (``inflect = true``).

Generated: Cyrillic (Russian, Ukrainian, Kazakh letters) to Latin by English, German/Polish,
French rules and by anyascii; Latin to Russian and Ukrainian Cyrillic; Russian to Ukrainian
spelling. Not generated, so written by the user: scripts whose names are transcribed by sound
with no letter rule (Chinese 托卡耶夫, Japanese トカエフ, Korean), Arabic and Hebrew (vowels
are not written), and Kazakh-specific letters from a Latin or Russian alias (Тоқаев, Қасым).
"""

from __future__ import annotations

import re
from functools import lru_cache

_VOWELS_CYR = "аеёиоуыэюяіїєәөұүі"
_CYR = re.compile(r"[а-яёіїєґәғқңөұүһ]", re.IGNORECASE)
_LATIN = re.compile(r"^[a-z'’\- ]+$", re.IGNORECASE)

_COMMON = {"а": "a", "б": "b", "г": "g", "д": "d", "з": "z", "и": "i", "к": "k", "л": "l", "м": "m",
           "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "ы": "y",
           "ь": "", "ъ": "", "э": "e", "і": "i", "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o",
           "ұ": "u", "ү": "u", "һ": "h", "ґ": "g"}
# Per-language differences: (letter, after a vowel or at the start, elsewhere).
_STYLES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {"в": ("v", "v"), "ж": ("zh", "zh"), "х": ("kh", "kh"), "ц": ("ts", "ts"), "ч": ("ch", "ch"),
           "ш": ("sh", "sh"), "щ": ("shch", "shch"), "й": ("y", "y"), "е": ("ye", "e"), "ё": ("yo", "yo"),
           "ю": ("yu", "yu"), "я": ("ya", "ya"), "є": ("ye", "ye"), "ї": ("yi", "yi"), "и": ("i", "i")},
    "de": {"в": ("w", "w"), "ж": ("sch", "sch"), "х": ("ch", "ch"), "ц": ("z", "z"), "ч": ("tsch", "tsch"),
           "ш": ("sch", "sch"), "щ": ("schtsch", "schtsch"), "й": ("j", "j"), "е": ("je", "e"),
           "ё": ("jo", "jo"), "ю": ("ju", "ju"), "я": ("ja", "ja"), "є": ("je", "je"), "ї": ("ji", "ji"),
           "и": ("i", "i"), "з": ("s", "s")},
    "fr": {"в": ("v", "v"), "ж": ("j", "j"), "х": ("kh", "kh"), "ц": ("ts", "ts"), "ч": ("tch", "tch"),
           "ш": ("ch", "ch"), "щ": ("chtch", "chtch"), "й": ("ï", "ï"), "е": ("ïe", "e"), "ё": ("io", "io"),
           "ю": ("iou", "iou"), "я": ("ia", "ia"), "є": ("ïe", "ie"), "ї": ("ï", "ï"), "и": ("i", "i"),
           "у": ("ou", "ou")},
}

# Latin (English-style) to Russian Cyrillic, longest first.
_TO_CYR = [("shch", "щ"), ("zh", "ж"), ("kh", "х"), ("ts", "ц"), ("ch", "ч"), ("sh", "ш"), ("yu", "ю"),
           ("ya", "я"), ("yo", "ё"), ("ye", "е"), ("a", "а"), ("b", "б"), ("v", "в"), ("w", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"),
           ("i", "и"), ("j", "ж"), ("y", "ы"), ("k", "к"), ("q", "к"), ("l", "л"), ("m", "м"), ("n", "н"),
           ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"),
           ("c", "к"), ("x", "кс"), ("'", ""), ("’", ""), ("-", "-"), (" ", " ")]


def _cyr_to_latin(word: str, style: str) -> str:
    out = []
    low = word.lower()
    table = _STYLES[style]
    for i, ch in enumerate(low):
        after_vowel = i == 0 or low[i - 1] in _VOWELS_CYR or not low[i - 1].isalpha()
        if ch in table:
            out.append(table[ch][0 if after_vowel else 1])
        elif ch in _COMMON:
            out.append(_COMMON[ch])
        else:
            out.append(ch)
    text = "".join(out)
    if style == "en":
        text = text.replace("iy", "y") if low.endswith("ий") else text  # Зеленский: Zelensky
    return _recase(word, text)


def _recase(model: str, text: str) -> str:
    """The case pattern of the alias on its transliteration: Title stays Title per word."""
    parts = re.split(r"([\s\-])", text)
    words = re.split(r"[\s\-]", model)
    out, k = [], 0
    for p in parts:
        if p in (" ", "-") or not p:
            out.append(p)
            continue
        w = words[k] if k < len(words) else ""
        k += 1
        out.append(p[:1].upper() + p[1:] if w[:1].isupper() else p)
    return "".join(out)


def _latin_to_cyr(word: str) -> str:
    low = word.lower()
    out, i = [], 0
    while i < len(low):
        if low[i] == "y" and i > 0 and low[i - 1] in "aeiou" and not low.startswith(("ye", "ya", "yu", "yo"), i):
            out.append("й")  # Tokay, Nazarbay: after a vowel, not before one
            i += 1
            continue
        if low[i] == "y" and i == len(low) - 1 and i > 0 and low[i - 1] not in "aeiou":
            out.append("ий")  # Zelensky: Зеленский
            i += 1
            continue
        for lat, cyr in _TO_CYR:
            if low.startswith(lat, i):
                out.append(cyr)
                i += len(lat)
                break
        else:
            out.append(low[i])
            i += 1
    return _recase(word, "".join(out))


def _ru_to_uk(word: str) -> str:
    """Russian spelling of a name to Ukrainian: е after a vowel is є, ы is и, э is е."""
    out = []
    low = word.lower()
    for i, ch in enumerate(low):
        after_vowel = i > 0 and low[i - 1] in _VOWELS_CYR
        if ch == "е" and after_vowel:
            out.append("є")
        elif ch == "ы":
            out.append("и")
        elif ch == "э":
            out.append("е")
        else:
            out.append(ch)
    return _recase(word, "".join(out))


@lru_cache(maxsize=4096)
def transliterations(alias: str) -> frozenset[str]:
    """Other-script spellings of an alias (the alias itself included)."""
    from anyascii import anyascii

    def from_cyrillic(name: str) -> set[str]:
        return {name, _ru_to_uk(name), anyascii(name), *(_cyr_to_latin(name, st) for st in _STYLES)}

    out = {alias}
    if _CYR.search(alias):
        out |= from_cyrillic(alias)
    elif _LATIN.match(alias):
        # Through Russian Cyrillic: Tokayev -> Токаев -> Токаєв, Tokajew, Tokaïev, Tokaev.
        out |= from_cyrillic(_latin_to_cyr(alias))
    return frozenset(a for a in out if a.strip())
