"""Exact-duplicate detection on normalised body text."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WS = re.compile(r"\W+", re.UNICODE)


def normalise_text(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return _WS.sub(" ", t).strip()


def content_hash(text: str) -> str:
    return normalised_hash(normalise_text(text))


def normalised_hash(normalised: str) -> str:
    """``content_hash`` of a text whose ``normalise_text`` is ``normalised``."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
