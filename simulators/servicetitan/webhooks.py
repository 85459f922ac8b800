"""Webhook registrations and delivery for the ServiceTitan simulator.

Envelope (the contract with fieldledger's receiver): ``{"eventId", "eventType", "webhookId",
"tenantId", "createdOn", "data"}`` with ``data`` the record exactly as the API returns it.
Signature: HMAC-SHA256 over the raw body bytes with the registration's secret, base64 in the
header named by options ``webhook_signature_header``
(default ``X-ServiceTitan-Signature``) and ``webhook_signature_encoding`` (``base64`` default, or
``hex``). ServiceTitan does not publish the header name or encoding (reference §5.1: unknown);
base64 is the .NET default, so it is ours. Failed deliveries (non-2xx or no connection) are
retried after 10, 30, 60 and 300 s divided by the time factor, then given up.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from simulators.faults import FaultState

EVENT_TYPES = (
    "invoice.created", "invoice.updated", "payment.created", "payment.updated", "inventorybill.created",
    "customer.created", "customer.updated", "vendor.created",
)
RETRY_DELAYS = (10, 30, 60, 300)


def sign(secret: str, body: bytes, encoding: str = "base64") -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


@dataclass
class Registration:
    id: int
    tenant: int
    url: str
    secret: str
    events: tuple[str, ...]

    def public(self) -> dict:
        return {"id": self.id, "tenant": self.tenant, "url": self.url, "events": list(self.events)}


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    registration_id: int = field(compare=False)
    body: bytes = field(compare=False)
    event_id: str = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookHub:
    """Registrations, a delivery queue and one worker thread that posts signed envelopes."""

    def __init__(self, faults: FaultState, time_factor: float = 1.0, options: dict | None = None):
        options = options or {}
        self.faults = faults
        self.time_factor = time_factor if time_factor > 0 else 1.0
        self.header = options.get("webhook_signature_header", "X-ServiceTitan-Signature")
        self.encoding = options.get("webhook_signature_encoding", "base64")
        if self.encoding not in ("base64", "hex"):
            raise ValueError("webhook_signature_encoding must be 'base64' or 'hex'")
        self.timeout = float(options.get("webhook_timeout_seconds", 5.0))
        self._ids = itertools.count(44_438_001)
        self._order = itertools.count()
        self._regs: dict[int, Registration] = {}
        self._queue: list[_Delivery] = []
        self._held: _Delivery | None = None  # reorder fault: sent after the next one
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.counts = {"events": 0, "sent": 0, "failed": 0, "retried": 0, "dropped": 0, "duplicated": 0,
                       "reordered": 0, "delayed": 0, "given_up": 0}
        self.log: list[dict] = []  # last deliveries, for tests and the demo

    # --- registrations ------------------------------------------------------------------------
    def register(self, tenant: int, url: str, secret: str | None, events: list[str] | None,
                 default_secret: str) -> Registration:
        secret = secret or default_secret or secrets.token_hex(24)
        if not 32 <= len(secret) <= 64:
            raise ValueError("secret must be 32 to 64 characters")
        unknown = [e for e in events or () if e not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
        with self._cond:
            reg = Registration(next(self._ids), tenant, url, secret, tuple(events or EVENT_TYPES))
            self._regs[reg.id] = reg
        return reg

    def registrations(self) -> list[Registration]:
        with self._cond:
            return list(self._regs.values())

    def unregister(self, reg_id: int) -> bool:
        with self._cond:
            return self._regs.pop(reg_id, None) is not None

    # --- events -------------------------------------------------------------------------------
    def publish(self, tenant: int, event_type: str, record: dict, created_on: datetime | None = None) -> int:
        """Queue one delivery per matching registration; returns how many were queued."""
        created = (created_on or datetime.now(UTC)).astimezone(UTC)
        queued = 0
        with self._cond:
            self.counts["events"] += 1
            for reg in self._regs.values():
                if reg.tenant != tenant or event_type not in reg.events:
                    continue
                envelope = {
                    "eventId": str(uuid.uuid4()), "eventType": event_type, "webhookId": reg.id, "tenantId": tenant,
                    "createdOn": created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", "data": record,
                }
                body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
                profile = self.faults.profile
                if self.faults.chance(profile.webhook_drop_rate):
                    self.faults.count("webhook_dropped")
                    self.counts["dropped"] += 1
                    continue
                due = time.monotonic()
                if self.faults.chance(profile.webhook_delay_rate):
                    self.faults.count("webhook_delayed")
                    self.counts["delayed"] += 1
                    due += profile.webhook_delay_seconds
                copies = 2 if self.faults.chance(profile.webhook_duplicate_rate) else 1
                if copies == 2:
                    self.faults.count("webhook_duplicated")
                    self.counts["duplicated"] += 1
                for _ in range(copies):
                    delivery = _Delivery(due, next(self._order), reg.id, body, envelope["eventId"])
                    if self._held is None and self.faults.chance(profile.webhook_reorder_rate):
                        self.faults.count("webhook_reordered")
                        self.counts["reordered"] += 1
                        self._held = delivery
                        continue
                    heapq.heappush(self._queue, delivery)
                queued += 1
            self._cond.notify_all()
        return queued

    # --- delivery -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="st-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._held else 0)

    def snapshot(self) -> dict:
        with self._cond:
            return dict(self.counts, pending=len(self._queue) + (1 if self._held else 0))

    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                if self._queue and self._queue[0].due <= now:
                    delivery = heapq.heappop(self._queue)
                    if self._held is not None:  # send the held one right after this one
                        held, self._held = self._held, None
                        held.due = now
                        heapq.heappush(self._queue, held)
                    return delivery
                if self._held is not None and not self._queue:
                    held, self._held = self._held, None  # nothing came after it: send it anyway
                    held.due = now + 0.2
                    heapq.heappush(self._queue, held)
                    continue
                wait = (self._queue[0].due - now) if self._queue else 1.0
                self._cond.wait(timeout=max(0.01, min(wait, 1.0)))
        return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                delivery = self._next()
                if delivery is None:
                    return
                self._deliver(client, delivery)

    def _deliver(self, client: httpx.Client, delivery: _Delivery) -> None:
        with self._cond:
            reg = self._regs.get(delivery.registration_id)
        if reg is None:
            return
        headers = {"Content-Type": "application/json", self.header: sign(reg.secret, delivery.body, self.encoding),
                   "User-Agent": "ServiceTitan-Webhooks-Simulator/1.0"}
        status: int | None = None
        try:
            status = client.post(reg.url, content=delivery.body, headers=headers).status_code
        except httpx.HTTPError:
            status = None
        ok = status is not None and 200 <= status < 300
        with self._cond:
            self.log.append({"eventId": delivery.event_id, "webhookId": reg.id, "attempt": delivery.attempt + 1,
                             "status": status})
            del self.log[:-500]
            if ok:
                self.counts["sent"] += 1
                return
            self.counts["failed"] += 1
            if delivery.attempt < len(RETRY_DELAYS):
                delivery.due = time.monotonic() + RETRY_DELAYS[delivery.attempt] / self.time_factor
                delivery.attempt += 1
                self.counts["retried"] += 1
                heapq.heappush(self._queue, delivery)
                self._cond.notify_all()
            else:
                self.counts["given_up"] += 1
