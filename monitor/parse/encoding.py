"""Decode feed and page bytes whose declared encoding may be missing or wrong.

Declarations lie: Polish feeds say ISO-8859-1 and send ISO-8859-2, Russian ones say UTF-8 and
send windows-1251, old servers send KOI8-R with no word about it. Statistical detectors alone
are no better (on short Czech text charset-normalizer picks cp1258, on Turkish cp1250), so we
decode the document's *text* (markup stripped) with each plausible encoding and score the
result the way a reader would notice mojibake:

- C1 control characters, replacement characters, symbols glued to letters (``zaÅ¼Ã³Å``),
  lower-to-upper case flips inside a word (KOI8-R read as windows-1251 gives ``нЙОЙУФТ``), and
  letters of another script inside a Latin word all count against a candidate;
- accented Latin letters count for it when they belong to one language's alphabet (``ř`` and
  ``ě`` are Czech, ``ø`` with ``è`` and ``¹`` is nobody's).

Valid UTF-8 wins outright (legacy text is practically never valid UTF-8 by accident); the
declared encoding wins ties, then the encodings usual for the feed's language.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Accented letters of Latin-script languages (lower case; upper case derived).
_ALPHABETS: dict[str, str] = {
    "de": "äöüß", "fr": "àâæçéèêëîïôœùûüÿ", "es": "áéíñóúü", "pt": "áâãàçéêíóôõú",
    "it": "àèéìíîòóùú", "nl": "éëïóöü", "sv": "åäöé", "da": "æøåé", "no": "æøåé", "fi": "äöå",
    "is": "áðéíóúýþæö", "pl": "ąćęłńóśźż", "cs": "áčďéěíňóřšťúůýž", "sk": "áäčďéíĺľňóôŕšťúýž",
    "hu": "áéíóöőúüű", "ro": "ăâîșțşţ", "hr": "čćđšž", "sl": "čšž", "tr": "çğıöşü",
    "lt": "ąčęėįšųūž", "lv": "āčēģīķļņšūž", "et": "äöõüšž", "ca": "àçèéíïòóúü", "sq": "çë",
    "az": "çəğıöşü", "en": "éèïöü",
}
_LETTERS = {lang: set(a) | set(a.upper()) for lang, a in _ALPHABETS.items()}

# Legacy encodings usual for a language, most likely first.
_LANG_ENCODINGS: dict[str, tuple[str, ...]] = {
    "pl": ("iso-8859-2", "cp1250"), "cs": ("iso-8859-2", "cp1250"), "sk": ("iso-8859-2", "cp1250"),
    "hu": ("iso-8859-2", "cp1250"), "sl": ("iso-8859-2", "cp1250"), "hr": ("iso-8859-2", "cp1250"),
    "ro": ("iso-8859-16", "cp1250", "iso-8859-2"), "bs": ("cp1250", "iso-8859-2"),
    "ru": ("cp1251", "koi8-r", "iso-8859-5"), "uk": ("cp1251", "koi8-u"), "be": ("cp1251",),
    "bg": ("cp1251",), "sr": ("cp1251", "cp1250"), "mk": ("cp1251",), "kk": ("cp1251", "kz1048"),
    "el": ("iso-8859-7", "cp1253"), "tr": ("iso-8859-9", "cp1254"), "az": ("cp1254",),
    "he": ("cp1255", "iso-8859-8"), "ar": ("cp1256", "iso-8859-6"), "fa": ("cp1256",),
    "lt": ("cp1257", "iso-8859-13"), "lv": ("cp1257", "iso-8859-13"), "et": ("cp1257", "iso-8859-15"),
    "th": ("cp874",), "vi": ("cp1258",), "ja": ("shift_jis", "euc-jp", "iso-2022-jp"),
    "zh": ("gb18030", "big5"), "ko": ("euc-kr",),
}
_COMMON = ("cp1252", "iso-8859-2", "cp1250", "cp1251", "koi8-r", "iso-8859-7", "iso-8859-9",
           "cp1257", "iso-8859-15")
_NON_ASCII_WORDS = re.compile(rb"[^\s<>&;]*[\x80-\xff][^\s<>&;]*")
_SAMPLE_BYTES = 64_000
_CLEAN = 0.95  # every non-ASCII character a plausible letter of one language or script
_NEUTRAL_CATEGORIES = {"Pc", "Pd", "Pi", "Pf", "Po", "Ps", "Pe", "Zs", "Mn", "Sc"}

# Labels read as the superset browsers use (WHATWG Encoding): servers mislabel the superset.
_SUPERSETS = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252", "gb2312": "gb18030",
              "gbk": "gb18030", "shift_jis": "cp932", "euc_kr": "cp949", "big5": "big5hkscs",
              "iso8859-9": "cp1254", "tis-620": "cp874", "iso8859-11": "cp874"}

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
_LANG_TAG = re.compile(rb"<(?:language|dc:language)>\s*(?:<!\[CDATA\[)?\s*([A-Za-z]{2,3})", re.I)
_LANG_ATTR = re.compile(rb"<(?:html|feed|rss|channel)[^>]*?\b(?:xml:)?lang\s*=\s*[\"']([A-Za-z]{2,3})", re.I)
_TAGS = re.compile(rb"<!\[CDATA\[|\]\]>|<[^<>]*>")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # the codec used (Python's name)
    declared: str | None  # what the HTTP header or the document said, if anything
    note: str | None = None  # set when the declaration was missing or overruled


def normalise_encoding(name: str | None) -> str | None:
    """Python codec name; ISO-8859-1 and US-ASCII read as windows-1252 (as browsers do)."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    return _SUPERSETS.get(codec, codec)


