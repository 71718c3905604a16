"""Article vectors in the database: written once at ingest, read by backtests and stories."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlmodel import Session, col, select

from monitor.embed.model import MODEL_NAME
from monitor.embed.vectors import pack, unpack
from monitor.store.models import ArticleVector


def save_vector(s: Session, article_id: int, vector: np.ndarray) -> None:
    """Store (or replace) an article's vector, in the caller's transaction."""
    row = s.get(ArticleVector, article_id)
    if row is None:
        s.add(ArticleVector(article_id=article_id, model=MODEL_NAME, vector=pack(vector)))
    else:
        row.model, row.vector = MODEL_NAME, pack(vector)
        s.add(row)


def load_vectors(s: Session, article_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Stored vectors of these articles made by the current model (others are left out)."""
    ids = list(article_ids)
    out: dict[int, np.ndarray] = {}
    for i in range(0, len(ids), 500):
        rows = s.exec(select(ArticleVector).where(col(ArticleVector.article_id).in_(ids[i:i + 500]),
                                                  ArticleVector.model == MODEL_NAME)).all()
        out.update((r.article_id, unpack(r.vector)) for r in rows)
    return out
