"""Stage: extract. An article page in, its main text and metadata out.

The names are imported on first use: ``Extracted`` (``monitor.extract.result``) without the
extractor, so the process that stores the workers' results never loads lxml or the language
model for them."""

from typing import TYPE_CHECKING

from monitor.util import lazy_exports

if TYPE_CHECKING:
    from monitor.extract.article import extract_article
    from monitor.extract.language import detect_language
    from monitor.extract.result import Extracted

__all__ = ["Extracted", "detect_language", "extract_article"]
__getattr__ = lazy_exports(__name__, {"Extracted": "monitor.extract.result", "extract_article": "monitor.extract.article",
                                      "detect_language": "monitor.extract.language"})
