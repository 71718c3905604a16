"""A bound on feedparser's one known quadratic search over feed text (``install``, called by
``monitor.parse.feed`` when it imports feedparser).

feedparser (6.0.14, the pinned release, and its development branch) looks for an e-mail address
in every ``<author>``, ``<dc:creator>`` or ``<managingEditor>`` value that came without a
structured name and address, with a pattern whose nested repetition backtracks quadratically
on a long value that almost matches: ``a@`` followed by ``a.`` repeated. Measured here: a 32 KB
value took 3.6 s of CPU, and the time grows with the square of the length, so a feed of a few
megabytes holds a thread for hours (kurtmckee/feedparser#562; an unmerged fix, #580, bounds the
length the same way as here).

That search runs inside the regular-expression engine, in C, holding the interpreter lock: our
parse budget (``monitor.parse.budget``) raises its interruption only at the thread's next Python
instruction, which does not come, and no other thread of the daemon runs meanwhile, the event
loop included. Measured before this guard with ``run --once`` on two such feeds (120 KB each)
and a plain one: the plain feed failed with "parsing the feed took longer than 15 s" as well,
and the run ended only after 101 s, when the searches did; in tests/test_hostile_parse.py the
plain feed's download timed out (60 s) behind them. One hostile feed must not stop the others,
so the search is bounded here instead.

A value longer than ``AUTHOR_SEARCH_MAX`` characters is not searched: it is kept whole as the
name, which is what feedparser does with a value that holds no address. Real bylines ("Ann
Reporter (ann@example.org)", a list of a dozen names) are far shorter, and go through
feedparser's own code unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

AUTHOR_SEARCH_MAX = 1_000  # characters of an author value searched for an e-mail address

_MARK = "_monitor_bounded"


def _bounded(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def sync_author_detail(self: Any, key: str = "author") -> None:
        context = self._get_context()
        value = context.get(key)
        # feedparser searches only when the author has no structured detail yet (the last of
        # the ``<key>s`` list is empty): the same condition, and the same result as for a value
        # without an address (the detail's name is the value, set as ``<key>_detail``).
        details = context.get(f"{key}s")
        detail = details[-1] if details else None
        if not detail and isinstance(value, str) and len(value) > AUTHOR_SEARCH_MAX:
            from feedparser.util import FeedParserDict

            detail = detail if detail is not None else FeedParserDict()
            context.setdefault(f"{key}_detail", detail)
            detail["name"] = value
            return
        original(self, key)

    setattr(sync_author_detail, _MARK, True)
    return sync_author_detail


def install() -> None:
    """Bound feedparser's author search (once; the parsers inherit it from their mixin)."""
    from feedparser.mixin import _FeedParserMixin

    current = _FeedParserMixin._sync_author_detail
    if not getattr(current, _MARK, False):
        _FeedParserMixin._sync_author_detail = _bounded(current)

