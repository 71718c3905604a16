"""Language detection from the text itself: declared languages (feed, <html lang>) are often wrong."""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

from monitor.util import cache_dir

MIN_CHARS = 40
# Characters read: the identifier walks the text byte by byte in Python (~0.5 us a byte). 1,500
# characters (~250 words) gave the same language as 4,000 for every text of the benches and test
# fixtures (330 texts in 9 languages; the same down to 500) at under half the cost.
SAMPLE_CHARS = 1500
_ARRAYS = ("ptc", "pc", "nextmove", "row", "out")


# Bytes that decide the state of py3langid's model after any text: checked on the model (after
# 6 bytes, walks from every state agree), and again on each text (``_visits``).
WINDOW = 6


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    identifier_class = _identifier_class()
    packed = MODEL_DIR / MODEL_FILE
    by_byte = None
    try:
        ptc, pc, classes, nextmove, row, out = _mapped(packed)
    except (OSError, ValueError):  # no cache we can write: the model in memory, as py3langid loads it
        identifier = identifier_class.from_model_file(MODEL_FILE, norm_probs=True)
    else:
        identifier = identifier_class(ptc, pc, classes, nextmove, out, norm_probs=True, tk_row=row)
        with contextlib.suppress(OSError, ValueError):  # none written (a full disk): walked row by row
            by_byte = _mapped_by_byte(packed)
    _compact_rows(identifier)
    identifier.tables = _tables(identifier, by_byte)
    return identifier


@lru_cache(maxsize=1)
def _identifier_class() -> Any:
    """py3langid's identifier, walking its DFA with NumPy (``_visits``) where py3langid walks it a
    byte at a time in Python: a page's language detection 0.41 -> 0.32 ms CPU (bench.ingest's
    pages; the rest is py3langid's scoring). The same answers: the same feature counts, in the
    same order, scored by py3langid's own code."""
    from py3langid.langid import LanguageIdentifier

    class Identifier(LanguageIdentifier):
        __slots__ = ("tables",)

        def _raw_score(self, text: bytes) -> Any:
            visits = _visits(self.tables, text)
            if visits is None:  # a text the check refused: py3langid's own walk
                return super()._raw_score(text)
            if visits:
                return self._sparse_score(visits, self.nb_ptc)
            return super()._raw_score(b"")  # no features: py3langid's answer for any such text

        def _sparse_score(self, visits: Any, table: Any) -> Any:
            """py3langid's score (the visited features' rows, weighted by their counts' log1p),
            the model's half-precision rows widened by ``_widen``."""
            import numpy as np

            rows = table[np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))]
            counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
            return np.log1p(counts) @ _widen(rows) + self.nb_pc

    return Identifier


def _widen(rows: Any) -> Any:
    """float16 ``rows`` as float32, the same values NumPy's cast gives; other types as they are.

    Scoring multiplies float32 counts by the model's float16 rows, and NumPy first casts the
    rows, one element at a time in software: ~0.15 ms of a text's ~0.6 (700 rows of 142
    languages). Where every row value is a normal number of one sign (the model's log
    probabilities are negative), the cast is the bits moved into place, in place on one
    array: the exponent rebased (15 -> 127), the mantissa shifted by 13. Anything else (a zero,
    a subnormal, an infinity, both signs): NumPy's cast. The product is then the float32 one
    NumPy computed after its own cast (a test compares every float16 value, and the scores)."""
    import numpy as np

    if rows.dtype != np.float16:
        return rows
    if not rows.size:
        return rows.astype(np.float32)
    wide = rows.view(np.uint16).astype(np.uint32)
    low, high = int(wide.min()), int(wide.max())
    sign = low & 0x8000
    if sign != high & 0x8000 or low & 0x7FFF < 0x0400 or high & 0x7FFF >= 0x7C00:
        return rows.astype(np.float32)
    wide &= 0x7FFF
    wide <<= 13
    wide += (sign << 16) + ((127 - 15) << 23)
    return wide.view(np.float32)


