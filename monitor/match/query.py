"""The rule language: parse a query into a tree the evaluators walk.

Grammar, loosest first (precedence NOT > NEAR/ONEAR/SENT > AND > OR)::

    or    := and ("OR" and)*
    and   := near (["AND"] near)*            adjacent clauses: implicit AND
    near  := unary (("NEAR/n" | "ONEAR/n" | "SENT") unary)*
    unary := "NOT" unary | "-"atom | "+"atom | atom
    atom  := "(" or ")" | '"phrase"'["~n"] | FIELD":"atom | "@"entity | "!"Word | word[*?]
           | 'about("statement"' [", threshold"] ")"

Entities are resolved while parsing, so a rule's tree is self-contained. Every error carries
the column so the config loader can draw a caret under it. What the grammar would read as
something other than the user wrote is refused, not guessed at: ``about ("...")`` with a space,
other engines' operators (``^2``, ``word~``, ``a|b``, ``near/5``, ``AROUND(5)``, ``[a TO b]``),
a ``lang:`` the language detector never reports, a ``site:`` that is not a domain, control
characters (README, "Refused when the config loads").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from monitor.match.text import fold, query_words, strip_accents
from monitor.match.translit import transliterations


class QuerySyntaxError(ValueError):
    def __init__(self, message: str, query: str, column: int):
        super().__init__(f"{message} at column {column + 1}")
        self.message = message
        self.query = query
        self.column = column  # 0-based

    def describe(self) -> str:
        """Message, the query, and a caret under the offending column. Control characters are
        shown as their one-column symbols (NUL as \u2400): printed raw, a NUL or a newline in
        the query would garble the terminal or push the caret off its column."""
        shown = _CONTROL_ANY.sub(_control_picture, self.query)
        return (f"invalid query: {self.message} at column {self.column + 1}\n"
                f"    {shown}\n    {' ' * self.column}^")


# Control characters a query may hold (TOML's multi-line strings) but never needs: tab, newline
# and carriage return are spaces between terms; any other is refused (a NUL split "a\0b" into
# the phrase "a b", and U+0001 is the parser's own stand-in for '?').
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _control_picture(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return chr(0x2400 + c) if c < 0x20 else "\u2421" if c == 0x7F else "\ufffd"


class EntityLike(Protocol):
    aliases: tuple[str, ...]
    inflect: bool


# --- the tree ------------------------------------------------------------------------------

@dataclass(frozen=True)
class W:
    """What one word position accepts.

    kind "exact": any of ``forms`` (folded; several for entity inflections); "prefix": a folded
    word starting with ``stem`` (``negotiat*``); "glob": ``regex`` over the folded word
    (``wom?n``); "cased": exactly ``stem`` with case kept (``!AIDS``).
    """

    kind: str
    stem: str = ""
    forms: frozenset[str] = frozenset()
    regex: re.Pattern[str] | None = None

    def accepts(self, word: str, cased: str) -> bool:
        if self.kind == "exact":
            return word in self.forms
        if self.kind == "prefix":
            return word.startswith(self.stem)
        if self.kind == "glob":
            assert self.regex is not None
            return self.regex.fullmatch(word) is not None
        return cased == self.stem


@dataclass(frozen=True)
class Seq:
    """A term or phrase: words in order, at most ``slop`` extra words inside."""

    words: tuple[W, ...]
    slop: int = 0
    field: str | None = None  # "title" / "body" / None for both
    label: str = ""


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]
    label: str = ""


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Near:
    """Both sides in the same field; at most ``n`` words between (``n`` None: any distance);
    ``ordered``: left before right; ``sentence``: both in one sentence."""

    left: Node
    right: Node
    n: int | None
    ordered: bool = False
    sentence: bool = False
    label: str = ""


@dataclass(frozen=True)
class About:
    """``about("statement")``: a sentence of the article means that (monitor.match.meaning).

    ``meaning`` (vectors, calibrated threshold) is attached by ``RuleSet``, which knows the rule's
    examples; a bare parse leaves it None and the default threshold applies.
    """

    text: str
    col: int = 0
    threshold: float | None = None
    meaning: Any = field(default=None, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Meta:
    """A condition on the article's metadata: site:, source:, lang:, author:."""

    field: str
    value: str  # folded; for source/author a sequence of words joined by spaces


