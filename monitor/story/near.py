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
import random
import re
import unicodedata
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

SHINGLE = 3  # words per shingle: 2 shares too much stop-word glue ("of the"), 4+ breaks on light edits
NUM_PERM = 64
ROWS = 2  # values per band: P(candidate) = 1 - (1 - J^2)^BANDS; J=0.3 -> 0.95, J=0.02 -> 0.013
BANDS = NUM_PERM // ROWS
_SEED = 20251124

# Scripts written without spaces: every character counts as a word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)
# Where a text holds no character of those scripts, ``_TOKEN``'s words are its runs of word
# characters: a simpler pattern that the regex engine runs in ~3/4 of the instructions.
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD = re.compile(r"\w+")


@cache
def _perms() -> tuple[np.ndarray, np.ndarray]:
    """The ``NUM_PERM`` affine permutations h -> a*h + b mod 2^32 (``a`` odd, so each is a
    bijection), drawn from ``_SEED`` exactly as datasketch 2's "affine32" MinHash draws them: the
    signatures, hence the band keys already stored, are the ones datasketch computed. A few lines
    of NumPy instead of datasketch, which imports scipy (~0.6 s and ~40 MB in every process).

    datasketch draws them with NumPy's legacy ``RandomState(_SEED)``: a Mersenne Twister seeded
    by ``init_genrand``, then ``randint`` below 2^31 (the low 31 bits of a draw) and below 2^32
    (a whole draw). The standard library's Mersenne Twister, given that state, yields the same
    draws without importing ``numpy.random`` (~4 MB in each extraction worker, which computes
    bands with its pages)."""
    mt = [_SEED]
    for i in range(1, 624):  # init_genrand
        mt.append((1812433253 * (mt[-1] ^ (mt[-1] >> 30)) + i) & 0xFFFFFFFF)
    gen = random.Random()
    gen.setstate((3, (*mt, 624), None))
    a = np.array([(gen.getrandbits(32) & 0x7FFFFFFF) * 2 + 1 for _ in range(NUM_PERM)], dtype=np.uint32)
    b = np.array([gen.getrandbits(32) for _ in range(NUM_PERM)], dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, an avalanching bijection of 32-bit values: the shingle hashes
    (CRC-32) are mixed before the affine permutations, which alone keep too much of their
    structure."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def tokens(text: str) -> list[str]:
    """Words of the text, case-, width- and punctuation-insensitive (re-punctuation is noise)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return (_TOKEN if spaceless(folded) else _WORD).findall(folded)


def spaceless(words: str) -> bool:
    """Whether ``words`` (folded text, or ``tokens``' words joined) hold a character of a script
    written without spaces (each such character is a word of its own)."""
    return _CJK_CHAR.search(words) is not None


def shingles(words: list[str], k: int = SHINGLE) -> set[int]:
    """32-bit hashes of the k-word shingles; a text shorter than k is one shingle."""
    if not words:
        return set()
    if len(words) < k:
        return {zlib.crc32(" ".join(words).encode())}
    return {zlib.crc32(" ".join(words[i:i + k]).encode()) for i in range(len(words) - k + 1)}


def minhash(shingle_set: Iterable[int] | np.ndarray) -> np.ndarray:
    """The MinHash signature: for each permutation, the least permuted shingle hash (uint32).
    ``shingle_set``: the hashes, or already a uint32 array of them (not copied)."""
    hv = shingle_set if isinstance(shingle_set, np.ndarray) else np.fromiter(shingle_set, dtype=np.uint32)
    if not hv.size:
        return np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    a, b = _perms()
    with np.errstate(over="ignore"):  # the arithmetic is mod 2^32 on purpose
        # every shingle under every permutation, in one array added to in place (a shingle
        # set's is ~180 KB: a second one cost as much as the arithmetic)
        permuted = np.multiply.outer(_fmix32(hv.astype(np.uint32, copy=False)), a)
        permuted += b
        return permuted.min(axis=0)


def band_keys(hv: np.ndarray) -> list[int]:
    """One signed 32-bit key per band; the band number is part of the key.

    32 bits keep the index small (4 bytes a key on either backend). With a million articles a
    lookup meets an unrelated article by key collision about once in four checks; verification
    rejects it.
    """
    hv = np.asarray(hv, dtype=np.uint32)
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


def verify(a: frozenset[int] | set[int], b: Collection[int]) -> float:
    """Containment of the shorter in the longer; 0 when too little is shared to judge. ``b``
    holds distinct values (a set, or the story index's compact array of them).

    Containment, not Jaccard: a copy trimmed to half shares half of the original's shingles but
    nearly all of its own.
    """
    if not a or not b:
        return 0.0
    shared = len(a.intersection(b))
    small = min(len(a), len(b))
    if shared < min(MIN_SHARED, small):
        return 0.0
    return shared / small
