"""The HTTP client every stage fetches through.

Limits are counted on *decoded* bytes while decoding (monitor.fetch.decode hands out bounded
steps for every advertised encoding), so a gzip, brotli or zstd bomb stops at ``max_bytes`` like
an endless plain response does, with memory near ``max_bytes``. Every connection goes through the SSRF guard
(monitor.fetch.guard) unless private networks are allowed, so each redirect hop is checked on
the address it really connects to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx
from protego import Protego

from monitor import user_agent
from monitor.config import FetchSettings
from monitor.fetch.decode import ACCEPT_ENCODING, BoundedDecoder, DecodeError
from monitor.fetch.guard import BlockedAddressError, GuardedBackend
from monitor.fetch.holds import HOLD_STATUSES, HostHolds

log = logging.getLogger(__name__)

ROBOTS_AGENT = "monitor"
ROBOTS_TTL = 6 * 3600.0


def raw_header(headers: httpx.Headers, name: str) -> str | None:
    """A header's bytes as received, as a latin-1 string (lossless; ``_wire`` reverses it), so
    validators go back byte-exact even when a server put non-ASCII bytes in them."""
    key = name.lower().encode()
    for k, v in headers.raw:
        if k.lower() == key:
            return v.decode("latin-1")
    return None


def _wire(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


class FetchError(Exception):
    """A fetch that produced no usable response; the message names the URL and the cause."""

    def __init__(self, url: str, message: str, status: int | None = None,
                 headers: httpx.Headers | None = None, kind: str = "error"):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status
        self.headers = headers if headers is not None else httpx.Headers()
        self.kind = kind  # http | timeout | dns | tls | connect | blocked | too_large | redirects | robots
        # | held (the host's Retry-After: nothing was sent) | decode | invalid_url | error

    @property
    def retry_after(self) -> str | None:
        return self.headers.get("retry-after")


@dataclass
class FetchResponse:
    url: str  # as requested
    final_url: str  # after redirects
    status: int
    headers: httpx.Headers
    content: bytes = b""
    redirects: list[tuple[int, str]] = field(default_factory=list)  # (status, location) per hop

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return raw_header(self.headers, "etag")

    @property
    def last_modified(self) -> str | None:
        return raw_header(self.headers, "last-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def permanent_url(self) -> str | None:
        """The new address when every redirect hop was permanent (301/308), else None."""
        if self.redirects and all(code in (301, 308) for code, _ in self.redirects):
            return self.final_url
        return None


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """The TLS context of every fetch (certifi's CAs, as httpx's default), made once a process:
    loading the CA bundle costs ~25 ms of CPU, and it was done twice on the way to the first
    request (issue 15). A call while ``load_tls_in_background`` is at it waits for that one."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx.create_ssl_context(trust_env=False)
        return _tls


def load_tls_in_background() -> None:
    """``_ssl_context()`` on a thread, started with the first Fetcher, or sooner by the daemon (as
    its start begins): OpenSSL reads the CA bundle without the interpreter lock, on the other
    core, while the daemon checks its schema, builds its pipeline and syncs its sources, instead
    of on the way from the claim to the first request (which waits for it: the first client's
    transport needs the context)."""
    if _tls is None and not _tls_lock.locked():
        threading.Thread(target=_ssl_context_quietly, name="tls-context", daemon=True).start()


def _ssl_context_quietly() -> None:
    """The background load: a failure (a broken CA bundle) is left for the first fetch to raise
    and report with its source, not printed as a second, bare thread traceback."""
    with contextlib.suppress(Exception):
        _ssl_context()


class _Cookies(httpx.Cookies):
    """The client's cookie jar, read into from a response only when the response sets cookies.

    httpx hands every response to ``http.cookiejar``, which copies its headers into an
    ``email.message.Message`` and wraps the request to look for Set-Cookie: ~20 us of CPU a
    response, a tenth of what a 304 costs here beyond httpx's own request. A response without
    Set-Cookie (or Set-Cookie2) adds nothing to the jar either way; one with them goes through
    the jar exactly as before."""

    def extract_cookies(self, response: httpx.Response) -> None:
        for key, _ in response.headers.raw:
            if key.lower() in _SET_COOKIE:
                super().extract_cookies(response)
                return