Node = Seq | Or | And | Not | Near | Meta | About

TEXT_FIELDS = ("title", "body")
META_FIELDS = ("site", "source", "lang", "author")
FIELDS = TEXT_FIELDS + META_FIELDS

# The codes monitor.extract.language's identifier (py3langid's model) reports: an article's
# language is one of them unless its text is too short to tell (then its page's declared one).
# lang: takes only these; any other (lang:klingon, lang:en-US) could not match a detected
# article. tests/test_match_refused.py checks the list against the model.
_DETECTED_LANGUAGE_TEXT = (
    "ace af am an ar ary arz as az ba bcl be bg bn br bs ca crh cs cy da de dz el en eo es et eu "
    "ext fa fi fo fr fuv fy ga gcf gcr gd gl gom grc gu gug guw ha hbo he hi hr ht hu hy id ig is "
    "it ja jv ka kab kik kk km kn ko ku ky la lb lg lij ln lo lt ltg lv mg mk ml mn mr ms mt my ne "
    "nl nn no nso oc om or pa pcm pl ps pt qu ro ru rw sa sdh se si sk sl sn so sq sr st sv sw ta "
    "te tg th tk tl tr tt ug uk ur uz uzs vec vi vo wa wuu xh yo yue zh zu zxx")
DETECTED_LANGUAGES = frozenset(_DETECTED_LANGUAGE_TEXT.split())
# site: compares the article's host name: a domain, not a URL, path, port or pattern.
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)*")


# --- entities and inflection -----------------------------------------------------------------

_KK_SUFFIX_TEXT = (
    # Kazakh cases with every vowel-harmony and consonant variant: genitive, dative, accusative,
    # locative, ablative, instrumental, and the attributive locative (-дағы).
    "ның нің дың дің тың тің ға ге қа ке на не а е ны ні ды ді ты ті н да де та те нда нде "
    "дан ден тан тен нан нен мен бен пен менен бенен пенен дағы дегі тағы тегі ндағы ндегі"
)
_KK_SUFFIXES = _KK_SUFFIX_TEXT.split()
_RU_UK_CONSONANT_TEXT = "а у ом ем е ым им ой ы и ых их ыми ими ам ами ах і ові еві ів ю ою ею ого ому"
_RU_UK_CONSONANT = _RU_UK_CONSONANT_TEXT.split()


def inflections(alias_word: str) -> set[str]:
    """Inflected forms of one Cyrillic name or place word (Russian, Ukrainian, Kazakh).

    Names are mostly out of any dictionary (Тоқаев, Қазақстан), so forms are generated from the
    ending, as Russian and Ukrainian grammars decline unknown proper nouns, plus Kazakh case
    suffixes in every harmony variant. Only whole generated words match: no fuzziness.
    """
    w = alias_word
    if not re.search(r"[а-яёіїєґәғқңөұүһ]", w, re.IGNORECASE) or len(w) < 3:
        return {w}
    out = {w}
    low = w[-1].lower()
    if low in "бвгджзклмнпрстфхцчшщ":
        out.update(w + s for s in _RU_UK_CONSONANT)
    elif low == "ь":
        out.update(w[:-1] + s for s in ["я", "ю", "ем", "ём", "е", "и", "і", "ей", "ям", "ями", "ях"])
    elif low == "й":
        out.update(w[:-1] + s for s in ["я", "ю", "ем", "е", "и", "ї", "єм", "ям", "ях"])
    elif low == "а":
        out.update(w[:-1] + s for s in ["ы", "и", "е", "у", "ой", "ою", "і", "ої", "ій"])
    elif low == "я":
        out.update(w[:-1] + s for s in ["и", "ю", "ей", "ею", "е", "і", "ї", "єю"])
    out.update(w + s for s in _KK_SUFFIXES)
    if low in "аеёиоуыэюяәіөұүі":
        # Kazakh after a vowel: genitive -ның/-нің, accusative -ны/-ні (already above), dative.
        out.update(w + s for s in ("ға", "ге", "ның", "нің", "сы", "сі"))
    return out


_WORD_CACHE: dict[tuple[str, bool], tuple[W, ...]] = {}
# A plain query word's node: the same word in many rules is one shared object (fewer objects
# to build, and fewer for the garbage collector to walk while 10,000 rules compile).
_SEQ_CACHE: dict[str, Seq] = {}
CACHE_LIMIT = 200_000  # entries per cache; the same words recur across rules: bound the memory


