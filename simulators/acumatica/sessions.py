"""API sessions and the seats they hold: OAuth grants (one session per grant; refresh-token tokens
reuse it), cookie logins, idle expiry after 10 minutes of simulated time, logout and revocation.

Seat exhaustion answers as observed in production (reference §1.1): HTTP 500 whose
exceptionMessage is "API Login Limit" (status configurable: options["seat_limit_status"]).
An idle-expired session frees its seat and its access tokens stop working (401); its refresh
token stays valid and opens a new session (needing a seat) when used [I: inferred].

Per-user concurrent sign-ins (Users SM201010 "Max. Number of Concurrent Logins", reference §1.1):
a new sign-in of a user who already holds ``max_logins_per_user`` sessions succeeds and silently
ends the user's oldest session ("evicted"); requests on it answer 401 and its refresh token is
refused. Observed for cookie logins [O]; whether OAuth grants are counted the same way is not on
record, so ``evict_oauth`` (option ``per_user_limit_oauth``) decides, off by default.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simulators.runtime import SimClock


class SeatLimit(Exception):
    """No API-user seat is free."""


@dataclass
class Session:
    id: str
    user: str
    kind: str  # "oauth" or "cookie"
    created: datetime
    last_used: datetime
    client_id: str = ""
    access_tokens: set[str] = field(default_factory=set)
    refresh_token: str | None = None
    ended: str | None = None  # why it ended: logout, idle, revoked, evicted


@dataclass
class AccessToken:
    token: str
    session_id: str
    issued: datetime
    expires: datetime
    revoked: bool = False


class SeatTable:
    """Thread-safe: the server's loop mutates it, control endpoints read it."""

    def __init__(self, seats: int, clock: SimClock, idle_timeout: float = 600.0, token_lifetime: float = 3600.0,
                 max_logins_per_user: int = 1, evict_oauth: bool = False):
        self.seats = seats
        self.max_logins_per_user = max_logins_per_user  # 0 = no per-user limit
        self.evict_oauth = evict_oauth
        self.evicted = 0
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.token_lifetime = token_lifetime
        self.revoke_after = 0.0  # >0: access tokens stop working this long after issue (fault)
        self._lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> session id (kept past idle end)
        self.peak_in_use = 0
        self.sign_ins = 0
        self.refused = 0
        self.expired_idle = 0
        self.revoked_by_fault = 0  # bearer tokens refused because the revoke-after fault killed them
        self.issued: deque[str] = deque(maxlen=20_000)  # access and refresh tokens, for the secret-leak sweep

    # --- seats ------------------------------------------------------------------------------
    def _sweep(self, now: datetime) -> None:
        for s in self.sessions.values():
            if s.ended is None and (now - s.last_used).total_seconds() > self.idle_timeout:
                s.ended = "idle"
                self.expired_idle += 1

    def _in_use(self) -> int:
        return sum(1 for s in self.sessions.values() if s.ended is None)

    def open_session(self, user: str, kind: str, client_id: str = "", force_refuse: bool = False) -> Session:
        now = self.clock.now()
        with self._lock:
            self._sweep(now)
            if force_refuse or self._in_use() >= self.seats:
                self.refused += 1
                raise SeatLimit()
            session = Session(uuid.uuid4().hex, user, kind, now, now, client_id)
            self._evict_older(user, kind)
            self.sessions[session.id] = session
            self.sign_ins += 1
            self.peak_in_use = max(self.peak_in_use, self._in_use())
            return session

    def _evict_older(self, user: str, kind: str) -> None:
        """Make room for one more sign-in of ``user`` under the per-user limit: its oldest sessions end."""
        if self.max_logins_per_user <= 0 or (kind == "oauth" and not self.evict_oauth):
            return
        counted = ("cookie", "oauth") if self.evict_oauth else ("cookie",)
        mine = sorted((s for s in self.sessions.values() if s.ended is None and s.user == user and s.kind in counted),
                      key=lambda s: s.created)
        for old in mine[:max(0, len(mine) - self.max_logins_per_user + 1)]:
            old.ended = "evicted"
            self.evicted += 1
            if old.refresh_token:
                self.refresh_tokens.pop(old.refresh_token, None)

    def end_session(self, session_id: str, reason: str) -> bool:
        with self._lock:
            s = self.sessions.get(session_id)
            if s is None or s.ended:
                return False
            s.ended = reason
            return True

    # --- tokens -----------------------------------------------------------------------------
    def issue_token(self, session: Session, with_refresh: bool) -> tuple[AccessToken, str | None]:
        now = self.clock.now()
        tok = AccessToken(secrets.token_urlsafe(32), session.id, now, now + timedelta(seconds=self.token_lifetime))
        with self._lock:
            self.tokens[tok.token] = tok
            session.access_tokens.add(tok.token)
            self.issued.append(tok.token)
            if with_refresh:
                if session.refresh_token:
                    self.refresh_tokens.pop(session.refresh_token, None)
                session.refresh_token = secrets.token_urlsafe(32)
                self.refresh_tokens[session.refresh_token] = session.id
                self.issued.append(session.refresh_token)
            return tok, session.refresh_token if with_refresh else None

    def session_for_refresh(self, refresh_token: str) -> Session | None:
        with self._lock:
            sid = self.refresh_tokens.get(refresh_token)
            return self.sessions.get(sid) if sid else None

    def reopen_for_refresh(self, old: Session, force_refuse: bool = False) -> Session:
        """A refresh on a session that ended by idle timeout opens a fresh session (a new seat)."""
        new = self.open_session(old.user, old.kind, old.client_id, force_refuse)
        with self._lock:
            if old.refresh_token:
                self.refresh_tokens.pop(old.refresh_token, None)
                old.refresh_token = None
        return new

    def revoke_refresh(self, refresh_token: str) -> None:
        with self._lock:
            self.refresh_tokens.pop(refresh_token, None)

    def authenticate_bearer(self, token: str) -> Session | None:
        now = self.clock.now()
        with self._lock:
            self._sweep(now)
            tok = self.tokens.get(token)
            if tok is None or tok.revoked or now >= tok.expires:
                return None
            if self.revoke_after > 0 and (now - tok.issued).total_seconds() >= self.revoke_after:
                tok.revoked = True
                self.revoked_by_fault += 1
                return None
            s = self.sessions.get(tok.session_id)
            if s is None or s.ended:
                return None
            s.last_used = now
            return s

    def authenticate_cookie(self, session_id: str) -> Session | None:
        now = self.clock.now()
        with self._lock:
            self._sweep(now)
            s = self.sessions.get(session_id)
            if s is None or s.ended or s.kind != "cookie":
                return None
            s.last_used = now
            return s

    def session_of_token(self, token: str) -> Session | None:
        with self._lock:
            tok = self.tokens.get(token)
            return self.sessions.get(tok.session_id) if tok else None

    def revoke_all(self, end_sessions: bool = False, refresh_tokens: bool = False) -> int:
        with self._lock:
            n = 0
            for tok in self.tokens.values():
                if not tok.revoked:
                    tok.revoked = True
                    n += 1
            if refresh_tokens:
                self.refresh_tokens.clear()
            if end_sessions:
                for s in self.sessions.values():
                    if s.ended is None:
                        s.ended = "revoked"
            return n

    def snapshot(self) -> dict:
        now = self.clock.now()
        with self._lock:
            self._sweep(now)
            active = [s for s in self.sessions.values() if s.ended is None]
            return {
                "seats": self.seats,
                "in_use": len(active),
                "peak_in_use": self.peak_in_use,
                "sign_ins": self.sign_ins,
                "refused": self.refused,
                "expired_idle": self.expired_idle,
                "evicted": self.evicted,
                "revoked_by_fault": self.revoked_by_fault,
                "issued_tokens": list(self.issued),
                "sessions": [
                    {"id": s.id, "user": s.user, "kind": s.kind, "created": s.created.isoformat(),
                     "last_used": s.last_used.isoformat(),
                     "idle_seconds": round((now - s.last_used).total_seconds(), 1), "ended": s.ended}
                    for s in self.sessions.values()
                ],
            }
