"""The simulator's auth host: client-credentials tokens bound to one tenant, their lifetime on the
simulated clock, revocation, and the throttle on the token endpoint.

Tokens look like the real ones (a JWT with ``tenant``, ``client_id``, ``scope`` claims) but are
signed with HS256 by a key derived from the seed; a token that was not issued here, has expired,
or was revoked is refused with 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

from simulators.runtime import SimClock
from simulators.servicetitan.model import TenantData

SCOPES = (
    "tn.acc.invoices:r", "tn.acc.payments:r", "tn.acc.inventorybills:r", "tn.acc.glaccounts:r",
    "tn.acc.paymenttypes:r", "tn.crm.customers:r", "tn.crm.locations:r", "tn.inv.vendors:r",
    "tn.inv.purchaseorders:r", "tn.inv.receipts:r", "tn.stt.businessunits:r",
)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Grant:
    jti: str
    tenant: int
    client_id: str
    app_key: str
    issued: float  # simulated epoch seconds
    expires: float
    scopes: tuple[str, ...]
    revoked: bool = False


class TokenIssuer:
    def __init__(self, tenants: dict[int, TenantData], clock: SimClock, seed: int, lifetime: int = 900,
                 token_requests_per_minute: int = 30, denied_scopes: dict[int, list[str]] | None = None):
        self.clock = clock
        self.lifetime = lifetime
        self.per_minute = token_requests_per_minute
        self._key = hashlib.sha256(f"st-signing:{seed}".encode()).digest()
        self._by_client = {t.credentials.client_id: t for t in tenants.values()}
        self._grants: dict[str, Grant] = {}
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.denied_scopes = {int(k): tuple(v) for k, v in (denied_scopes or {}).items()}
        self.revoke_after = 0.0  # fault: >0 -> tokens stop working this long after issue (simulated s)
        self.stats = {"issued": 0, "invalid_client": 0, "throttled": 0}
        self.issued_tokens: deque[str] = deque(maxlen=20_000)  # for the secret-leak sweep (/_sim/tokens/issued)

    def throttled(self, client_id: str) -> float | None:
        """Seconds to wait when this client asked for too many tokens in the last minute."""
        now = time.monotonic()
        with self._lock:
            window = self._recent.setdefault(client_id, deque())
            while window and now - window[0] > 60:
                window.popleft()
            if len(window) >= self.per_minute:
                self.stats["throttled"] += 1
                return max(1.0, 60 - (now - window[0]))
            window.append(now)
        return None

    def issue(self, client_id: str, client_secret: str) -> dict | None:
        tenant = self._by_client.get(client_id)
        if tenant is None or not hmac.compare_digest(tenant.credentials.client_secret, client_secret):
            with self._lock:
                self.stats["invalid_client"] += 1
            return None
        now = self.clock.now().timestamp()
        scopes = tuple(s for s in SCOPES if s not in self.denied_scopes.get(tenant.tenant_id, ()))
        grant = Grant(uuid.uuid4().hex, tenant.tenant_id, client_id, tenant.credentials.app_key, now,
                      now + self.lifetime, scopes)
        header = {"alg": "HS256", "kid": "sim", "typ": "at+jwt"}
        claims = {"nbf": int(now), "exp": int(now) + self.lifetime, "iss": "https://auth.servicetitan.io",
                  "client_id": client_id, "tenant": str(tenant.tenant_id), "jti": grant.jti, "iat": int(now),
                  "scope": list(scopes)}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = _b64(hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest())
        token = f"{signing_input}.{signature}"
        with self._lock:
            self._grants[grant.jti] = grant
            self.stats["issued"] += 1
            self.issued_tokens.append(token)
        return {"access_token": token, "expires_in": self.lifetime,
                "token_type": "Bearer", "scope": " ".join(scopes)}

    def verify(self, token: str) -> tuple[Grant | None, str]:
        """(grant, "") when the token is good, else (None, why)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, "The access token is malformed."
        expected = _b64(hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None, "The access token signature is invalid."
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return None, "The access token is malformed."
        with self._lock:
            grant = self._grants.get(claims.get("jti", ""))
        if grant is None:
            return None, "The access token is not recognised."
        now = self.clock.now().timestamp()
        if grant.revoked or (self.revoke_after > 0 and now >= grant.issued + self.revoke_after):
            return None, "The access token has been revoked."
        if now >= grant.expires:
            return None, "The access token has expired."
        return grant, ""

    def revoke_all(self) -> int:
        with self._lock:
            live = [g for g in self._grants.values() if not g.revoked]
            for grant in live:
                grant.revoked = True
            return len(live)