def _word_matchers(raw: str, q: str, col: int, inflect: bool = False) -> tuple[W, ...]:
    """The word positions of one query word as written (hyphens/apostrophes split it)."""
    key = (raw, inflect)
    hit = _WORD_CACHE.get(key)
    if hit is None:
        hit = tuple(_word_matchers_uncached(raw, q, col, inflect))
        if len(_WORD_CACHE) > CACHE_LIMIT:
            _WORD_CACHE.clear()
        _WORD_CACHE[key] = hit
    return hit


def _word_seq(raw: str, q: str, col: int) -> Seq:
    """The node of a plain query word (no field, no entity)."""
    node = _SEQ_CACHE.get(raw)
    if node is None:
        if not raw.isalnum():  # quoted, the same characters are the user's literal text
            _foreign_operator(raw, q, col)
        node = Seq(_word_matchers(raw, q, col), label=raw)
        if len(_SEQ_CACHE) > CACHE_LIMIT:
            _SEQ_CACHE.clear()
        _SEQ_CACHE[raw] = node
    return node


# Other search engines' operators, written inside a word. A word's punctuation only splits it
# (AT&T is the phrase "AT T"), so these silently became phrases that never match: Kazakhstan^2
# the phrase "kazakhstan 2", kaz~ the word "kaz", a|b the phrase "a b", near/5 "near 5".
_PROXIMITY_SPELLING = re.compile(r"(?i)(?:o?near|w|pre)/(?:\d+|s|p)")


def _foreign_operator(raw: str, q: str, col: int) -> None:
    """Refuse an unquoted word holding another query language's operator (Lucene, Google,
    Lexis), which this one does not have, naming what to write instead."""
    for ch, msg in (("^", "boosts (^) are not supported: every term counts the same; remove the "
                          "'^' and its number"),
                    ("~", "'~' is only a phrase's word distance (\"venue negotiations\"~2); fuzzy "
                          "words (word~) are not supported: list the spellings with OR, or a stem "
                          "with *"),
                    ("|", "'|' is not an operator: write OR")):
        if ch in raw:
            raise QuerySyntaxError(msg, q, col + raw.index(ch))
    if "&&" in raw:
        raise QuerySyntaxError("'&&' is not an operator: write AND", q, col + raw.index("&&"))
    if _PROXIMITY_SPELLING.fullmatch(raw):
        raise QuerySyntaxError(f"{raw!r} is not an operator: write A NEAR/n B (at most n words "
                               "between), ONEAR/n (in that order) or SENT (same sentence), in "
                               "capitals", q, col)


def _word_matchers_uncached(raw: str, q: str, col: int, inflect: bool) -> list[W]:
    if raw.isascii() and raw.isalnum() and not inflect:
        # Most query words: one ASCII word, its own accent-stripped form, folded by lower().
        f = raw.lower()
        return [W("exact", stem=f, forms=frozenset({f}))]
    if raw.startswith("!"):
        parts = query_words(raw[1:])
        if not parts or any(ch in raw for ch in "*?"):
            raise QuerySyntaxError(f"'!' must be followed by a plain word, got {raw!r}", q, col)
        return [W("cased", stem=p) for p in parts]
    if raw.startswith(("*", "?")):
        raise QuerySyntaxError("a word cannot start with a wildcard", q, col)
    stars = raw.count("*")
    if stars and (stars > 1 or not raw.endswith("*")):
        raise QuerySyntaxError("'*' is allowed only at the end of a word", q, col + raw.index("*"))
    body = raw[:-1] if stars else raw
    pieces = query_words(body.replace("?", "\u0001"))  # keep '?' inside the word for now
    if "?" in body:
        pieces = [p for p in re.split(r"[^\w\u0001]+", strip_accents(body.replace("?", "\u0001"))) if p]
    if not pieces:
        raise QuerySyntaxError(f"not a word: {raw!r}", q, col)
    out: list[W] = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        f = fold(piece)
        if "\u0001" in f:
            lead = f.split("\u0001", 1)[0]
            if not lead:
                raise QuerySyntaxError("a word cannot start with a wildcard", q, col)
            if len(lead) < 3:
                raise QuerySyntaxError(f"the stem before '?' needs at least 3 letters, got {lead!r}", q, col)
            pat = "".join("." if c == "\u0001" else re.escape(c) for c in f)
            if last and stars:
                pat += r"\w*"
            out.append(W("glob", stem=lead, regex=re.compile(pat)))
        elif last and stars:
            if len(f) < 3:
                raise QuerySyntaxError(f"the stem before '*' needs at least 3 letters, got {piece!r}",
                                       q, col)
            out.append(W("prefix", stem=f))
        else:
            forms = {fold(x) for x in inflections(piece)} if inflect else {f}
            out.append(W("exact", stem=f, forms=frozenset(forms)))
    return out


