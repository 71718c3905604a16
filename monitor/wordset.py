"""A large set of words in little memory: sorted arrays of their UTF-8 bytes, one per length.

A Python set of 154,000 words takes ~19 MB (an object per word and the hash table), these
arrays ~2 MB; a lookup costs a few microseconds instead of a tenth of one, which suits sets that
are large and asked little: jusText's stop words of every language in the extraction workers
(``monitor.extract.speedups``), the ~20,000 folded country names speaker attribution asks about
a few hundred times a run (``monitor.match.speakers``). ``dumps``/``load`` keep one in a file
that processes map and share.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class WordSet:
    """A set of words, as far as ``in`` goes, in sorted arrays of their UTF-8 bytes (one array per
    length): ~2 MB for jusText's 154,000 stop words where a set of them takes ~19 MB."""

    def __init__(self, words: Iterable[str]) -> None:
        import numpy as np

        by_length: dict[int, set[bytes]] = {}
        self._other: frozenset[str] = frozenset()  # words an array would not hold as they are
        for word in words:
            raw = word.encode("utf-8", "surrogatepass")
            if raw.endswith(b"\0"):  # numpy's byte strings drop trailing NULs
                self._other |= {word}
            else:
                by_length.setdefault(len(raw), set()).add(raw)
        self._arrays: dict[int, Any] = {n: np.array(sorted(found), dtype=f"S{n}") for n, found in by_length.items()}

    # A kept copy: a line of JSON (each length's count and offset, the words no array holds),
    # then the arrays' bytes.
    def dumps(self) -> bytes:
        """The words as ``load`` reads them back."""
        index, offset = [], 0
        for n, a in sorted(self._arrays.items()):
            index.append([n, len(a), offset])
            offset += a.nbytes
        head = json.dumps({"arrays": index, "other": sorted(self._other)}).encode() + b"\n"
        return head + b"".join(a.tobytes() for _, a in sorted(self._arrays.items()))

    @classmethod
    def load(cls, path: Path) -> WordSet:
        """The words ``dumps`` wrote to ``path``, their arrays mapped from it (read-only pages the
        processes that map it share). ValueError for a file that is not whole."""
        import numpy as np

        with open(path, "rb") as f:
            head = f.readline()
            found = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        index = json.loads(head)
        self = cls.__new__(cls)
        self._other = frozenset(index["other"])
        self._arrays = {n: np.frombuffer(found, dtype=f"S{n}", count=count, offset=len(head) + offset)
                        for n, count, offset in index["arrays"]}
        if sum(a.nbytes for a in self._arrays.values()) + len(head) != len(found):
            raise ValueError(f"{path}: not as written")
        return self

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        raw = word.encode("utf-8", "surrogatepass")
        found = self._arrays.get(len(raw))
        if found is None or raw.endswith(b"\0"):
            return word in self._other
        i = int(found.searchsorted(raw))
        return i < len(found) and bytes(found[i]) == raw
