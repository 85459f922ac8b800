"""Webhook registrations and delivery for the ServiceTitan simulator.

Each registration says how its deliveries look (``webhook_shapes``: ``current``, ``v1`` or our
``v2`` guess) and how they are authenticated: ``hmac`` signs the raw body with HMAC-SHA256 under
the registration's secret, in the header and encoding chosen (ServiceTitan publishes neither;
docs/servicetitan-webhooks.md), or ``none`` sends no signature, as an app without an HMAC key
does, for a callback URL that carries its own secret path token. Defaults come from the options
``webhook_shape``, ``webhook_signing``, ``webhook_signature_header`` (``X-ServiceTitan-Signature``)
and ``webhook_signature_encoding`` (``base64``), each given once or per tenant
(``cascade-hvac:v1,summit-plumbing:v2``), and a registration may override any of them. Failed
deliveries (non-2xx or no connection) are retried after 10, 30, 60 and 300 s divided by the time
factor, then given up.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from simulators.faults import FaultState
from simulators.servicetitan.webhook_shapes import SHAPES, per_tenant, render, shifted
from simulators.servicetitan.wire import ticks_of, ts

EVENT_TYPES = (
    "invoice.created", "invoice.updated", "payment.created", "payment.updated", "inventorybill.created",
    "customer.created", "customer.updated", "vendor.created",
)
RETRY_DELAYS = (10, 30, 60, 300)
SIGNING = ("hmac", "none")
ENCODINGS = ("base64", "hex")
DEFAULT_HEADER = "X-ServiceTitan-Signature"


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
    shape: str = "current"
    signing: str = "hmac"
    header: str = DEFAULT_HEADER
    encoding: str = "base64"
    date_shift_days: int = 0

    def public(self) -> dict:
        return {"id": self.id, "tenant": self.tenant, "url": self.url, "events": list(self.events),
                "shape": self.shape, "signing": self.signing, "signature_header": self.header,
                "signature_encoding": self.encoding, "date_shift_days": self.date_shift_days}

    def headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "ServiceTitan-Webhooks-Simulator/1.0"}
        if self.signing == "hmac":
            headers[self.header] = sign(self.secret, body, self.encoding)
        return headers


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

    def __init__(self, faults: FaultState, time_factor: float = 1.0, options: dict | None = None,
                 tenant_names: dict[int, str] | None = None):
        self.options = options or {}
        self.tenant_names = tenant_names or {}  # tenant id -> name (V1's __tenantInfo)
        for tenant, name in self.tenant_names.items():
            _check(self.defaults(tenant, name))  # a bad `sim up -o` value fails at start
        self.faults = faults
        self.time_factor = time_factor if time_factor > 0 else 1.0
        self.timeout = float(self.options.get("webhook_timeout_seconds", 5.0))
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
        self._last_stamp = 0  # V1 event ids are instants: kept strictly increasing
        self._in_flight = 0  # deliveries taken from the queue and not yet answered

    # --- registrations ------------------------------------------------------------------------
    def defaults(self, tenant: int, key: str) -> dict:
        """The options' delivery settings for one tenant (``key`` is its contractor key)."""
        settings = {name: per_tenant(self.options.get(option), tenant, key, default) for name, option, default in (
            ("shape", "webhook_shape", "current"), ("signing", "webhook_signing", "hmac"),
            ("header", "webhook_signature_header", DEFAULT_HEADER),
            ("encoding", "webhook_signature_encoding", "base64"),
            ("date_shift_days", "webhook_date_shift_days", "0"))}
        return {**settings, "date_shift_days": int(settings["date_shift_days"])}

    def register(self, tenant: int, url: str, secret: str | None, events: list[str] | None,
                 default_secret: str, key: str = "", **overrides) -> Registration:
        """A registration; ``overrides`` (shape, signing, header, encoding, date_shift_days) win
        over the options' per-tenant defaults."""
        secret = secret or default_secret or secrets.token_hex(24)
        if not 32 <= len(secret) <= 64:
            raise ValueError("secret must be 32 to 64 characters")
        unknown = [e for e in events or () if e not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
        settings = {**self.defaults(tenant, key), **{k: v for k, v in overrides.items() if v is not None}}
        _check(settings)
        with self._cond:
            reg = Registration(next(self._ids), tenant, url, secret, tuple(events or EVENT_TYPES),
                               shape=str(settings["shape"]), signing=str(settings["signing"]),
                               header=str(settings["header"]), encoding=str(settings["encoding"]),
                               date_shift_days=int(settings["date_shift_days"]))
            self._regs[reg.id] = reg
        return reg

    def registrations(self) -> list[Registration]:
        with self._cond:
            return list(self._regs.values())

    def update(self, reg_id: int, changes: dict) -> Registration | None:
        """Edit a registration in place (key rotation, another shape); None if there is none."""
        with self._cond:
            reg = self._regs.get(reg_id)
            if reg is not None:
                registration_update(reg, changes)
            return reg

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
            stamp = self._stamp(created)
            for reg in self._regs.values():
                if reg.tenant != tenant or event_type not in reg.events:
                    continue
                event_id, envelope = render(reg.shape, event_type=event_type,
                                            record=shifted(record, reg.date_shift_days), webhook_id=reg.id,
                                            tenant=tenant, tenant_name=self.tenant_names.get(tenant, ""), created=created,
                                            event_stamp=stamp)
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
                    delivery = _Delivery(due, next(self._order), reg.id, body, event_id)
                    if self._held is None and self.faults.chance(profile.webhook_reorder_rate):
                        self.faults.count("webhook_reordered")
                        self.counts["reordered"] += 1
                        self._held = delivery
                        continue
                    heapq.heappush(self._queue, delivery)
                queued += 1
            self._cond.notify_all()
        return queued

    def _stamp(self, created: datetime) -> str:
        """The event's instant with 7 fractional digits, never equal to the previous one (V1 uses
        it as the event id, so two events must not share it)."""
        ticks = max(ticks_of(created), self._last_stamp + 1)
        self._last_stamp = ticks
        return ts(ticks)

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
        """Deliveries not yet answered: queued, held back, or on the wire."""
        with self._cond:
            return len(self._queue) + (1 if self._held else 0) + self._in_flight

    def snapshot(self) -> dict:
        with self._cond:
            return dict(self.counts, pending=len(self._queue) + (1 if self._held else 0) + self._in_flight)

    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                if self._queue and self._queue[0].due <= now:
                    delivery = heapq.heappop(self._queue)
                    self._in_flight += 1  # until _deliver has its answer
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
        try:
            self._post(client, delivery)
        finally:
            with self._cond:
                self._in_flight -= 1

    def _post(self, client: httpx.Client, delivery: _Delivery) -> None:
        with self._cond:
            reg = self._regs.get(delivery.registration_id)
        if reg is None:
            return
        headers = reg.headers(delivery.body)
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


def _check(settings: dict) -> None:
    if settings["shape"] not in SHAPES:
        raise ValueError(f"webhook shape {settings['shape']!r}: use one of {', '.join(SHAPES)}")
    if settings["signing"] not in SIGNING:
        raise ValueError(f"webhook signing {settings['signing']!r}: use one of {', '.join(SIGNING)}")
    if settings["encoding"] not in ENCODINGS:
        raise ValueError(f"webhook signature encoding {settings['encoding']!r}: use one of {', '.join(ENCODINGS)}")
    int(settings["date_shift_days"])


def registration_update(reg: Registration, changes: dict) -> None:
    """Apply a portal edit (new secret, shape, signing ...) to a registration, checked first."""
    merged = {"shape": reg.shape, "signing": reg.signing, "header": reg.header, "encoding": reg.encoding,
              "date_shift_days": reg.date_shift_days,
              **{k: v for k, v in changes.items() if v is not None and k != "secret"}}
    _check(merged)
    secret = changes.get("secret")
    if secret is not None and not 32 <= len(str(secret)) <= 64:
        raise ValueError("secret must be 32 to 64 characters")
    reg.shape, reg.signing, reg.header, reg.encoding = (str(merged[k]) for k in ("shape", "signing", "header",
                                                                                  "encoding"))
    reg.date_shift_days = int(merged["date_shift_days"])
    if secret is not None:
        reg.secret = str(secret)