# --- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<q>"[^"]*"?(?:~\d*)?)|(?P<w>[^\s()"]+))')
_PROX = re.compile(r"^(NEAR|ONEAR)/(\d+)$")
_ABOUT_START = re.compile(r"\s*(about|ABOUT)\(")
_ABOUT = re.compile(r'(?:about|ABOUT)\(\s*"(?P<text>[^"]*)"\s*(?:,\s*(?P<thr>[^\s)]*)\s*)?\)')
MAX_ABOUT_CHARS = 400
_FIELD = re.compile(r"^([A-Za-z]+):(.*)$", re.S)


class _Tok(NamedTuple):  # a named tuple: built ~15 times per rule, 10,000 rules at a time
    kind: str  # lp rp phrase word AND OR NOT NEAR SENT end
    text: str
    col: int
    n: int = 0
    ordered: bool = False
    threshold: float | None = None


def _about_token(q: str, pos: int) -> tuple[_Tok, int]:
    """``about("statement")`` or ``about("statement", 0.6)`` starting at ``pos``."""
    m = _ABOUT.match(q, pos)
    if not m:
        raise QuerySyntaxError('write about("a statement in double quotes"), optionally '
                               'about("...", 0.6) with a threshold', q, pos)
    text = " ".join(m.group("text").split())
    tcol = m.start("text")
    if not text:
        raise QuerySyntaxError("about() needs a statement: the text is empty", q, tcol)
    if len(text) > MAX_ABOUT_CHARS:
        raise QuerySyntaxError(f"about() text is {len(text)} characters; at most {MAX_ABOUT_CHARS} "
                               "(one or two sentences: say what the rule is about, put more wordings "
                               "in examples)", q, tcol)
    thr: float | None = None
    if m.group("thr") is not None:
        try:
            thr = float(m.group("thr"))
        except ValueError:
            thr = -1.0
        if not 0.0 < thr < 1.0:
            raise QuerySyntaxError(f"about() threshold must be a number between 0 and 1, got "
                                   f"{m.group('thr')!r}", q, m.start("thr"))
    return _Tok("about", text, pos, threshold=thr), m.end()


def _word_tok(w: str, col: int) -> _Tok:
    """A word token without the named tuple's Python-level constructor (~15 tokens a rule)."""
    return tuple.__new__(_Tok, ("word", w, col, 0, False, None))


def _operator_or_word(w: str, col: int, q: str) -> _Tok:
    """The token of a word starting with A, N, O or S: an operator or a plain word."""
    if w in ("AND", "OR", "NOT"):
        return _Tok(w, w, col)
    if w == "SENT":
        return _Tok("NEAR", w, col, n=-1)
    if w.startswith(("NEAR", "ONEAR")):
        pm = _PROX.match(w)
        if pm:
            return _Tok("NEAR", w, col, n=int(pm.group(2)), ordered=pm.group(1) == "ONEAR")
        if (w in ("NEAR", "ONEAR") or w.startswith(("NEAR/", "ONEAR/"))
                or w.removeprefix("O").removeprefix("NEAR").isdigit()):  # NEAR5: Factiva's spelling
            op = "ONEAR" if w.startswith("ONEAR") else "NEAR"
            raise QuerySyntaxError(f"write {op}/n with a number of words, e.g. {op}/10", q, col)
    return _word_tok(w, col)  # NEARBY, ONEARTH: plain words


# The same tokens with the spaces before each: one findall gives a query's tokens and their
# columns (a query without about(), i.e. nearly all, needs no look-ahead between tokens).
_TOKENS = re.compile(r'(\s*)(?:(\()|(\))|("[^"]*"?(?:~\d*)?)|([^\s()"]+))')


