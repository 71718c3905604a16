"""What extraction hands on: a light module, so the process that receives the workers' results
(their pickles name this class) imports no extractor: lxml, trafilatura's helpers and the
language model stay in the extraction processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str
    published: datetime | None
    authors: str | None
    language: str | None
    canonical_url: str | None
    image: str | None = None
