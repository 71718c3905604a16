"""trafilatura's XPath searches, made cheaper without changing what they find.

Most of trafilatura's pruning and metadata searches are XPaths such as
``.//*[self::div or …][re:test(@id, 'share|social|…') or re:test(@class, '…')]``. lxml evaluates
``re:test`` in Python: for every candidate element it calls back into Python, wraps the
attribute in a "smart string" and, for that, makes a Python object of the element (for
``lxml.html`` trees through a Python class lookup). That was ~1 ms of the ~8 ms a worker spends
on a page (bench.ingest's pages), most of it on elements that do not have the attribute at all.

``guarded`` rewrites each such test so the callback happens only where it can succeed:

- ``re:test(@a, P)`` becomes ``(@a and re:test(string(@a), P))``: without the attribute the
  test reads the empty string, which P does not match (checked for each pattern: a pattern that
  matches the empty string is left as it is); with it, ``string(@a)`` is the same text, handed
  over as a plain string (no element object made for it);
- ``re:test(@a|@b, P)`` becomes ``((@a|@b) and re:test(@a|@b, P))``: the node-set argument is
  kept as it is (lxml tests its first node, in the order lxml hands it over), only skipped
  when the element has neither attribute.

And ``by_tag`` rewrites an expression that starts by filtering every element on its name,
``.//*[self::div or self::section][…]``, into the union of the descendants with those names,
``(descendant::div|descendant::section)[…]``: libxml2 then walks the tree looking for those names
instead of gathering every element and testing each in the predicate (~8 % of a page's
extraction, bench.ingest's pages). The same elements in the same (document) order, provided no
later predicate depends on positions, which count per parent in the first form and along the
whole set in the second: expressions with anything that could be a number are left as they are.

So every expression selects exactly the elements it selected before (a test runs every rewritten
expression against its original on real pages). Applied once per process, in place, to
trafilatura's lists of compiled XPaths, which its modules share by reference.

And jusText's stop words: on a page where trafilatura falls back to jusText without knowing the
language (about one page in 300), it gathers the stop words of every language (154,000 words in
a tuple) and jusText makes a set of them: ~33 MB in that worker, the largest single step in the
pool's memory. A ``WordSet`` (``monitor.wordset``) answers jusText's only question of them
(``word.lower() in stoplist``) the same way from sorted arrays of their UTF-8 bytes, ~2 MB. Gathering and sorting
them cost ~0.4 s of CPU, in every worker that met such a page (in bench.extract_workers, ~1.3 ms
of every page's ~11): the arrays are kept in ``cache_dir()`` and mapped from there, so only a
machine's first worker builds them (and the workers share the pages).
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from lxml import etree

from monitor import wordset
from monitor.wordset import WordSet

REGEXP_NS = "http://exslt.org/regular-expressions"
_TEST = re.compile(r"re:test\((@[\w-]+(?:\|@[\w-]+)*), '([^']*)'(?:, '([^']*)')?\)")


def guarded(path: str) -> str:
    """``path`` with each ``re:test`` on attributes guarded as described above."""
    def guard(m: re.Match[str]) -> str:
        attrs, pattern, flags = m.groups()
        # lxml compiles the pattern with Python's re, case-insensitive for an 'i' flag
        if re.compile(pattern, re.IGNORECASE if flags and "i" in flags else 0).search("") is not None:
            return m.group(0)
        if "|" in attrs:
            return f"(({attrs}) and {m.group(0)})"
        more = f", '{flags}'" if flags is not None else ""
        return f"({attrs} and re:test(string({attrs}), '{pattern}'{more}))"

    return _TEST.sub(guard, path)


# ``.//*[self::a or self::b]`` (or ``//*``) at the start of an expression
_BY_TAG = re.compile(r"^(\s*)(\.?)//\*\[\s*(self::[\w-]+(?:\s+or\s+self::[\w-]+)*)\s*\]")
# What could make a predicate a number (hence a position test), outside string literals:
# numbers, functions and operators that give one, variables.
_NUMERIC = re.compile(r"(?<![\w-])\d|\$|(?:position|last|count|sum|number|length|floor|ceiling|round)\s*\("
                      r"|(?<![\w-])(?:div|mod)(?![\w-])|\+|(?<![\w-])-|-(?![\w-])|[\w)\]]\s*\*")
_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


def by_tag(path: str) -> str:
    """``path`` with a leading filter of every element by name made a union of name steps, as
    described above; as it is where it does not start so or could test positions."""
    m = _BY_TAG.match(path)
    if m is None or _NUMERIC.search(_LITERAL.sub("''", path[m.end():])):
        return path
    axis = "descendant::" if m.group(2) else "/descendant::"
    names = re.findall(r"self::([\w-]+)", m.group(3))
    return f"{m.group(1)}({'|'.join(axis + name for name in names)}){path[m.end():]}"


def xpath_lists() -> dict[str, list[etree.XPath]]:
    """trafilatura's module-level lists of compiled XPaths, by name."""
    from trafilatura import xpaths

    found = {}
    for name in dir(xpaths):
        value = getattr(xpaths, name)
        if isinstance(value, list) and value and all(isinstance(x, etree.XPath) for x in value):
            found[name] = value
    return found