def declared_encoding(content: bytes, http_charset: str | None = None) -> str | None:
    if http_charset:
        return http_charset
    head = content[:2048]
    m = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return m.group(1).decode("ascii") if m else None


def language_hint(content: bytes) -> str | None:
    head = content[:8192]
    m = _LANG_TAG.search(head) or _LANG_ATTR.search(head)
    return m.group(1).decode("ascii").lower() if m else None


_CJK = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "FULLWIDTH", "HALFWIDTH", "BOPOMOFO"}


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    script = name.split(" ", 1)[0] if name else "?"
    return "CJK" if script in _CJK else script


def mojibake_score(text: str, language: str | None = None) -> float:
    """Higher is more plausible. Only non-ASCII characters are evidence; 0.0 when there are none."""
    bad = 0.0
    latin: Counter[str] = Counter()
    scripts: Counter[str] = Counter()
    n = 0
    prev = " "
    for i, ch in enumerate(text):
        if ch < "\x80":
            if prev.islower() and ch.isupper() and not prev.isascii():
                bad += 1
            prev = ch
            continue
        n += 1
        cat = unicodedata.category(ch)
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if cat == "Cc" or ch == "\ufffd" or cat == "Co" or cat == "Cn":
            bad += 3
        elif cat.startswith("L"):
            if prev.isalpha() and prev.islower() and ch.isupper():
                bad += 1
            script = _script(ch)
            if script == "LATIN":
                latin[ch] += 1
            else:
                scripts[script] += 1
                if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()):
                    bad += 1  # a Cyrillic or Greek letter glued to an ASCII word
        elif cat not in _NEUTRAL_CATEGORIES and (prev.isalpha() or nxt.isalpha()):
            bad += 1  # a symbol or digit-like sign inside a word
        prev = ch
    if n == 0:
        return 0.0
    good = 0.0
    if latin:
        langs = [language] if language in _LETTERS else list(_LETTERS)
        fit = max(sum(c for ch, c in latin.items() if ch in _LETTERS[lang]) for lang in langs)
        good += fit
        bad += sum(latin.values()) - fit
    if scripts:
        top = scripts.most_common(1)[0][1]
        good += top
        bad += sum(scripts.values()) - top
    return (good - 2 * bad) / n