def may_hold_about(q: str) -> bool:
    """Whether query text ``q`` can hold an ``about()`` clause: only one spelling it can (the
    tokenizer reads about( or ABOUT( only). Callers skip parsing or walking the rest."""
    return "about(" in q or "ABOUT(" in q


def _tokenize(q: str) -> list[_Tok]:
    if may_hold_about(q):
        return _tokenize_about(q)
    toks: list[_Tok] = []
    col = 0
    for space, lp, rp, phrase, w in _TOKENS.findall(q):
        col += len(space)
        if w:
            toks.append(_word_tok(w, col) if w[0] not in "ANOS" else _operator_or_word(w, col, q))
            col += len(w)
        elif lp:
            toks.append(_Tok("lp", "(", col))
            col += 1
        elif rp:
            toks.append(_Tok("rp", ")", col))
            col += 1
        else:
            toks.append(_Tok("phrase", phrase, col))
            col += len(phrase)
    toks.append(_Tok("end", "", len(q)))
    return toks


def _tokenize_about(q: str) -> list[_Tok]:
    """Tokens of a query holding about(...): its statement is one token, found by a look-ahead
    at each position."""
    toks: list[_Tok] = []
    pos = 0
    while pos < len(q):
        am = _ABOUT_START.match(q, pos)
        if am and (am.start(1) == 0 or not (q[am.start(1) - 1].isalnum() or q[am.start(1) - 1] in ":@!")):
            tok, pos = _about_token(q, am.start(1))
            toks.append(tok)
            continue
        m = _TOKEN.match(q, pos)
        if not m:  # the pattern accepts any non-space: only spaces are left
            break
        pos = m.end()
        kind = m.lastgroup
        col = m.start(kind or 0)
        if kind == "w":
            w = m.group("w")
            toks.append(_word_tok(w, col) if w[0] not in "ANOS" else _operator_or_word(w, col, q))
        elif kind == "lp":
            toks.append(_Tok("lp", "(", col))
        elif kind == "rp":
            toks.append(_Tok("rp", ")", col))
        else:
            toks.append(_Tok("phrase", m.group("q"), col))
    toks.append(_Tok("end", "", len(q)))
    return toks


_STARTS_OPERAND = ("word", "phrase", "lp", "NOT", "about")


MAX_QUERY_LENGTH = 20_000  # characters
MAX_QUERY_DEPTH = 64  # nested parentheses, NOTs and NEAR chain links