def _tables(identifier: Any, by_byte: Any = None) -> tuple[Any, Any, Any, int]:
    """The DFA's transitions, each state's part of a transition's index, each state's feature,
    and what a byte's value is multiplied by for its part: int32 arrays over the identifier's
    own memory (states and indexes are below 2^31). ``by_byte``: the transitions one byte
    value's column after another (``_mapped_by_byte``): a state's row is its part; else
    py3langid's table, row after row: the row's offset (shifted)."""
    import numpy as np

    out = np.asarray(identifier.tk_output, dtype=np.int32)
    if by_byte is not None:
        return by_byte, np.asarray(identifier.tk_row, dtype=np.int32), out, len(by_byte) // 256
    nextmove = np.asarray(identifier.tk_nextmove)  # uint32: viewed, not copied (39 MB, mapped)
    nextmove = nextmove.view(np.int32) if nextmove.dtype == np.uint32 else nextmove.astype(np.int32, copy=False)
    return nextmove, np.asarray(identifier._rowbase, dtype=np.int32), out, 1


def _visits(tables: tuple[Any, Any, Any, int], text: bytes) -> Counter[int] | None:
    """What py3langid's ``visit_counts`` counts (each feature the walk over ``text`` meets, in the
    order first met; empty: none), with NumPy; None where the check below fails.

    The state after a byte depends only on the ``WINDOW`` bytes up to it (the model's states
    stand for byte strings no longer than that), so every position's state is found at once, by
    ``WINDOW`` steps over the whole text from the start state. Checked on each text: every state
    must be the DFA's step from the one before it (and the first, from the start state), which
    makes them the walk's states whatever the model; None if not (py3langid's walk then)."""
    import numpy as np

    nextmove, rowpart, out, stride = tables  # a transition's index: rowpart[state] + byte * stride
    data = np.frombuffer(text, dtype=np.uint8).astype(np.int32)
    if stride != 1:
        data *= stride
    n = len(data)
    states = np.zeros(n, dtype=np.int32)
    for k in range(min(WINDOW, n) - 1, -1, -1):  # k: how many bytes before a position its step reads
        s = states[k:]
        rowpart.take(s, out=s)
        s += data[:n - k]
        nextmove.take(s, out=s)
    following = rowpart[states[:-1]]
    following += data[1:]
    if not np.array_equal(nextmove[following], states[1:]):
        return None
    found = out[states]
    return Counter(found[found >= 0].tolist())


def _compact_rows(identifier: Any) -> None:
    """py3langid keeps each DFA state's row offset in a list of Python ints (104,583 of them,
    ~3.7 MB): loaded in the forkserver, that list is shared by the extraction workers only until
    they read it, and reading an int writes its reference count, so every worker ended up with
    its own copy of most of the pages (~2.5 MB each after 300 pages). The same offsets in one
    int32 array (0.4 MB) are never written; the walk reads them as fast (~0.03 ms more a text).
    Left as it is if py3langid no longer has the list."""
    import numpy as np

    if isinstance(getattr(identifier, "_rowbase", None), list):
        identifier._rowbase = (np.asarray(identifier.tk_row, dtype=np.int32) << 8).data


