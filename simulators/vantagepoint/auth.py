"""The tenant's OAuth token server (``POST /api/token``: password and refresh_token grants, field
names matched case-insensitively, OAuth-style error bodies) and bearer-token checks.

Access tokens are opaque URL-safe strings of about 400 characters that live ``expires_in`` = 1799
simulated seconds; refresh tokens are standard base64 (so clients must form-encode them) and
rotate on each use. The fault profile's ``token_revoke_after_seconds`` kills tokens early.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulators.faults import FaultState
from simulators.runtime import SimClock
from simulators.vantagepoint.settings import TenantSettings

DISABLED_LOGIN = "Your login has been disabled.  Please contact your system administrator."
DENIED = {"Message": "Authorization has been denied for this request."}


@dataclass
class _Token:
    issued: datetime
    expires: datetime
    client_id: str


class TokenStore:
    def __init__(self, settings: TenantSettings, clock: SimClock, faults: FaultState):
        self.settings = settings
        self.clock = clock
        self.faults = faults
        self.allow_password_grant = settings.allow_password_grant
        self.user_disabled = False
        self._lock = threading.Lock()
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self.counts = {"password_grants": 0, "refresh_grants": 0, "token_errors": 0, "denied": 0}
        self.issued: deque[str] = deque(maxlen=20_000)  # access and refresh tokens, for the secret-leak sweep

    # --- /token --------------------------------------------------------------------------
    def grant(self, raw_form: dict[str, str]) -> tuple[int, dict]:
        form = {k.lower(): v for k, v in raw_form.items()}
        grant_type = (form.get("grant_type") or "").strip()
        if grant_type not in ("password", "refresh_token"):
            return self._error("unsupported_grant_type")
        if form.get("client_id") != self.settings.client_id or form.get("client_secret") != self.settings.client_secret:
            return self._error("invalid_client", "The client_id or client_secret is not valid.")
        if grant_type == "password":
            if not self.allow_password_grant:
                return self._error(
                    "unauthorized_client", "The client is not allowed to use the password grant type."
                )
            database = form.get("database") or ""
            if database.lower() != self.settings.database.lower():
                return self._error("invalid_grant", f"Unable to connect to database '{database}'.")
            if (form.get("username") or "").lower() != self.settings.username.lower() or (
                form.get("password") != self.settings.password
            ):
                return self._error("invalid_grant", "The user name or password is incorrect.")
            if self.user_disabled:
                return self._error("invalid_grant", DISABLED_LOGIN)
            with self._lock:
                self.counts["password_grants"] += 1
            return 200, self._issue(form["client_id"])
        if "database" in form and form["database"].lower() != self.settings.database.lower():
            return self._error("invalid_grant", f"Unable to connect to database '{form['database']}'.")
        presented = form.get("refresh_token") or ""
        now = self.clock.now()
        with self._lock:
            token = self._refresh.get(presented)
            if token is None or token.expires <= now or token.client_id != form["client_id"]:
                self.counts["token_errors"] += 1
                return 400, {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}
            if self.settings.rotate_refresh_tokens:
                del self._refresh[presented]
            self.counts["refresh_grants"] += 1
        if self.user_disabled:
            return self._error("invalid_grant", DISABLED_LOGIN)
        return 200, self._issue(form["client_id"], keep_refresh=None if self.settings.rotate_refresh_tokens else presented)

    def _error(self, error: str, description: str | None = None) -> tuple[int, dict]:
        with self._lock:
            self.counts["token_errors"] += 1
        body = {"error": error}
        if description:
            body["error_description"] = description
        return 400, body

    def _issue(self, client_id: str, keep_refresh: str | None = None) -> dict:
        now = self.clock.now()
        access = secrets.token_urlsafe(300)
        refresh = keep_refresh or base64.b64encode(secrets.token_bytes(22)).decode()
        ttl = self.settings.token_ttl_seconds
        with self._lock:
            self._purge(now)
            self._access[access] = _Token(now, now + timedelta(seconds=ttl), client_id)
            self.issued.extend([access, refresh])
            if keep_refresh is None:
                self._refresh[refresh] = _Token(
                    now, now + timedelta(seconds=self.settings.refresh_token_ttl_seconds), client_id
                )
        return {"access_token": access, "token_type": "bearer", "expires_in": ttl, "refresh_token": refresh}

    def _purge(self, now: datetime) -> None:
        if len(self._access) > 500:
            self._access = {k: t for k, t in self._access.items() if t.expires > now}
        if len(self._refresh) > 500:
            self._refresh = {k: t for k, t in self._refresh.items() if t.expires > now}

    # --- bearer checks -------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not header:
            return self._deny()
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return self._deny()
        now = self.clock.now()
        revoke_after = self.faults.profile.token_revoke_after_seconds
        with self._lock:
            token = self._access.get(value.strip())
        if token is None or token.expires <= now:
            return self._deny()
        if revoke_after > 0 and (now - token.issued).total_seconds() >= revoke_after:
            self.faults.count("token_revoked")
            return self._deny()
        return True

    def _deny(self) -> bool:
        with self._lock:
            self.counts["denied"] += 1
        return False

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self.issued)

    def revoke_all(self, refresh_tokens: bool = True) -> int:
        with self._lock:
            n = len(self._access)
            self._access.clear()
            if refresh_tokens:
                self._refresh.clear()
        return n
