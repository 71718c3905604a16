"""Who may use the console: passwords, sessions, CSRF tokens and the login rate limit.

Passwords come from the environment only (``MONITOR_WEB_PASSWORD`` for editors,
``MONITOR_WEB_VIEWER_PASSWORD`` for viewers). Each is kept as a salted scrypt hash from the moment
it is read (a value that already is one, ``scrypt$...``, is used as it is) and checked in constant
time. A logged-in session is also kept in the database (``web_session``: the SHA-256 of its id,
never the id, and its expiry), so a restart of the daemon logs nobody out; a session made under
a password that has since changed is refused. Sessions before login (they carry the login form's
CSRF token) stay in memory. With no password set, the console is open on loopback only, like
``/healthz`` and ``/metrics``, and nothing is stored; on any other address the server refuses
to start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session as DbSession

EDITOR_ENV = "MONITOR_WEB_PASSWORD"
VIEWER_ENV = "MONITOR_WEB_VIEWER_PASSWORD"
ROLES = ("viewer", "editor")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_TTL = 12 * 3600.0
_SESSION_KEY_SALT = b"monitor web session key/v1"
log = logging.getLogger(__name__)
_T = TypeVar("_T")


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


def _session_key(value: str) -> bytes:
    """From a password: scrypt with a fixed salt (stable across restarts, as slow to guess as
    the password's hash); from an ``scrypt$...`` hash given instead: SHA-256 of it."""
    if value.startswith("scrypt$"):
        return hashlib.sha256(_SESSION_KEY_SALT + value.encode()).digest()
    return hashlib.scrypt(value.encode(), salt=_SESSION_KEY_SALT, dklen=32, **_SCRYPT)


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
    # Per role, a key that stays the same across restarts while the password does (see
    # ``session_key``); never stored, never derived from anything stored.
    session_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Passwords:
        env = os.environ if env is None else env
        out: dict[str, str] = {}
        keys: dict[str, bytes] = {}
        for role, name in (("editor", EDITOR_ENV), ("viewer", VIEWER_ENV)):
            value = env.get(name, "")
            if value:
                out[role] = value if value.startswith("scrypt$") else hash_password(value)
                keys[role] = _session_key(value)
        return cls(out, keys)

    def session_key(self, role: str) -> bytes | None:
        """The key that signs this role's stored sessions: a session stored under another
        password (or a role with no password now) does not verify."""
        if role not in self.hashes:
            return None
        return self.session_keys.get(role) or _session_key(self.hashes[role])

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
    """Server-side sessions keyed by a random cookie value; logged-in ones also in the database
    once ``keep_in`` has been called (the console does when a password is set)."""

    # A stored session in memory is checked against the database again after this many seconds,
    # so a logout (or a password change) in another process on the same database ends it here too.
    recheck_seconds = 60.0

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}
        self._checked: dict[str, float] = {}  # stored sessions: when the database last vouched
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._passwords: Passwords | None = None

    def keep_in(self, engine: Engine, passwords: Passwords) -> None:
        self._engine, self._passwords = engine, passwords

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.time()
        with self._lock:
            s = self._by_id.get(sid)
            if s is not None and s.expires < now:
                del self._by_id[sid]
                self._checked.pop(sid, None)
                return None
            stale = s is not None and now - self._checked.get(sid, now) > self.recheck_seconds
        if (s is None or stale) and self._engine is not None:
            # made before a restart or by another process on this database; or time to recheck
            s = self._load(sid)
            with self._lock:
                if s is None:
                    self._by_id.pop(sid, None)
                    self._checked.pop(sid, None)
                else:
                    self._by_id[sid], self._checked[sid] = s, now
        return s

    def new(self, role: str | None, persist: bool = False) -> Session:
        """A new session; ``persist`` (at login) also stores it, to outlive a restart."""
        s = Session(secrets.token_urlsafe(32), role, secrets.token_urlsafe(32), time.time() + SESSION_TTL)
        with self._lock:
            if len(self._by_id) > 10_000:  # a flood of anonymous sessions: drop the expired ones
                now = time.time()
                self._by_id = {k: v for k, v in self._by_id.items() if v.expires >= now}
            self._by_id[s.id] = s
        if persist and role is not None and self._engine is not None and self._store(s):
            with self._lock:
                self._checked[s.id] = time.time()
        return s

    def drop(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)
            self._checked.pop(sid, None)
        if self._engine is not None:
            from sqlalchemy import delete
            from sqlmodel import col

            from monitor.store.models import WebSession

            self._db(lambda db: db.execute(delete(WebSession).where(col(WebSession.id_hash) == _digest(sid))))

    def _store(self, s: Session) -> bool:
        from sqlalchemy import delete
        from sqlmodel import col

        from monitor.store.models import WebSession

        assert s.role is not None and self._passwords is not None
        key = self._passwords.session_key(s.role)
        if key is None:
            return False
        now = datetime.now(UTC)

        def write(db: DbSession) -> bool:
            db.execute(delete(WebSession).where(col(WebSession.expires_at) < now))
            db.add(WebSession(id_hash=_digest(s.id), role=s.role or "", tag=_tag(key, s.id), csrf=s.csrf,
                              created_at=now, expires_at=datetime.fromtimestamp(s.expires, UTC)))
            return True
        return bool(self._db(write))

    def _load(self, sid: str) -> Session | None:
        from monitor.store.models import WebSession
        from monitor.util import aware

        assert self._passwords is not None
        passwords = self._passwords

        def read(db: DbSession) -> Session | None:
            row = db.get(WebSession, _digest(sid))
            if row is None:
                return None
            key = passwords.session_key(row.role)
            expires = aware(row.expires_at)
            if key is None or not hmac.compare_digest(row.tag, _tag(key, sid)) or expires < datetime.now(UTC):
                db.delete(row)  # expired, or made under another password: gone for good
                return None
            return Session(sid, row.role, row.csrf, expires.timestamp())
        return self._db(read)

    def _db(self, work: Callable[[DbSession], _T]) -> _T | None:
        """Run ``work`` in a transaction; a database that fails costs the stored sessions (the
        console asks for a login), never the page."""
        from sqlalchemy.exc import SQLAlchemyError

        from monitor.store.db import session_scope

        assert self._engine is not None
        try:
            with session_scope(self._engine) as db:
                return work(db)
        except SQLAlchemyError as exc:
            # The class only: a driver's message can carry the database URL.
            log.warning("console sessions: the database failed (%s); sessions kept in memory only",
                        type(exc).__name__)
            return None


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _tag(key: bytes, sid: str) -> str:
    return hmac.new(key, sid.encode(), hashlib.sha256).hexdigest()


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
