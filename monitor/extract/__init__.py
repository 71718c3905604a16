"""Stage: extract. An article page in, its main text and metadata out."""

from monitor.extract.article import Extracted, extract_article
from monitor.extract.language import detect_language

__all__ = ["Extracted", "detect_language", "extract_article"]
