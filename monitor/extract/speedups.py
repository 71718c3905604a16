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

So every expression selects exactly the elements it selected before (a test runs every rewritten
expression against its original on real pages). Applied once per process, in place, to
trafilatura's lists of compiled XPaths, which its modules share by reference.
"""

from __future__ import annotations

import functools
import re

from lxml import etree

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


def xpath_lists() -> dict[str, list[etree.XPath]]:
    """trafilatura's module-level lists of compiled XPaths, by name."""
    from trafilatura import xpaths

    found = {}
    for name in dir(xpaths):
        value = getattr(xpaths, name)
        if isinstance(value, list) and value and all(isinstance(x, etree.XPath) for x in value):
            found[name] = value
    return found


@functools.cache
def apply() -> dict[tuple[str, int], str]:
    """Guard trafilatura's XPaths (once per process). Returns the original text of each
    expression rewritten, by (list name, index)."""
    rewritten = {}
    for name, expressions in xpath_lists().items():
        for i, expression in enumerate(expressions):
            path = guarded(expression.path)
            if path != expression.path:
                rewritten[name, i] = expression.path
                expressions[i] = etree.XPath(path, namespaces={"re": REGEXP_NS})
    return rewritten
