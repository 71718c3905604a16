"""Stage: fetch. HTTP(S) GET with validators, size and time limits, and an honest User-Agent."""

from monitor.fetch.client import Fetcher, FetchError, FetchResponse, user_agent

__all__ = ["FetchError", "FetchResponse", "Fetcher", "user_agent"]
