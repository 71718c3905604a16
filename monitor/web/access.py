"""Who may use the console: passwords, sessions, CSRF tokens and the login rate limit.

Passwords come from the environment only (``MONITOR_WEB_PASSWORD`` for editors,
``MONITOR_WEB_VIEWER_PASSWORD`` for viewers). Each is kept as a salted scrypt hash from the moment
it is read (a value that already is one, ``scrypt$...``, is used as it is) and checked in constant
time. Sessions live in memory: a restart logs everybody out, which is the safe default for a
console that can edit the config. With no password set, the console is open on loopback only,
like ``/healthz`` and ``/metrics``; on any other address the server refuses to start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

EDITOR_ENV = "MONITOR_WEB_PASSWORD"
VIEWER_ENV = "MONITOR_WEB_VIEWER_PASSWORD"
ROLES = ("viewer", "editor")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_TTL = 12 * 3600.0


class AccessError(Exception):
    """The console must not start this way (e.g. a public address without a password)."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt>$<hash>``: what ``MONITOR_WEB_PASSWORD`` may hold instead of the password."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    got = hashlib.scrypt(password.encode(), salt=salt, dklen=len(digest), **_SCRYPT)
    return hmac.compare_digest(got, digest)


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Passwords:
    """The hashes of the configured passwords, by role (none: open console on loopback)."""

    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Passwords:
        env = os.environ if env is None else env
        out: dict[str, str] = {}
        for role, name in (("editor", EDITOR_ENV), ("viewer", VIEWER_ENV)):
            value = env.get(name, "")
            if value:
                out[role] = value if value.startswith("scrypt$") else hash_password(value)
        return cls(out)

    @property
    def required(self) -> bool:
        return bool(self.hashes)

    def role_for(self, password: str) -> str | None:
        """The role this password opens; every hash is checked so timing says nothing."""
        found = None
        for role in ("editor", "viewer"):
            stored = self.hashes.get(role)
            if stored is not None and verify_password(password, stored) and found is None:
                found = role
        return found

    def check_bind(self, host: str) -> None:
        if not self.required and not is_loopback(host):
            raise AccessError(
                f"the web console listens on {host}, which is not loopback, and no password is set: "
                f"set {EDITOR_ENV} (and optionally {VIEWER_ENV}) in the environment, or listen on "
                f"127.0.0.1")


@dataclass
class Session:
    id: str
    role: str | None  # None: not logged in (still has a CSRF token, for the login form)
    csrf: str
    expires: float


class Sessions:
    """Server-side sessions keyed by a random cookie value."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            s = self._by_id.get(sid)
            if s is not None and s.expires < time.time():
                del self._by_id[sid]
                return None
            return s

    def new(self, role: str | None) -> Session:
        s = Session(secrets.token_urlsafe(32), role, secrets.token_urlsafe(32), time.time() + SESSION_TTL)
        with self._lock:
            if len(self._by_id) > 10_000:  # a flood of anonymous sessions: drop the expired ones
                now = time.time()
                self._by_id = {k: v for k, v in self._by_id.items() if v.expires >= now}
            self._by_id[s.id] = s
        return s

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return session is not None and bool(token) and hmac.compare_digest(session.csrf, token or "")


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` seconds per client address, and
    ``attempts * 10`` overall (an attacker with many addresses still gets few guesses)."""

    def __init__(self, attempts: int = 5, window: float = 60.0):
        self.attempts, self.window = attempts, window
        self._fails: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] < now - self.window:
            q.popleft()

    def retry_after(self, client: str) -> float:
        """Seconds to wait before this client may try again (0: may try now)."""
        now = time.monotonic()
        with self._lock:
            q = self._fails.get(client, deque())
            self._trim(q, now)
            self._trim(self._all, now)
            if len(q) >= self.attempts:
                return q[0] + self.window - now
            if len(self._all) >= self.attempts * 10:
                return self._all[0] + self.window - now
            return 0.0

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails.setdefault(client, deque()).append(now)
            self._all.append(now)