class _Parser:
    def __init__(self, q: str, entities: Mapping[str, EntityLike]):
        self.q = q
        self.entities = entities
        if len(q) > MAX_QUERY_LENGTH:
            raise QuerySyntaxError(f"query too long: {len(q)} characters (at most {MAX_QUERY_LENGTH})",
                                   q[:80], 0)
        if not q.isprintable():  # str.isprintable is C: the regex runs only on the rare query
            bad = _CONTROL_REFUSED.search(q)
            if bad:
                raise QuerySyntaxError(f"control character U+{ord(bad.group(0)):04X} in the query "
                                       "(invisible, and no word holds it): remove it", q, bad.start())
        self.toks = _tokenize(q)
        self.i = 0
        self.depth = 0

    def deeper(self, col: int) -> None:
        """One more level of nesting; matching and checking walk the tree recursively, so a
        query nested hundreds deep is refused here with its column, not by a RecursionError."""
        self.depth += 1
        if self.depth > MAX_QUERY_DEPTH:
            raise self.err(f"query nested too deep (more than {MAX_QUERY_DEPTH} levels of "
                           "parentheses, NOT or NEAR)", col)

    def err(self, msg: str, col: int) -> QuerySyntaxError:
        return QuerySyntaxError(msg, self.q, col)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.err("empty query", 0)
        node = self.or_()
        t = self.peek()
        if t.kind == "rp":
            raise self.err("')' without a matching '('", t.col)
        if t.kind != "end":  # pragma: no cover - and_() consumes every operand start
            raise self.err(f"unexpected {t.text!r}", t.col)
        if _only_negative(node):
            raise self.err("a query needs at least one positive term (NOT alone matches everything)", 0)
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.toks[self.i].kind == "OR":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Node:
        parts = [self.near()]
        while True:
            t = self.toks[self.i]
            if t.kind == "AND":
                self.take()
                parts.append(self.near())
            elif t.kind in _STARTS_OPERAND:
                parts.append(self.near())
            else:
                break
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def near(self) -> Node:
        left_col = self.toks[self.i].col
        node = self.unary()
        depth = self.depth
        while self.toks[self.i].kind == "NEAR":
            op = self.take()
            self.deeper(op.col)
            right_col = self.peek().col
            right = self.unary()
            _check_positional(node, self, left_col)
            _check_positional(right, self, right_col)
            if op.n < 0:
                node = near(node, right, None, False, True, op.text)
            else:
                node = near(node, right, op.n, op.ordered, False, op.text)
        self.depth = depth
        return node

    def unary(self) -> Node:
        t = self.toks[self.i]
        if t.kind == "word" and t.text[0] not in "-+":  # a plain word (most operands)
            self.i += 1
            return self.word(t.text, t.col)
        if t.kind == "NOT":
            self.take()
            if self.peek().kind in ("end", "rp", "OR", "AND"):
                raise self.err("NOT needs a term after it", self.peek().col)
            self.deeper(t.col)
            inner = self.unary()
            self.depth -= 1
            return Not(inner)
        if t.kind == "word" and t.text in ("-", "+"):
            nxt = self.toks[self.i + 1]
            if nxt.kind in ("lp", "phrase") and nxt.col == t.col + 1:  # -(a OR b), -"a phrase"
                self.take()
                inner = self.atom()
                return Not(inner) if t.text == "-" else inner
        if t.kind == "word" and t.text.startswith("-") and len(t.text) > 1:
            self.take()
            return Not(self.word(t.text[1:], t.col + 1))
        if t.kind == "word" and t.text.startswith("+") and len(t.text) > 1:
            self.take()  # Lucene's "required": the same as a plain term here (AND is implicit)
            return self.word(t.text[1:], t.col + 1)
        return self.atom()

    def atom(self) -> Node:
        t = self.take()
        if t.kind == "lp":
            if self.peek().kind == "rp":
                raise self.err("empty parentheses", t.col)
            self.deeper(t.col)
            node = self.or_()
            self.depth -= 1
            close = self.take()
            if close.kind != "rp":
                raise self.err("missing ')' for the '(' here", t.col)
            return node
        if t.kind == "phrase":
            return self.phrase(t.text, t.col)
        if t.kind == "about":
            return About(t.text, t.col, t.threshold)
        if t.kind == "word":
            return self.word(t.text, t.col)
        if t.kind == "end":
            raise self.err("the query ends where a term was expected", t.col)
        if t.kind == "rp":
            raise self.err("')' without a matching '('", t.col)
        raise self.err(f"expected a term, found {t.text!r}", t.col)

    def phrase(self, text: str, col: int) -> Node:
        m = re.fullmatch(r'"([^"]*)"(?:~(\d*))?', text, re.S)
        if not m:
            raise self.err("unclosed quote", col)
        if m.group(2) == "":
            raise self.err("write \"phrase\"~n with a number of extra words", col + len(text) - 1)
        slop = int(m.group(2) or 0)
        ws: list[W] = []
        inner = m.group(1)
        for wm in re.finditer(r"\S+", inner):
            ws.extend(_word_matchers(wm.group(0), self.q, col + 1 + wm.start()))
        if not ws:
            raise self.err("empty phrase", col)
        return Seq(tuple(ws), slop=slop, label=text)

    def word(self, text: str, col: int) -> Node:
        fm = _FIELD.match(text) if ":" in text else None
        if fm and not fm.group(1).isdigit():
            name = fm.group(1).lower()
            if name not in FIELDS:
                raise self.err(f"unknown field {fm.group(1)!r} (known: {', '.join(FIELDS)})", col)
            rest = fm.group(2)
            rest_col = col + len(fm.group(1)) + 1
            if name in META_FIELDS:
                return self.meta(name, rest, rest_col)
            if rest:
                inner = self.word(rest, rest_col)
            else:
                if self.peek().kind not in ("word", "phrase", "lp"):
                    raise self.err(f"'{name}:' needs a term, phrase or (group) right after it",
                                   self.peek().col)
                inner = self.atom()
            if _has_meta(inner):
                raise self.err(f"'{name}:' cannot hold site:, source:, lang: or author:", col)
            if has_about(inner):
                raise self.err(f"'{name}:' cannot hold about(): it scores the title and every "
                               "sentence of the body", col)
            return _in_field(inner, name)
        if text.startswith("@"):
            return self.entity(text[1:], col)
        if text[0] in "aAT":
            self.not_an_operator(text, col)
        return _word_seq(text, self.q, col)

    def not_an_operator(self, text: str, col: int) -> None:
        """Refuse a plain word that, with the tokens around it, is an operator mistyped: a
        meaning rule written ``about ("...")`` or ``About("...")`` (the word "about" AND the
        phrase: a keyword rule), Google's ``AROUND(n)``, Lucene's ``[a TO b]`` range."""
        nxt = self.toks[self.i]
        if len(text) == 5 and text.lower() == "about":
            if nxt.kind == "lp" and self.toks[self.i + 1].kind == "phrase":
                raise self.err('a rule by meaning is written about("...") in lower case with no '
                               'space before the parenthesis; for the word "about" itself, quote '
                               'it: "about"', col)
        elif text == "AROUND" and nxt.kind == "lp" and nxt.col == col + len(text):
            raise self.err("AROUND(n) is not supported: write A NEAR/n B (at most n words between)", col)
        elif text == "TO" and self.i >= 2 and self.toks[self.i - 1].text == "TO":
            before = self.toks[self.i - 2]
            if before.text[:1] in "[{" and nxt.text[-1:] in "]}":
                raise self.err("ranges ([a TO b]) are not supported", before.col)

    def meta(self, name: str, rest: str, col: int) -> Node:
        if not rest:
            t = self.peek()
            if t.kind == "phrase":
                self.take()
                if not t.text.endswith('"'):
                    tail = t.text.rfind('"') + 1 if t.text.count('"') > 1 else 0
                    raise self.err(f"'{name}:' takes a value in quotes, with no ~n after it"
                                   if tail else "unclosed quote", t.col + tail)
                rest = t.text.strip('"')
                col = t.col
            elif t.kind == "word":
                self.take()
                rest, col = t.text, t.col
        if not rest.strip():
            raise self.err(f"'{name}:' needs a value", col)
        if name == "site":
            value = rest.strip().lower().removeprefix("www.")
            if not _DOMAIN.fullmatch(value):
                raise self.err("site: takes a domain such as astanatimes.com (its subdomains match "
                               "too), not a URL, path, port or wildcard", col)
        elif name == "lang":
            value = rest.strip().lower()
            if value not in DETECTED_LANGUAGES:
                primary = re.split(r"[-_]", value)[0]
                hint = (f"write lang:{primary}: languages are detected without a region"
                        if primary != value and primary in DETECTED_LANGUAGES else
                        "write a code the language detector reports: "
                        + ", ".join(sorted(DETECTED_LANGUAGES)))
                raise self.err(f"unknown language {rest.strip()!r} in lang: ({hint})", col)
        else:
            for ch in "*?^~|":
                if ch in rest:
                    example = '"Astana Times"' if name == "source" else '"Aigerim Seitkali"'
                    raise self.err(f"'{name}:' takes the words of a name as written "
                                   f"({name}:{example}); {ch!r} is not supported here",
                                   col + rest.index(ch))
            value = " ".join(fold(w) for w in query_words(rest))
            if not value:
                raise self.err(f"'{name}:' needs a value", col)
        return Meta(name, value)

    def entity(self, name: str, col: int) -> Node:
        ent = self.entities.get(name)
        if ent is None:
            known = ", ".join(sorted(self.entities)) or "none defined"
            raise self.err(f"unknown entity '@{name}' (known: {known}); define it as [entity.{name}]", col)
        key = (name, tuple(ent.aliases), bool(ent.inflect))
        node = _ENTITY_CACHE.get(key)
        if node is None:
            alts: list[Node] = []
            seen: set[tuple[W, ...]] = set()
            # Each alias in its other scripts too (Tokayev, Tokajew, Токаев, Токаєв: translit).
            for alias in ent.aliases:
                for spelling in sorted(transliterations(alias), key=lambda a: a != alias):
                    ws: list[W] = []
                    for piece in spelling.split():
                        ws.extend(_word_matchers(piece, self.q, col, inflect=ent.inflect))
                    if ws and tuple(ws) not in seen:
                        seen.add(tuple(ws))
                        alts.append(Seq(tuple(ws), label=spelling))
            if not alts:
                raise self.err(f"entity '@{name}' has no alias with a word in it", col)
            node = _ENTITY_CACHE[key] = Or(tuple(alts), label="@" + name)
        return node