def _mapped(packed: Path) -> tuple[Any, Any, list[str], Any, Any, Any]:
    """py3langid's model, its arrays mapped from an unpacked copy in ``cache_dir()``.

    Loaded the usual way, the model is 70 MB in memory (a 4.6 MB xz file unpacked: ~0.8 s of CPU)
    of which a text touches a few rows: mapped, it loads at once and only the pages read are in
    memory, shared by every process that maps it (the extraction workers) and given back under
    memory pressure. The copy is made once per model file (named by its size and time)."""
    import numpy as np

    here = _model_dir(packed)
    if not (here / "classes.json").exists():
        _unpack(packed, here)
    arrays = {name: np.load(here / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _ARRAYS}
    for a in arrays.values():
        # a text reads scattered rows: without this each read would map its neighbours too
        with contextlib.suppress(AttributeError, OSError):
            a._mmap.madvise(mmap.MADV_RANDOM)
    classes = json.loads((here / "classes.json").read_text(encoding="utf-8"))
    # The DFA is walked in Python a byte at a time: memoryviews index as fast as py3langid's arrays.
    # The tables as plain arrays over the same mapped pages: numpy's memmap class indexes through
    # Python code of its own (~1 % of a page's extraction, for each text's rows of ``ptc``).
    return (np.asarray(arrays["ptc"]), np.asarray(arrays["pc"]), classes, memoryview(arrays["nextmove"]),
            memoryview(arrays["row"]), memoryview(arrays["out"]))


def _model_dir(packed: Path) -> Path:
    """Where the unpacked copy of the model file ``packed`` is kept (named by its size and time)."""
    stat = packed.stat()
    return cache_dir() / f"langid-{stat.st_size}-{stat.st_mtime_ns}"


BY_BYTE = "bytemove.npy"


def _mapped_by_byte(packed: Path) -> Any:
    """The DFA's transitions of the unpacked copy (``_mapped``) again, one byte value's column
    after another (the transition from row r on byte b at b * rows + r), mapped; written on
    first use from py3langid's layout, row after row (``nextmove.npy``, which py3langid's own
    walk reads: the fallback and the tests).

    Why: a text's walk reads a few transitions of thousands of rows (1 KB each), scattered over
    the whole 39 MB table, and every page it reads is in memory, mapped in the workers. By
    byte, the transitions a text reads lie in the columns of the bytes it holds, close together:
    bench.ingest's 299 texts read 1,826 pages (7.1 MB) of this table where they read 3,994 (15.6
    MB) of py3langid's, for the same walk. Columns of byte values no text of a language holds
    are never read."""
    import numpy as np

    path = _model_dir(packed) / BY_BYTE
    if not path.exists():
        rows = np.load(path.with_name("nextmove.npy"), allow_pickle=False)  # read, not mapped: 39 MB for a moment
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(rows.reshape(-1, 256).T).ravel(), allow_pickle=False)
            _uncache(Path(tmp))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        del rows
    table = np.load(path, mmap_mode="r", allow_pickle=False)
    with contextlib.suppress(AttributeError, OSError):
        table._mmap.madvise(mmap.MADV_RANDOM)
    return np.asarray(table).view(np.int32)


def _unpack(packed: Path, here: Path) -> None:
    import numpy as np
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, out = load_model(packed)
    here.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=here.parent) as tmp:
        for name, value in zip(_ARRAYS, (ptc, pc, np.frombuffer(nextmove, dtype=np.dtype(nextmove.typecode)),
                                         np.frombuffer(row, dtype=np.dtype(row.typecode)),
                                         np.asarray(out, dtype=np.int32)), strict=True):
            np.save(Path(tmp) / f"{name}.npy", np.ascontiguousarray(value), allow_pickle=False)
            _uncache(Path(tmp) / f"{name}.npy")
        # last: its presence says the copy is whole
        (Path(tmp) / "classes.json").write_text(json.dumps(classes), encoding="utf-8")
        with contextlib.suppress(OSError):  # another process unpacked it meanwhile: theirs is used
            os.replace(tmp, here)
            os.mkdir(tmp)  # for TemporaryDirectory's clean-up


def _uncache(path: Path) -> None:
    """The file's pages out of the page cache (written to disk first). A process that maps the
    model maps, on each page it reads, the cached pages around it too (the kernel's fault-around,
    64 KB, whatever MADV_RANDOM says): with the whole copy cached, as writing it leaves it, two
    workers ended up with 60 of its 67 MB in memory after 300 texts, where the texts read 26 MB.
    Uncached, only pages some text has read are cached again, and mapped."""
    if not hasattr(os, "posix_fadvise"):
        return
    with contextlib.suppress(OSError), open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def detect_language(text: str, declared: str | None = None) -> str | None:
    """ISO 639-1 code; the declared one when the text is too short or detection is unsure."""
    declared_code = declared.split("-")[0].split("_")[0].lower() if declared else None
    sample = text[:SAMPLE_CHARS]
    if len(sample.strip()) < MIN_CHARS:
        return declared_code
    lang, prob = _identifier().classify(sample)
    if prob < 0.5 and declared_code:
        return declared_code
    return str(lang)
