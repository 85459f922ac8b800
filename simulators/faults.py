"""Fault profiles shared by the three simulators, and the ASGI middleware that applies the
transport-level ones (latency, 5xx, 429 bursts).

A profile is named and profiles combine: ``--profile flaky,slow``. Domain faults (dropped or
duplicated webhooks, revoked tokens, seat-limit errors) are read from the same profile by the
simulator that owns them; this module only applies what is common to every HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class FaultProfile:
    error_rate: float = 0.0  # share of API requests answered with a 5xx
    error_status: int = 503
    latency_ms: float = 0.0  # added to every API response
    latency_jitter_ms: float = 0.0
    latency_spike_rate: float = 0.0  # share of requests that get latency_spike_ms more
    latency_spike_ms: float = 0.0
    burst_429_rate: float = 0.0  # chance per request that a 429 burst starts
    burst_429_seconds: float = 0.0  # how long a burst lasts (wall seconds)
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder_rate: float = 0.0  # share of webhooks held back and sent after the next one
    webhook_delay_seconds: float = 0.0  # delay added to a share of webhooks (see rate below)
    webhook_delay_rate: float = 0.0
    token_revoke_after_seconds: float = 0.0  # >0: tokens stop working this long after issue
    seat_limit_rate: float = 0.0  # Acumatica: share of sign-ins refused as over the seat limit
    # share of writes (PUT/POST/PATCH/DELETE, sign-in excepted) the simulator carries out and
    # commits, then loses the answer to: the status line goes out, the connection drops mid-body
    lost_answer_rate: float = 0.0


NAMED_PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(),
    "flaky": FaultProfile(error_rate=0.05),
    "slow": FaultProfile(latency_ms=50, latency_jitter_ms=25),
    "spiky": FaultProfile(latency_spike_rate=0.02, latency_spike_ms=1500),
    "throttled": FaultProfile(burst_429_rate=0.01, burst_429_seconds=1.0),
    "webhook-chaos": FaultProfile(
        webhook_drop_rate=0.05,
        webhook_duplicate_rate=0.10,
        webhook_reorder_rate=0.10,
        webhook_delay_rate=0.05,
        webhook_delay_seconds=5.0,
    ),
    "token-revoke": FaultProfile(token_revoke_after_seconds=60.0),
    "seat-limit": FaultProfile(seat_limit_rate=0.2),
    "mild": FaultProfile(error_rate=0.01, latency_ms=10, burst_429_rate=0.002, burst_429_seconds=0.5),
    "lost-answer": FaultProfile(lost_answer_rate=0.1),
}
NAMED_PROFILES["chaos"] = replace(
    NAMED_PROFILES["webhook-chaos"],
    error_rate=0.05,
    latency_spike_rate=0.02,
    latency_spike_ms=800,
    burst_429_rate=0.01,
    burst_429_seconds=0.5,
    token_revoke_after_seconds=120.0,
    seat_limit_rate=0.1,
)


def parse_profile(spec: str | None) -> FaultProfile:
    """'flaky,slow' -> one profile; for each field the larger value of the named profiles wins.
    'key=value' items set a field directly: 'flaky,latency_ms=200'."""
    result = FaultProfile()
    if not spec:
        return result
    names = {f.name for f in fields(FaultProfile)}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if "=" in item:
            key, _, value = item.partition("=")
            if key not in names:
                raise ValueError(f"unknown fault setting {key!r}; known: {', '.join(sorted(names))}")
            result = replace(result, **{key: type(getattr(result, key))(value)})
            continue
        if item not in NAMED_PROFILES:
            raise ValueError(f"unknown fault profile {item!r}; known: {', '.join(sorted(NAMED_PROFILES))}")
        other = NAMED_PROFILES[item]
        merged = {f.name: max(getattr(result, f.name), getattr(other, f.name)) for f in fields(FaultProfile)}
        result = FaultProfile(**merged)
    return result


class FaultState:
    """The live, mutable fault settings of one simulator (tests change them at run time through
    the simulator's ``/_sim/faults`` control endpoint) and counts of what was injected."""

    def __init__(self, profile: FaultProfile, seed: int = 0):
        self.profile = profile
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._burst_until = 0.0
        self.injected: dict[str, int] = {}

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + n

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def in_429_burst(self) -> bool:
        now = time.monotonic()
        p = self.profile
        with self._lock:
            if now < self._burst_until:
                return True
            if p.burst_429_rate > 0 and self._rng.random() < p.burst_429_rate:
                self._burst_until = now + p.burst_429_seconds
                return True
        return False

    def latency_seconds(self) -> float:
        p = self.profile
        delay = p.latency_ms
        with self._lock:
            if p.latency_jitter_ms:
                delay += self._rng.uniform(0, p.latency_jitter_ms)
            if p.latency_spike_rate and self._rng.random() < p.latency_spike_rate:
                delay += p.latency_spike_ms
        return delay / 1000.0

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.injected)


# An error renderer returns (status, headers, body bytes) in the remote system's own format.
ErrorRenderer = Callable[[int, str], tuple[int, list[tuple[bytes, bytes]], bytes]]


def json_error(status: int, body: dict, extra_headers: list[tuple[bytes, bytes]] | None = None):
    headers = [(b"content-type", b"application/json; charset=utf-8")] + (extra_headers or [])
    return status, headers, json.dumps(body).encode()


class FaultMiddleware:
    """Applies latency, 5xx and 429 bursts to API paths. Control paths (``/_sim``) and any path
    for which ``exempt(path)`` is true pass untouched."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        state: FaultState,
        render_error: ErrorRenderer,
        exempt: Callable[[str], bool] = lambda path: False,
        throttle_renderer: ErrorRenderer | None = None,
    ):
        self.app = app
        self.state = state
        self.render_error = render_error
        self.render_throttle = throttle_renderer or render_error
        self.exempt = exempt

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sim") or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        delay = self.state.latency_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.state.in_429_burst():
            self.state.count("429_burst")
            await _send(send, *self.render_throttle(429, "Too many requests (simulated burst)"))
            return
        if self.state.chance(self.state.profile.error_rate):
            self.state.count(f"http_{self.state.profile.error_status}")
            await _send(send, *self.render_error(self.state.profile.error_status, "Simulated server fault"))
            return
        if is_write(scope) and self.state.chance(self.state.profile.lost_answer_rate):
            await self._lose_answer(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _lose_answer(self, scope, receive, send) -> None:
        """Carry the write out (the simulator commits it), then send only the status line and
        headers and drop the connection: the client knows the request arrived, never its outcome."""
        start: dict = {}

        async def swallow(message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)

        await self.app(scope, receive, swallow)
        self.state.count("lost_answer")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": start.get("status", 200),
                    "headers": [*headers, (b"content-length", b"64")]})
        raise AnswerDropped(f"simulated lost answer to {scope['method']} {scope['path']}")


class AnswerDropped(Exception):
    """Raised after the status line of a lost answer: the server closes the connection mid-body."""


AUTH_PATH_WORDS = ("token", "identity", "/auth/", "login", "logout")


def is_write(scope) -> bool:
    """A request that changes data (sign-ins excepted: losing those only costs a session)."""
    path = scope["path"].lower()
    return scope["method"] in ("PUT", "POST", "PATCH", "DELETE") and not any(w in path for w in AUTH_PATH_WORDS)


async def _send(send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