# Entities expand the same way in every rule that names them: once per config is enough.
_ENTITY_CACHE: dict[tuple[str, tuple[str, ...], bool], Node] = {}


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(c) for c in node.children)
    if isinstance(node, Or):
        return any(_only_negative(c) for c in node.children)
    return False


def _holds(node: Node, kind: type) -> bool:
    """Whether the tree holds a node of this kind anywhere."""
    if isinstance(node, kind):
        return True
    if isinstance(node, Or | And):
        return any(_holds(c, kind) for c in node.children)
    if isinstance(node, Not):
        return _holds(node.child, kind)
    if isinstance(node, Near):
        return _holds(node.left, kind) or _holds(node.right, kind)
    return False


def _has_meta(node: Node) -> bool:
    return _holds(node, Meta)


def has_about(node: Node) -> bool:
    """Whether a tree holds an about() clause (and so needs the embedding model)."""
    return _holds(node, About)


def _check_positional(node: Node, p: _Parser, col: int) -> None:
    """NEAR/SENT sides must be words or groups of words, not NOT or metadata."""
    if isinstance(node, About):
        raise p.err("about() cannot be a side of NEAR/ONEAR/SENT: it scores whole sentences; "
                    "combine it with AND", node.col)
    if isinstance(node, Not):
        raise p.err("NOT cannot be a side of NEAR/ONEAR/SENT (put it outside)", col)
    if isinstance(node, Meta):
        raise p.err(f"{node.field}: cannot be a side of NEAR/ONEAR/SENT", col)
    if isinstance(node, Or | And):
        for c in node.children:
            _check_positional(c, p, col)
    if isinstance(node, Near):
        _check_positional(node.left, p, col)
        _check_positional(node.right, p, col)