_SET_COOKIE = (b"set-cookie", b"set-cookie2")  # the headers http.cookiejar reads cookies from


def _transport(connections: int, allow_private: bool) -> httpx.AsyncHTTPTransport:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30)
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, trust_env=False)
    # httpx has no parameter for an httpcore network backend: swap in a pool that has one. The
    # pool is what httpx 0.28 builds itself, with the same arguments (versions pinned).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(allow_private=allow_private),
    )
    return transport


@dataclass
class _Pool:
    transport: httpx.AsyncHTTPTransport
    active: int = 0  # requests sent through it whose response is not closed yet


class _Release(httpx.AsyncByteStream):
    """A response's body that gives its pool's request back when closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, pool: _Pool) -> None:
        self._stream = stream
        self._pool: _Pool | None = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._pool is not None:
                self._pool.active -= 1
                self._pool = None


class _HostPools(httpx.AsyncBaseTransport):
    """One connection pool per origin (scheme, host, port), of ``per_host`` connections.

    httpcore's pool looks at every connection it holds on each request and each response closed
    (closed? expired: a check of the stream? idle?, and for each idle one it counts the
    connections again): with one pool of ``concurrency`` (20) connections, ~500 calls a request,
    a tenth of a page fetch's CPU (issue 15). The Fetcher lets ``per_host`` requests at once go to
    a host, so that is all the connections a host's pool needs, and its passes look at those.

    Connections kept open stay within about ``concurrency``, as with one pool: at most
    ``concurrency // per_host`` pools are kept; past that, the least recently used pools with no
    request in flight are closed (their idle connections, as the one pool closed its oldest idle
    connection to make room)."""

    def __init__(self, settings: FetchSettings, allow_private: bool) -> None:
        self._per_host = settings.per_host
        self._allow_private = allow_private
        self._keep = max(1, settings.concurrency // settings.per_host)
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], _Pool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            await self._close_unused(len(self._pools) + 1 - self._keep)
            pool = self._pools.get(key)  # another request may have made it meanwhile
            if pool is None:
                pool = self._pools[key] = _Pool(_transport(self._per_host, self._allow_private))
        else:
            self._pools.move_to_end(key)
        pool.active += 1
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            pool.active -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Release(response.stream, pool)
        return response

    async def _close_unused(self, excess: int) -> None:
        """Close up to ``excess`` pools, least recently used first, that no request is using."""
        for key in [k for k, p in self._pools.items() if not p.active][:max(0, excess)]:
            pool = self._pools.get(key)
            if pool is not None and not pool.active:
                del self._pools[key]
                await pool.transport.aclose()

    async def aclose(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            await pool.transport.aclose()


@dataclass
class _Robots:
    rules: Protego | None  # None: everything allowed (no robots.txt)
    disallow_all: bool
    expires: float


class Fetcher:
    """Shared async client with global and per-host concurrency limits.

    A request waits for its host's slot *before* taking a global one, so a hanging host holds at
    most ``per_host`` of the global slots and never delays the other sources.

    Every 429 or 503 with Retry-After holds its host (``holds``, ``monitor.fetch.holds``); a
    request made with ``respect_holds`` (article pages and their robots.txt) is not sent to a
    held host but fails at once with a ``held`` FetchError saying until when.
    """

    def __init__(self, settings: FetchSettings, contact: str = "", holds: HostHolds | None = None):
        self.settings = settings
        self.holds = holds if holds is not None else HostHolds()
        self.user_agent = settings.user_agent or user_agent(contact)
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[tuple[str, bool], _Robots] = {}
        self._robots_locks: dict[tuple[str, bool], asyncio.Lock] = {}
        load_tls_in_background()

    def _client(self, allow_private: bool) -> httpx.AsyncClient:
        client = self._clients.get(allow_private)
        if client is None:
            s = self.settings
            client = self._clients[allow_private] = httpx.AsyncClient(
                transport=_HostPools(s, allow_private),
                follow_redirects=True,
                max_redirects=s.max_redirects,
                timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout, pool=s.timeout),
                headers={"User-Agent": self.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
                trust_env=False,
            )
            client._cookies = _Cookies()  # httpx has no parameter for the jar's class (versions pinned)
        return client

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _host_sem(self, host: str) -> asyncio.Semaphore:
        sem = self._hosts.get(host)
        if sem is None:
            sem = self._hosts[host] = asyncio.Semaphore(self.settings.per_host)
        return sem

    def _allow_private(self, allow_private: bool | None) -> bool:
        return self.settings.allow_private_networks if allow_private is None else allow_private

    def _refuse_if_held(self, url: str, target: httpx.URL) -> None:
        """A ``held`` FetchError if ``target``'s host is held (by httpx's spelling of the host,
        the one the answer that held it is read with)."""
        hold = self.holds.get(target.host)
        if hold is not None:
            raise FetchError(url, hold.reason(), kind="held")

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str | None = None, allow_private: bool | None = None,
                  max_bytes: int | None = None, respect_holds: bool = False) -> FetchResponse:
        """GET ``url``; validators are sent back byte-exact as they were received.

        Any status >= 400 raises FetchError carrying the status and headers (Retry-After); a 429
        or 503 with Retry-After also holds the host. ``respect_holds``: a held host is not asked
        (a ``held`` FetchError), checked again once the request has its host's slot, since the
        answer of a request ahead of it may have put the hold there meanwhile. A source's own
        poll does not respect holds: its schedule follows its own Retry-After.
        """
        headers: dict[bytes, bytes] = {}
        if etag:
            headers[b"If-None-Match"] = _wire(etag)
        if last_modified:
            headers[b"If-Modified-Since"] = _wire(last_modified)
        if accept:
            headers[b"Accept"] = accept.encode("ascii")
        client = self._client(self._allow_private(allow_private))
        total = self.settings.timeout
        host, target = _check_url(url)
        if respect_holds:
            self._refuse_if_held(url, target)
        async with self._host_sem(host), self._global:
            if respect_holds:
                self._refuse_if_held(url, target)
            try:
                async with asyncio.timeout(total):
                    return await self._get(client, url, target, headers, max_bytes or self.settings.max_bytes)
            except FetchError:
                raise
            except TimeoutError as exc:
                raise FetchError(url, f"no complete response within {total:g}s (total timeout)",
                                 kind="timeout") from exc
            except BlockedAddressError as exc:
                raise FetchError(url, str(exc), kind="blocked") from exc
            except httpx.TooManyRedirects as exc:
                raise FetchError(url, f"more than {self.settings.max_redirects} redirects",
                                 kind="redirects") from exc
            except httpx.ConnectTimeout as exc:
                raise FetchError(url, f"connect timeout ({self.settings.connect_timeout:g}s)",
                                 kind="timeout") from exc
            except httpx.TimeoutException as exc:
                raise FetchError(url, f"read timeout ({self.settings.read_timeout:g}s without data)",
                                 kind="timeout") from exc
            except httpx.ConnectError as exc:
                raise _connect_error(url, exc) from exc
            except httpx.HTTPError as exc:
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
            except ssl.SSLError as exc:
                raise FetchError(url, f"TLS error: {exc}", kind="tls") from exc
            except OSError as exc:
                raise FetchError(url, f"network error: {exc}", kind="connect") from exc
            except Exception as exc:  # whatever else a library raises stays this URL's error
                log.debug("fetch of %s failed unexpectedly", url, exc_info=True)
                raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc

    async def _get(self, client: httpx.AsyncClient, url: str, target: httpx.URL, headers: dict[bytes, bytes],
                   max_bytes: int) -> FetchResponse:
        """``url`` as requested (for messages and ``FetchResponse.url``), ``target`` the same
        parsed by ``_check_url``: httpx copies a parsed URL instead of parsing the string again
        (~20 us a request)."""
        async with client.stream("GET", target, headers=headers) as resp:
            redirects = [(r.status_code, r.headers.get("location", "")) for r in resp.history]
            if resp.status_code >= 400:
                if resp.status_code in HOLD_STATUSES:
                    # the host that answered (after redirects), for every request to it after this
                    self.holds.note(resp.url.host, resp.status_code,
                                    resp.headers.get("retry-after"), self.settings.max_backoff)
                raise FetchError(url, f"HTTP {resp.status_code}", status=resp.status_code,
                                 headers=resp.headers, kind="http")
            chunks: list[bytes] = []
            size = 0
            decoder = BoundedDecoder(resp.headers.get("content-encoding"))

            def take(pieces: Iterator[bytes]) -> None:
                nonlocal size
                for piece in pieces:
                    size += len(piece)
                    if size > max_bytes:
                        raise FetchError(url, f"response larger than {max_bytes} bytes (decoded); cut off",
                                         kind="too_large")
                    chunks.append(piece)

            try:
                # Raw bytes, decoded here: httpx would decode each chunk whole, unbounded.
                async for raw in resp.aiter_raw():
                    take(decoder.feed(raw))
                take(decoder.flush())
            except DecodeError as exc:
                raise FetchError(url, f"body does not decode as {resp.headers.get('content-encoding')}: {exc}",
                                 kind="decode") from exc
            return FetchResponse(url=url, final_url=str(resp.url), status=resp.status_code,
                                 headers=resp.headers, content=b"".join(chunks), redirects=redirects)

    # -- robots.txt ------------------------------------------------------------------------
    async def allowed(self, url: str, allow_private: bool | None = None, respect_holds: bool = False) -> bool:
        """Whether robots.txt lets us fetch ``url`` (cached per origin for a few hours).

        RFC 9309: a missing robots.txt (4xx) allows everything; an unreachable one (5xx, network
        error) disallows everything until it can be read. ``respect_holds``: a host held by its
        Retry-After is not asked for its robots.txt either; a ``held`` FetchError says so (and
        nothing is cached: the hold, not robots.txt, kept the page).
        """
        target = _check_url(url)[1]
        if respect_holds:
            self._refuse_if_held(url, target)
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        key = (origin, self._allow_private(allow_private))
        lock = self._robots_locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._robots.get(key)
            if entry is None or entry.expires < time.monotonic():
                entry = self._robots[key] = await self._load_robots(origin, key[1], respect_holds)
        if respect_holds:  # robots.txt itself answered 429 or 503 with Retry-After: the host asked to wait
            self._refuse_if_held(url, target)
        if entry.disallow_all:
            return False
        return entry.rules is None or bool(entry.rules.can_fetch(url, ROBOTS_AGENT))

    async def _load_robots(self, origin: str, allow_private: bool, respect_holds: bool = False) -> _Robots:
        expires = time.monotonic() + ROBOTS_TTL
        try:
            resp = await self.get(origin + "/robots.txt", accept="text/plain", allow_private=allow_private,
                                  max_bytes=500 * 1024, respect_holds=respect_holds)
        except FetchError as exc:
            if exc.kind == "held":
                raise  # not read, not unreadable: asked again when the hold ends
            if exc.status is not None and 400 <= exc.status < 500:
                return _Robots(None, False, expires)
            log.info("robots.txt of %s unreadable, treating the site as disallowed for now: %s", origin, exc)
            return _Robots(None, True, time.monotonic() + 600)
        text = resp.content.decode("utf-8", "replace")
        return _Robots(Protego.parse(text), False, expires)


@functools.lru_cache(maxsize=4096)
def _check_url(url: str) -> tuple[str, httpx.URL]:
    """The URL's host, and the URL as httpx parses it (the request is sent to this one: httpx
    parsed the string again for every request); a feed can hand us any string as a link: odd IP
    spellings (0177.0.0.1), bad IPv6 brackets, ports past 65535. Each is this URL's FetchError,
    never an exception that escapes. Cached: a source's URL is checked on every poll (an error
    is not cached)."""
    try:
        parsed = httpx.URL(url)
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise ValueError(f"port {parsed.port} out of range")
        return urlsplit(url).hostname or "", parsed  # urlsplit raises on what httpx lets through
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(url, f"invalid URL: {exc}", kind="invalid_url") from exc


def _connect_error(url: str, exc: httpx.ConnectError) -> FetchError:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchError(url, f"TLS certificate problem: {cause.verify_message or cause}", kind="tls")
        if isinstance(cause, ssl.SSLError):
            return FetchError(url, f"TLS error: {cause}", kind="tls")
        cause = cause.__cause__ or cause.__context__
    msg = str(exc)
    if msg.startswith("DNS lookup"):
        return FetchError(url, msg, kind="dns")
    return FetchError(url, f"cannot connect: {msg or type(exc).__name__}", kind="connect")
