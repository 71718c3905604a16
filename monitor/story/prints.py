"""What story assignment computes from an article's own text and headline, whatever the database
holds: paragraph keys, the body's shingles and LSH bands, the content hash and (for event
stories) the names and figures.

Pure functions of the page, so the extraction worker computes them with the page
(``monitor.pagework``) and the main process, which stores every article on one thread, only
decides (``monitor.story.stories``). Which paragraphs are boilerplate is the database's to
know, so the worker keeps each paragraph's shingles apart (``paragraph_prints``) and the main
process joins those of the paragraphs it keeps (``body_shingles``): the same shingles as those
of the kept words run together, without splitting the text into words again. Imports no
database layer: the workers load this module.
"""

from __future__ import annotations

import hashlib
from array import array
from typing import TYPE_CHECKING

import numpy as np

from monitor.story.content import content_hash, normalised_hash
from monitor.story.near import SHINGLE, band_keys, minhash, shingles, spaceless, tokens
from monitor.story.result import Paragraphs, TextPrints

if TYPE_CHECKING:
    from collections.abc import Collection

_EDGE = SHINGLE - 1  # words at each end of a paragraph that a shingle across its border can hold


def key(s: str) -> int:
    """A signed 63-bit key (fits BIGINT on both backends)."""
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little", signed=True) >> 1


def paragraph_prints(text: str) -> Paragraphs:
    """Each non-empty paragraph's key (of its words joined by single spaces: no word holds
    one), word count, inner shingles and end words."""
    return _paragraph_prints(text)[0]


def _paragraph_prints(text: str) -> tuple[Paragraphs, list[str]]:
    """``paragraph_prints``, and each non-empty paragraph's words joined by single spaces."""
    keys, counts, inner, bounds = array("q"), array("I"), array("I"), array("I")
    ends, joined = [], []
    for p in text.split("\n"):
        ws = tokens(p)
        if not ws:
            continue
        words = " ".join(ws)
        joined.append(words)
        keys.append(key(words))
        counts.append(len(ws))
        if len(ws) >= SHINGLE:
            inner.extend(shingles(ws))
        bounds.append(len(inner))
        ends.append(words if len(ws) <= 2 * _EDGE else " ".join(ws[:_EDGE]) + "\t" + " ".join(ws[-_EDGE:]))
    return Paragraphs(keys, counts, inner, bounds, "\n".join(ends)), joined


def _content_hash(text: str, paragraph_words: list[str]) -> str:
    """``content_hash(text)``; ``paragraph_words``: its non-empty paragraphs' words, each
    joined by single spaces (``_paragraph_prints``).

    The hash is of the text's runs of word characters (NFKC, case-folded) joined by single
    spaces. Unless a character of a script written without spaces is among them (``tokens``
    makes each such character a word), those runs are the paragraphs' words: the same
    normalisation (NFKC and case folding act on each paragraph as on the whole text: a line
    break neither changes nor combines with its neighbours) and the same runs (a line break is
    no word character). So the text is not normalised and searched once more: ~1.6 M of the
    ~7.3 M instructions a page's prints cost (callgrind, bench.ingest's texts)."""
    words = " ".join(paragraph_words)
    return content_hash(text) if spaceless(words) else normalised_hash(words)


def headline_key(title: str) -> int | None:
    """The key a paragraph repeating the headline has (None: no headline words)."""
    head = " ".join(tokens(title)) if title else ""
    return key(head) if head else None


def body_shingles(par: Paragraphs, title: str, dropped: Collection[int]) -> tuple[array[int], int]:
    """(shingles, words) of the body without the paragraphs ``dropped`` (boilerplate) and
    without the headline (outlets rewrite those), all paragraphs if that leaves none:
    ``near.shingles`` of the kept paragraphs' words run together. The shingles inside a kept
    paragraph are its own; those across a border are made of the words at its ends. A
    paragraph is the headline when its key is the headline's (keys identify paragraphs here as
    boilerplate does). The shingles (distinct 32-bit hashes) as an array: 4 bytes each, where
    a frozenset of them takes ~80."""
    head = headline_key(title)
    keys = par.keys
    kept = [i for i, k in enumerate(keys) if k not in dropped and k != head] or range(len(keys))
    n = sum(par.counts[i] for i in kept)
    lines = par.ends.split("\n")
    if n < SHINGLE:  # every kept paragraph is short: its line holds all its words
        return array("I", shingles([w for i in kept for w in lines[i].split(" ")])), n
    bounds, inner = par.bounds, par.inner
    out = set().union(*(inner[bounds[i - 1] if i else 0:bounds[i]] for i in kept))
    run: list[str] = []  # words in a row, across the borders of the kept paragraphs
    for i in kept:
        first, gap, last = lines[i].partition("\t")
        run += first.split(" ")
        if gap:  # a long paragraph: no shingle spans its middle
            if len(run) >= SHINGLE:
                out |= shingles(run)
            run = last.split(" ")
    if len(run) >= SHINGLE:
        out |= shingles(run)
    return array("I", out), n


def bands_of(sh: Collection[int]) -> tuple[int, ...]:
    """The LSH band keys of a shingle set (none for an empty one); an ``array("I")`` of distinct
    shingles (``body_shingles``') is read as it is, not made a set and copied item by item."""
    if not sh:
        return ()
    if isinstance(sh, array) and sh.typecode == "I" and sh.itemsize == 4:
        return tuple(band_keys(minhash(np.frombuffer(sh, dtype=np.uint32))))
    return tuple(band_keys(minhash(sh)))


def text_prints(title: str, text: str, events: bool = False) -> TextPrints:
    """Everything above for one article, boilerplate not yet known; ``events``: its names and
    figures too (``events.signature``)."""
    par, paragraph_words = _paragraph_prints(text)
    sig = None
    if events:
        from monitor.story.events import signature

        sig = signature(title, text)
    sh, n = body_shingles(par, title, ())
    return TextPrints(text=text, title=title, paragraphs=par, shingles=sh, words=n, bands=bands_of(sh),
                      content_hash=_content_hash(text, paragraph_words) if text else None, signature=sig)
