"""The HTTP client every stage fetches through.

Limits are counted on *decoded* bytes (``iter_bytes``), so a gzip bomb stops at ``max_bytes``
like an endless plain response does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from monitor import PROJECT_URL, __version__
from monitor.config import FetchSettings


def user_agent(contact: str = "") -> str:
    extra = f"; {contact}" if contact else ""
    return f"monitor/{__version__} (+{PROJECT_URL}{extra})"


class FetchError(Exception):
    """A fetch that produced no usable response; the message names the URL."""

    def __init__(self, url: str, message: str, status: int | None = None, retry_after: str | None = None):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status
        self.retry_after = retry_after


@dataclass
class FetchResponse:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: httpx.Headers
    content: bytes = b""
    redirects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class Fetcher:
    """Shared async client with global and per-host concurrency limits."""

    def __init__(self, settings: FetchSettings, contact: str = ""):
        self.settings = settings
        self.user_agent = settings.user_agent or user_agent(contact)
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=10,
            timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate, br, zstd"},
            limits=httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency),
        )
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _host_sem(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).hostname or ""
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.settings.per_host)
        return sem

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str | None = None) -> FetchResponse:
        """GET ``url``; validators are sent back byte-exact as they were received."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        async with self._global, self._host_sem(url):
            try:
                return await asyncio.wait_for(self._get(url, headers), timeout=self.settings.timeout * 3)
            except TimeoutError as exc:
                raise FetchError(url, f"timed out after {self.settings.timeout * 3:.0f}s") from exc
            except httpx.TooManyRedirects as exc:
                raise FetchError(url, "too many redirects") from exc
            except httpx.TimeoutException as exc:
                raise FetchError(url, f"timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResponse:
        async with self._client.stream("GET", url, headers=headers) as resp:
            redirects = [(r.status_code, str(r.url)) for r in resp.history]
            if resp.status_code >= 400:
                raise FetchError(url, f"HTTP {resp.status_code}", status=resp.status_code,
                                 retry_after=resp.headers.get("retry-after"))
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > self.settings.max_bytes:
                    raise FetchError(url, f"response larger than {self.settings.max_bytes} bytes (decoded); cut off")
                chunks.append(chunk)
            return FetchResponse(url=url, final_url=str(resp.url), status=resp.status_code,
                                 headers=resp.headers, content=b"".join(chunks), redirects=redirects)