class _AllStopWords:
    """trafilatura's ``JT_STOPLIST``: the stop words of every jusText language, gathered (as
    trafilatura gathers them) on the first page that needs them."""

    @functools.cached_property
    def words(self) -> WordSet:
        from justext.utils import get_stoplist, get_stoplists

        from monitor.util import cache_dir, keep_file

        try:
            path: Path | None = cache_dir() / f"stopwords-{_stoplists_key()}.bin"
        except OSError:  # no cache directory: built in memory
            path = None
        if path is not None:
            try:
                return WordSet.load(path)
            except (OSError, ValueError, KeyError, TypeError):  # not made yet (or not whole): made now
                pass
        # as jusText's define_stoplist makes them: lower-cased
        words = WordSet(word.lower() for language in get_stoplists() for word in get_stoplist(language))
        if path is not None:
            keep_file(path, words.dumps(), prune=("stopwords-*.bin", path.name))  # an old jusText's go
        return words


def _stoplists_key() -> str:
    """Names the kept stop words by jusText's stop-list files (their names, sizes and times)
    and by the code that writes and reads the file's layout (``WordSet.dumps``/``load``, in
    ``monitor.wordset``): a file of another layout is never read as this one."""
    import justext

    from monitor.util import code_version

    folder = Path(justext.__file__).parent / "stoplists"
    files = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder)
                   if e.name.endswith(".txt"))
    return code_version(json.dumps(files), files=(__file__, wordset.__file__))[:24]


def _define_stoplist(original: Any) -> Any:
    def define_stoplist(stoplist: Any) -> Any:
        if isinstance(stoplist, _AllStopWords):
            return stoplist.words
        return original(stoplist)

    return define_stoplist


@functools.cache
def apply() -> dict[tuple[str, int], str]:
    """Guard trafilatura's XPaths, find their elements by name where they filter every element on
    it, and hand it the compact stop words (once per process). Returns
    the original text of each expression rewritten, by (list name, index)."""
    import justext.core
    import trafilatura.external

    rewritten = {}
    for name, expressions in xpath_lists().items():
        for i, expression in enumerate(expressions):
            path = by_tag(guarded(expression.path))
            if path != expression.path:
                rewritten[name, i] = expression.path
                expressions[i] = etree.XPath(path, namespaces={"re": REGEXP_NS})
    # trafilatura.external reads its JT_STOPLIST when a page needs it (``JT_STOPLIST or
    # jt_stoplist_init()``) and hands it to jusText's classify_paragraphs, which reads its module's
    # define_stoplist when called
    justext.core.define_stoplist = _define_stoplist(justext.core.define_stoplist)
    trafilatura.external.JT_STOPLIST = _AllStopWords()  # type: ignore[assignment]
    return rewritten