def _holds_and(node: Node) -> bool:
    return isinstance(node, And) or (isinstance(node, Or) and any(_holds_and(c) for c in node.children))


def near(left: Node, right: Node, n: int | None, ordered: bool, sentence: bool, label: str) -> Node:
    """Build a proximity node; an AND group on either side distributes over it, so
    ``(A AND B) NEAR/5 C`` means ``(A NEAR/5 C) AND (B NEAR/5 C)``, also inside an OR:
    ``(A OR (B AND C)) NEAR/5 D`` is ``(A NEAR/5 D) OR ((B NEAR/5 D) AND (C NEAR/5 D))``."""
    if isinstance(left, And):
        return And(tuple(near(c, right, n, ordered, sentence, label) for c in left.children))
    if isinstance(right, And):
        return And(tuple(near(left, c, n, ordered, sentence, label) for c in right.children))
    if isinstance(left, Or) and _holds_and(left):
        return Or(tuple(near(c, right, n, ordered, sentence, label) for c in left.children), left.label)
    if isinstance(right, Or) and _holds_and(right):
        return Or(tuple(near(left, c, n, ordered, sentence, label) for c in right.children), right.label)
    return Near(left, right, n, ordered, sentence, label)


def _in_field(node: Node, name: str) -> Node:
    if isinstance(node, Seq):
        return Seq(node.words, node.slop, name, node.label)
    if isinstance(node, Or):
        return Or(tuple(_in_field(c, name) for c in node.children), node.label)
    if isinstance(node, And):
        return And(tuple(_in_field(c, name) for c in node.children))
    if isinstance(node, Not):
        return Not(_in_field(node.child, name))
    if isinstance(node, Near):
        return Near(_in_field(node.left, name), _in_field(node.right, name), node.n, node.ordered,
                    node.sentence, node.label)
    return node


def entity_alias_problem(alias: str) -> str | None:
    """Why an entity alias cannot be used, or None (checked when the config loads)."""
    try:
        ws = [w for piece in alias.split() for w in _word_matchers(piece, alias, 0)]
    except QuerySyntaxError as exc:
        return exc.message
    return None if ws else "has no word in it"


def parse_query(q: str, entities: Mapping[str, Any] | None = None) -> Node:
    """Parse a query; raise QuerySyntaxError naming the column of the problem."""
    return _Parser(q, entities or {}).parse()
