"""Language detection from the text itself: declared languages (feed, <html lang>) are often wrong."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MIN_CHARS = 40


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str, declared: str | None = None) -> str | None:
    """ISO 639-1 code; the declared one when the text is too short or detection is unsure."""
    declared_code = declared.split("-")[0].split("_")[0].lower() if declared else None
    sample = text[:4000]
    if len(sample.strip()) < MIN_CHARS:
        return declared_code
    lang, prob = _identifier().classify(sample)
    if prob < 0.5 and declared_code:
        return declared_code
    return str(lang)
