"""Near-duplicate fingerprints: MinHash over word shingles, cut into LSH bands.

Wire copies are trimmed, re-headlined, lightly edited and wrapped in boilerplate, so equality
of anything is useless; the share of word trigrams they have in common survives all of that.
MinHash estimates that share from a small signature; LSH bands of the signature are the
database's index keys, so finding candidates is a handful of indexed lookups however many
articles are stored. Candidates are then verified on their exact shingle sets (see ``verify``),
because LSH is tuned to miss little and therefore lets some unrelated pairs through.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from datasketch import MinHash

SHINGLE = 3  # words per shingle: 2 shares too much stop-word glue ("of the"), 4+ breaks on light edits
NUM_PERM = 64
ROWS = 2  # values per band: P(candidate) = 1 - (1 - J^2)^BANDS; J=0.3 -> 0.95, J=0.02 -> 0.013
BANDS = NUM_PERM // ROWS
_SEED = 20251124

# Scripts written without spaces: every character counts as a word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)


@cache
def _perms() -> Any:
    """The shared permutations (building them is the slow part).

    datasketch is imported on first use, not at import time: it pulls in scipy (~80 MB resident),
    which a daemon whose feeds answer 304 never needs.
    """
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=_SEED).permutations


def tokens(text: str) -> list[str]:
    """Words of the text, case-, width- and punctuation-insensitive (re-punctuation is noise)."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def shingles(words: list[str], k: int = SHINGLE) -> set[int]:
    """32-bit hashes of the k-word shingles; a text shorter than k is one shingle."""
    if not words:
        return set()
    if len(words) < k:
        return {zlib.crc32(" ".join(words).encode())}
    return {zlib.crc32(" ".join(words[i:i + k]).encode()) for i in range(len(words) - k + 1)}


def _identity(x: int) -> int:
    return x


def minhash(shingle_set: Iterable[int]) -> MinHash:
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=_identity, permutations=_perms(),
                scheme="affine32")
    m.update_batch(list(shingle_set))
    return m


def band_keys(m: MinHash) -> list[int]:
    """One signed 32-bit key per band; the band number is part of the key.

    32 bits keep the index small (4 bytes a key on either backend). With a million articles a
    lookup meets an unrelated article by key collision about once in four checks; verification
    rejects it.
    """
    hv = np.asarray(m.hashvalues, dtype=np.uint32)
    out = []
    for b in range(BANDS):
        chunk = b.to_bytes(2, "little") + hv[b * ROWS:(b + 1) * ROWS].tobytes()
        out.append(int.from_bytes(hashlib.blake2b(chunk, digest_size=4).digest(), "little", signed=True))
    return out


@dataclass(frozen=True)
class Fingerprint:
    """What dedup needs of one article body (boilerplate already removed)."""

    shingles: frozenset[int]
    bands: tuple[int, ...]
    words: int


def fingerprint_words(words: list[str], bands: bool = True) -> Fingerprint:
    """``bands=False``: shingles only, enough to verify a candidate (the MinHash is the slow part)."""
    sh = shingles(words)
    return Fingerprint(frozenset(sh), tuple(band_keys(minhash(sh))) if sh and bands else (), len(words))


MIN_SHARED = 12  # shingles in common: a shared sentence or two (a quote) is not a copy


def verify(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> float:
    """Containment of the shorter in the longer; 0 when too little is shared to judge.

    Containment, not Jaccard: a copy trimmed to half shares half of the original's shingles but
    nearly all of its own.
    """
    if not a or not b:
        return 0.0
    shared = len(a & b)
    small = min(len(a), len(b))
    if shared < min(MIN_SHARED, small):
        return 0.0
    return shared / small
