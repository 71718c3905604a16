"""Vectors at rest: float16 bytes (1 KB for 512 dimensions), and the text an article vector is
computed from."""

from __future__ import annotations

import numpy as np

# The title and the start of the body: where news puts what an article is about. A longer text
# costs more to embed and adds little to the vector of a bag-of-n-grams model.
ARTICLE_CHARS = 2000


def article_text(title: str, body: str) -> str:
    """What an article's stored vector is computed from (the same at ingest and in backtests)."""
    return f"{title.strip()}\n{body[:ARTICLE_CHARS]}".strip()


def pack(vector: np.ndarray) -> bytes:
    """One vector as little-endian float16 bytes (cosine error below 1e-3)."""
    return np.asarray(vector, dtype="<f2").tobytes()


def unpack(data: bytes) -> np.ndarray:
    """The float32 vector ``pack`` stored, re-normalised to unit length."""
    v = np.frombuffer(data, dtype="<f2").astype(np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n else v
