"""Stage: fetch. HTTP(S) GET with validators, size and time limits, and an honest User-Agent."""

from monitor.fetch.client import (
    Fetcher,
    FetchError,
    FetchResponse,
    load_tls_in_background,
    user_agent,
)

__all__ = ["FetchError", "FetchResponse", "Fetcher", "load_tls_in_background", "user_agent"]
