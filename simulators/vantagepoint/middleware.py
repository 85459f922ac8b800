"""ASGI layers around the simulated tenant: request statistics, the optional rate limit (off by
default: Vantagepoint documents none), a maintenance switch answering 503, and "lost responses"
(the request is processed, then the client gets a 5xx instead of the answer)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from simulators.faults import json_error


def render_error(html_503: bool):
    """The tenant's own error bodies: REST JSON, or the proxy's HTML page for a 503."""

    def render(status: int, message: str):
        if status == 429:
            return json_error(status, {"message": message, "detail": message}, [(b"retry-after", b"1")])
        if status == 503 and html_503:
            body = (
                b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
                b"<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
            )
            return status, [(b"content-type", b"text/html")], body
        text = message if status != 500 else "Object reference not set to an instance of an object."
        return json_error(status, {"message": text, "detail": text})

    return render


async def _send_raw(send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StatsMiddleware:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.by_status: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.requests = 0

    @staticmethod
    def kind(path: str, method: str) -> str:
        lowered = path.lower()
        if lowered.startswith("/_sim"):
            return "control"
        if lowered.endswith("/token"):
            return "token"
        if "posttransfile" in lowered:
            return "post"
        if "/dataentry/" in lowered:
            return f"dataentry_{method.lower()}"
        if "/psaledger/" in lowered or "/arreview/" in lowered:
            return "ledger"
        return f"hub_{method.lower()}"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = self.kind(scope["path"], scope["method"])

        async def counting_send(message):
            if message["type"] == "http.response.start" and kind != "control":
                with self.lock:
                    self.requests += 1
                    self.by_status[str(message["status"])] += 1
                    self.by_kind[kind] += 1
            await send(message)

        await self.app(scope, receive, counting_send)

    def snapshot(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "by_status": dict(self.by_status), "by_kind": dict(self.by_kind)}


class RateLimitMiddleware:
    """Token bucket over API requests; 429 + Retry-After beyond it. ``per_minute`` 0 = off."""

    def __init__(self, app, per_minute: float, burst: int, render):
        self.app = app
        self.per_minute = per_minute
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.render = render
        self.throttled = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sim") or self.per_minute <= 0:
            await self.app(scope, receive, send)
            return
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.per_minute / 60.0)
            self.last = now
            allowed = self.tokens >= 1
            if allowed:
                self.tokens -= 1
            else:
                self.throttled += 1
        if allowed:
            await self.app(scope, receive, send)
        else:
            await _send_raw(send, *self.render(429, "The request limit for this database has been exceeded."))


@dataclass
class DropRule:
    match: str  # case-insensitive substring of the path
    method: str = ""  # empty = any
    count: int = 1
    status: int = 502


class ControlledFaults:
    """Maintenance mode and lost responses; both changed at run time through ``/_sim``."""

    def __init__(self, app, render, counter):
        self.app = app
        self.render = render
        self.counter = counter  # FaultState.count
        self.lock = threading.Lock()
        self.maintenance = False
        self.drop_rules: list[DropRule] = []

    def set_drop_rules(self, rules: list[DropRule]) -> None:
        with self.lock:
            self.drop_rules = [r for r in rules if r.count > 0]

    def _take_rule(self, path: str, method: str) -> DropRule | None:
        with self.lock:
            for rule in self.drop_rules:
                if rule.count > 0 and rule.match.lower() in path.lower() and (
                    not rule.method or rule.method.upper() == method
                ):
                    rule.count -= 1
                    return rule
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        if self.maintenance:
            self.counter("maintenance_503")
            await _send_raw(send, *self.render(503, "The service is temporarily unavailable."))
            return
        rule = self._take_rule(scope["path"], scope["method"])
        if rule is None:
            await self.app(scope, receive, send)
            return

        async def swallow(message):
            return None

        await self.app(scope, receive, swallow)  # processed for real; the answer is lost
        self.counter(f"lost_response_{rule.status}")
        await _send_raw(send, *self.render(rule.status, "Bad gateway"))
