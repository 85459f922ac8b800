"""Acumatica's license limits: API-user seats, concurrent API requests with a FIFO queue, and the
requests-per-minute budget (reference §6, from Acumatica's "License Restrictions for API Users").

Mechanics modelled as documented: at most ``concurrency`` requests execute at once; the rest wait
in a FIFO queue; a request is declined with 429 (no Retry-After, no rate headers) when the queue
already holds ``queue_size`` (20) requests or when it has waited 10 minutes; once the requests
processed in the current one-minute window reach half of ``per_minute``, each new request is
delayed by remaining-time-in-window / remaining-requests. Logout bypasses the queue.

The tier numbers are license-specific and unpublished (reference §6 [I]); these named tiers use
the only figures found (trial: 2 API users; third-party "~100 req/min, 3 sessions" and
"L-series ~150/min, 6 sessions"). Pick one with ``options["tier"]`` (default "small", the
stricter) and override any number with options["seats"|"concurrency"|"per_minute"|"queue_size"].
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, replace

from simulators.runtime import SimClock


@dataclass(frozen=True)
class Tier:
    name: str
    seats: int  # Maximum Number of Web Services API Users
    concurrency: int  # Maximum Number of Concurrent Web Services API Requests
    per_minute: int  # Maximum Number of Web Services API Requests per Minute (0 = unlimited)
    queue_size: int = 20  # requests that may wait; one more is declined with 429
    queue_timeout_seconds: float = 600.0


TIERS: dict[str, Tier] = {
    # Trial licence: 2 API users; the docs say no other limits — a generous request pool.
    "trial": Tier("trial", seats=2, concurrency=8, per_minute=0),
    # Small commercial tier (third-party figure: ~100 requests/min, 3 concurrent).
    "small": Tier("small", seats=3, concurrency=3, per_minute=100),
    # Large ("L-series") tier (third-party figure: ~150 requests/min, 6 concurrent).
    "large": Tier("large", seats=6, concurrency=6, per_minute=150),
}


def tier_from_options(options: dict) -> Tier:
    name = str(options.get("tier", "small"))
    if name not in TIERS:
        raise ValueError(f"unknown Acumatica license tier {name!r}; known: {', '.join(TIERS)}")
    tier = TIERS[name]
    overrides = {k: type(getattr(tier, k))(options[k]) for k in
                 ("seats", "concurrency", "per_minute", "queue_size", "queue_timeout_seconds") if k in options}
    return replace(tier, **overrides)


class Declined(Exception):
    """The request was declined by the license (answered 429)."""


class RequestGate:
    """Concurrency pool + FIFO queue + per-minute delay. Runs on the server's event loop only."""

    def __init__(self, tier: Tier, clock: SimClock):
        self.tier = tier
        self.clock = clock
        self.running = 0
        self.waiting: collections.deque[asyncio.Future] = collections.deque()
        self.peak_concurrency = 0
        self.peak_queue = 0
        self.declined = 0
        self.delayed = 0
        self.processed = 0
        self._window_start: float | None = None  # simulated epoch seconds
        self._window_count = 0
        self._recent: collections.deque[float] = collections.deque()  # sim times, for stats

    def _sim_now(self) -> float:
        return self.clock.now().timestamp()

    async def acquire(self) -> None:
        if self.running < self.tier.concurrency and not self.waiting:
            self._enter()
        else:
            if len(self.waiting) >= self.tier.queue_size:
                self.declined += 1
                raise Declined()
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            self.waiting.append(fut)
            self.peak_queue = max(self.peak_queue, len(self.waiting))
            try:
                await asyncio.wait_for(fut, self.clock.sleep_seconds(self.tier.queue_timeout_seconds))
            except TimeoutError:
                if fut in self.waiting:
                    self.waiting.remove(fut)
                self.declined += 1
                raise Declined() from None
            except asyncio.CancelledError:
                if fut in self.waiting:
                    self.waiting.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self.release()  # we were handed a slot but the client went away
                raise
        await self._per_minute_delay()

    def _enter(self) -> None:
        self.running += 1
        self.peak_concurrency = max(self.peak_concurrency, self.running)

    def release(self) -> None:
        self.running -= 1
        self.processed += 1
        now = self._sim_now()
        self._recent.append(now)
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                self._enter()
                fut.set_result(None)
                break

    async def _per_minute_delay(self) -> None:
        limit = self.tier.per_minute
        if limit <= 0:
            return
        while True:
            now = self._sim_now()
            if self._window_start is None or now - self._window_start >= 60.0:
                self._window_start = now
                self._window_count = 0
            if self._window_count < limit / 2:
                self._window_count += 1
                return
            remaining_time = 60.0 - (now - self._window_start)
            remaining_requests = limit - self._window_count
            if remaining_requests <= 0:
                delay = remaining_time  # budget spent: wait for the next window
            else:
                self._window_count += 1
                delay = remaining_time / remaining_requests
            self.delayed += 1
            await asyncio.sleep(max(0.0, self.clock.sleep_seconds(delay)))
            if remaining_requests > 0:
                return

    def requests_last_minute(self) -> int:
        cutoff = self._sim_now() - 60.0
        while self._recent and self._recent[0] < cutoff:
            self._recent.popleft()
        return len(self._recent)

    def snapshot(self) -> dict:
        return {
            "tier": self.tier.name,
            "seats": self.tier.seats,
            "concurrency": self.tier.concurrency,
            "per_minute": self.tier.per_minute,
            "queue_size": self.tier.queue_size,
            "running": self.running,
            "queued": len(self.waiting),
            "peak_concurrency": self.peak_concurrency,
            "peak_queue": self.peak_queue,
            "declined_429": self.declined,
            "delayed": self.delayed,
            "processed": self.processed,
            "requests_last_minute": self.requests_last_minute(),
            "wall_time": time.time(),
        }