def _is_mostly_utf8(content: bytes) -> bool:
    """Valid UTF-8 sequences outnumber invalid bytes: UTF-8 with a few stray legacy bytes."""
    valid = len(re.findall(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", content))
    if valid < 3:
        return False
    invalid = len(content.decode("utf-8", "replace").encode("utf-8")) - len(content)
    return invalid // 2 <= valid  # each U+FFFD adds two bytes over the one it replaced


def _utf8_with_fallback(content: bytes) -> str:
    return content.decode("utf-8", "cp1252_fallback")


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    bad = exc.object[exc.start:exc.end]
    return bad.decode("cp1252", "replace"), exc.end


codecs.register_error("cp1252_fallback", _cp1252_fallback)


def decode(content: bytes, http_charset: str | None = None, language: str | None = None) -> Decoded:
    """Decode bytes of an XML feed or HTML page, choosing the encoding the text was written in."""
    for bom, enc in _BOMS:
        if content.startswith(bom):
            return Decoded(content.decode(enc, "replace"), enc, enc)
    declared_raw = declared_encoding(content, http_charset)
    declared = normalise_encoding(declared_raw)
    if declared and declared.startswith(("utf-16", "utf-32")):
        try:
            return Decoded(content.decode(declared), declared, declared_raw)
        except UnicodeDecodeError:
            declared = None
    if declared and declared.startswith("iso2022") and content.isascii():
        return Decoded(content.decode(declared, "replace"), declared, declared_raw)
    try:
        text = content.decode("utf-8")
        note = None if declared in (None, "utf-8") or content.isascii() else f"declared {declared_raw}, but the bytes are UTF-8"
        return Decoded(text, "utf-8", declared_raw, note)
    except UnicodeDecodeError:
        pass
    if _is_mostly_utf8(content):
        return Decoded(_utf8_with_fallback(content), "utf-8", declared_raw,
                       "UTF-8 with some invalid bytes, read as windows-1252")
    lang = (language or language_hint(content) or "").split("-")[0].split("_")[0].lower() or None
    # Evidence: the words that hold non-ASCII bytes, markup stripped (a small sample decodes
    # and scores fast even for a large feed).
    words, size = [], 0
    for w in _NON_ASCII_WORDS.findall(_TAGS.sub(b" ", content)):
        words.append(w)
        size += len(w) + 1
        if size > _SAMPLE_BYTES:
            break
    sample_bytes = b" ".join(words)
    best, best_score = None, float("-inf")
    tried: set[str] = set()

    def consider(encodings: Iterable[str | None]) -> None:
        nonlocal best, best_score
        for enc in encodings:  # ties keep the earlier: declared, then the language's, then detected
            c = normalise_encoding(enc)
            if not c or c in tried or c == "utf-8":
                continue
            tried.add(c)
            try:
                sample = sample_bytes.decode(c)
            except (UnicodeDecodeError, LookupError):
                continue
            score = mojibake_score(sample, lang)
            if score > best_score + 1e-9:
                best, best_score = c, score

    consider((declared, *_LANG_ENCODINGS.get(lang or "", ())))
    if best_score < _CLEAN:  # the declared encoding leaves doubt: ask the detector too
        from charset_normalizer import from_bytes  # here: most bytes declare or are UTF-8

        try:
            detected = [m.encoding for m in list(from_bytes(sample_bytes))[:3]]
        except Exception:  # detection is only a hint
            detected = []
        consider((*detected, *_COMMON))
    if best is None:
        return Decoded(_utf8_with_fallback(content), "utf-8", declared_raw, "no encoding fits; read as UTF-8")
    note = None
    if declared != best:
        note = f"declared {declared_raw}, decoded as {best}" if declared_raw else f"no declared encoding, decoded as {best}"
    return Decoded(content.decode(best, "replace"), best, declared_raw, note)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Every sequence ftfy's mojibake test (``ftfy.badness.BADNESS_RE``) matches holds a non-ASCII
# character and is at most 7 characters long: it lies within this many characters of one.
_MOJIBAKE_REACH = 6


@functools.cache
def _badness() -> Any:
    """ftfy's mojibake test (the module ``ftfy.badness``) without importing the ftfy package.

    ftfy's ``__init__`` imports its terminal-formatting module, and with it wcwidth's Unicode
    width tables: ~6 MB and ~50 ms of CPU in every process that tests a text (the daemon, and
    the extraction workers' forkserver), though only a text the test flags (hardly any) is
    repaired by ftfy. The module imports nothing but ``re`` and ``warnings``, so it is run by
    itself from ftfy's installed file (its compiled bytecode reused); where that fails (ftfy
    rearranged), or ftfy is imported anyway, ftfy's own module is used."""
    import importlib.util
    import sys

    loaded = sys.modules.get("ftfy.badness")
    if loaded is not None:
        return loaded
    try:
        package = importlib.util.find_spec("ftfy")
        assert package is not None and package.submodule_search_locations
        location = next(iter(package.submodule_search_locations))
        spec = importlib.util.spec_from_file_location("monitor.parse._ftfy_badness", f"{location}/badness.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.BADNESS_RE.search("")
        return module
    except Exception:  # noqa: BLE001 - ftfy's own, whatever it costs
        import ftfy.badness

        return ftfy.badness


def _may_be_mojibake(text: str) -> bool:
    """``ftfy.badness.is_bad(text)``, searching only around the non-ASCII characters.

    ftfy's test runs a regular expression of some forty alternatives at every character: ~2 ms
    on an article's text, most of the extraction of a page that needs no repair (nearly all).
    Searched only where a match could be, the answer is the same at a tenth of the cost (the
    expression has no look-behind and anchors only at the real start, which ``pos`` keeps)."""
    search = _badness().BADNESS_RE.search
    spans: list[list[int]] = []
    for m in _NON_ASCII.finditer(text):
        start, end = max(m.start() - _MOJIBAKE_REACH, 0), m.end() + _MOJIBAKE_REACH
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return any(search(text, start, end) for start, end in spans)


def fix_mojibake(text: str) -> str:
    """Repair text that was UTF-8 decoded as a legacy encoding upstream ("MÃ¼nchen"): the
    publisher's CMS did it before the bytes reached us, so decoding them right is not enough.
    (ftfy returns text that its mojibake test passes unchanged: that test is made first, faster.)"""
    if text and not text.isascii() and _may_be_mojibake(text):
        import ftfy  # only for a text the test flags (see ``_badness``)

        return ftfy.fix_encoding(text)
    return text
