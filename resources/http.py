"""The one HTTP layer under every remote-system client (ServiceTitan, Acumatica, Vantagepoint).

It owns timeouts, retries (exponential backoff with full jitter, Retry-After honoured), the
"401 -> refresh once" rule, client-side rate limiting and concurrency caps, error
classification and a redacted request log. Clients add only auth and their system's quirks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from contextlib import nullcontext
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from resources.redaction import redact, register_secret  # noqa: F401 - re-exported for clients

log = logging.getLogger("fieldledger.http")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Answers that say the server did not act on the request (refused before processing it): a write
# may be sent again after them. A 500/502/504 or a dropped answer says nothing of the kind.
NOT_PROCESSED_STATUSES = frozenset({408, 425, 429, 503})
# Methods resent after the request may have reached the server. Neither ERP offers idempotency
# keys (an Acumatica PUT without a key creates a document), so every other method is resent only
# when it provably never left (connect errors) or was refused unprocessed; callers whose write is
# safe to repeat (a token grant, a read through PUT) say so with ``idempotent=True``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# --- errors --------------------------------------------------------------------------------


class RemoteError(Exception):
    """A failed call to a remote system, already classified. The message is redacted."""

    error_class = "transient"

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        method: str = "",
        path: str = "",
        status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ):
        self.system = system
        self.method = method
        self.path = path
        self.status = status
        self.body_excerpt = redact(body_excerpt)[:300]
        self.retry_after = retry_after
        where = f"{system} {method} {path}".strip()
        status_part = f" -> {status}" if status is not None else ""
        detail = f": {self.body_excerpt}" if self.body_excerpt else ""
        super().__init__(redact(f"{message} [{where}{status_part}]{detail}"))


class TransientError(RemoteError):
    """5xx, 429, timeouts, dropped connections: worth retrying later."""

    error_class = "transient"


class AnswerLost(TransientError):
    """A write reached (or may have reached) the server but its answer never arrived: the
    connection dropped, the server crashed after committing, or the read timed out. It is never
    resent here; the posting protocol asks the ERP whether the document exists before any re-post."""


class AuthError(RemoteError):
    """401/403 that a credential refresh did not cure: the connection needs a person."""

    error_class = "auth"


class ValidationError(RemoteError):
    """The remote system refused the content (400, 422): fix the record or the mapping."""

    error_class = "validation"


class NotFoundError(RemoteError):
    error_class = "not_found"


class ConflictError(RemoteError):
    error_class = "conflict"


def classify_status(status: int) -> type[RemoteError]:
    if status in RETRY_STATUSES or status >= 500:
        return TransientError
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status in (409, 412):
        return ConflictError
    return ValidationError


# --- auth, rate limit -----------------------------------------------------------------------


class Auth(Protocol):
    def headers(self) -> dict[str, str]:
        """Current auth headers; fetch a token lazily. Thread-safe."""

    def refresh(self, failed_headers: dict[str, str]) -> None:
        """Called once after a 401; refetch unless another thread already replaced the token."""


class RateLimiter:
    """Token bucket, thread-safe. ``shared(key, …)`` gives one bucket per remote system and
    credential for the whole process, so concurrent clients of one tenant share its budget."""

    _registry: dict[str, RateLimiter] = {}
    _registry_lock = threading.Lock()

    def __init__(self, rate_per_second: float, burst: int | None = None, clock=time.monotonic, sleep=time.sleep):
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        self.capacity = float(burst if burst is not None else max(1, int(rate_per_second)))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    @classmethod
    def shared(cls, key: str, rate_per_second: float, burst: int | None = None) -> RateLimiter:
        with cls._registry_lock:
            limiter = cls._registry.get(key)
            if limiter is None or limiter.rate != rate_per_second:
                limiter = cls(rate_per_second, burst)
                cls._registry[key] = limiter
            return limiter

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self.waited_seconds += wait
            self._sleep(wait)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 20.0
    max_retry_after: float = 120.0


def _retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


# --- the client -----------------------------------------------------------------------------


class HttpClient:
    """An httpx client with the project's retry, auth-refresh, limiting and error rules."""

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        max_concurrency: int | None = None,
        classify: Callable[[httpx.Response], type[RemoteError] | None] | None = None,
        default_headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.system = system
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self._semaphore = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self._classify = classify
        self._sleep = sleep
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=default_headers or {},
            transport=transport,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        )
        self._stats_lock = threading.Lock()
        self.stats: dict[str, Any] = {"requests": 0, "retries": 0, "refreshes": 0, "by_status": {}}

    # public verbs
    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        ok_statuses: Collection[int] | None = None,
        use_auth: bool = True,
        timeout: float | None = None,
        attempts: int | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send with retries; return the response when its status is OK, else raise the
        classified RemoteError. Only transient failures are retried, and a non-idempotent request
        (``idempotent`` defaults to the method's: GET, HEAD, OPTIONS) only when it cannot have been
        acted on: a connect error, or 408/425/429/503. Once a write may have reached the server,
        a lost answer raises AnswerLost and a 5xx its TransientError, without resending."""
        attempt_no = 0
        resend_after_send = method.upper() in IDEMPOTENT_METHODS if idempotent is None else idempotent

        def one_attempt() -> httpx.Response:
            nonlocal attempt_no
            attempt_no += 1
            if attempt_no > 1:
                self._bump("retries")
            return self._send_with_refresh(
                method, path, attempt_no, ok_statuses, use_auth, resend_after_send,
                dict(params=params, json=json, data=data, content=content, headers=headers,
                     timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT),
            )

        retrying = Retrying(
            stop=stop_after_attempt(attempts or self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: may_resend(e, resend_after_send)),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(one_attempt)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals
    def _wait(self, retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        jitter = wait_random_exponential(multiplier=self.retry.base_delay, max=self.retry.max_delay)(retry_state)
        if isinstance(exc, RemoteError) and exc.retry_after is not None:
            return min(exc.retry_after, self.retry.max_retry_after) + min(jitter, self.retry.base_delay)
        return jitter

    def _send_with_refresh(self, method, path, attempt_no, ok_statuses, use_auth, resend_after_send,
                           kwargs) -> httpx.Response:
        response = self._send_once(method, path, attempt_no, use_auth, resend_after_send, kwargs)
        if response.status_code == 401 and use_auth and self.auth is not None:
            failed = dict(response.request.headers)
            self._bump("refreshes")
            self.auth.refresh(failed)  # a 401 was refused unprocessed: sending again is safe
            response = self._send_once(method, path, attempt_no, use_auth, resend_after_send, kwargs)
        return self._check(method, path, response, ok_statuses)

    def _send_once(self, method, path, attempt_no, use_auth, resend_after_send, kwargs) -> httpx.Response:
        if self.limiter is not None:
            self.limiter.acquire()
        kwargs = dict(kwargs)
        headers = dict(kwargs.pop("headers", None) or {})
        if use_auth and self.auth is not None:
            headers.update(self.auth.headers())
        started = time.perf_counter()
        gate = self._semaphore if self._semaphore is not None else nullcontext()
        try:
            with gate:
                response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            elapsed = (time.perf_counter() - started) * 1000
            self._log(method, path, None, elapsed, attempt_no, type(exc).__name__)
            if resend_after_send or isinstance(exc, NOT_SENT_ERRORS):
                raise TransientError(
                    f"{type(exc).__name__} talking to {self.system}", system=self.system, method=method,
                    path=_path_only(path),
                ) from None
            raise AnswerLost(
                f"{type(exc).__name__} after the request was sent to {self.system}: it may have been applied, "
                "so it is not resent; the posting protocol looks the document up before posting again",
                system=self.system, method=method, path=_path_only(path),
            ) from None
        elapsed = (time.perf_counter() - started) * 1000
        self._bump_status(response.status_code)
        self._log(method, path, response.status_code, elapsed, attempt_no)
        return response

    def _check(self, method, path, response: httpx.Response, ok_statuses) -> httpx.Response:
        status = response.status_code
        ok = status in ok_statuses if ok_statuses is not None else 200 <= status < 300
        if ok:
            return response
        cls = (self._classify(response) if self._classify else None) or classify_status(status)
        try:
            body = response.text
        except Exception:  # noqa: BLE001 - undecodable bodies still deserve an error
            body = ""
        raise cls(
            f"{self.system} answered {status}",
            system=self.system, method=method, path=_path_only(path), status=status,
            body_excerpt=body, retry_after=_retry_after_seconds(response),
        )

    def _log(self, method, path, status, elapsed_ms, attempt_no, error: str = "") -> None:
        if log.isEnabledFor(logging.DEBUG) or (status is None or status >= 400):
            level = logging.INFO if status is not None and status < 500 else logging.WARNING
            if status is not None and status < 400:
                level = logging.DEBUG
            log.log(
                level, "%s %s %s -> %s in %.1f ms (attempt %d)%s", self.system, method,
                redact(_path_only(path)), status if status is not None else error, elapsed_ms, attempt_no,
                "", extra={"http": {"system": self.system, "method": method, "path": _path_only(path),
                                    "status": status, "ms": round(elapsed_ms, 1), "attempt": attempt_no}},
            )

    def _bump(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _bump_status(self, status: int) -> None:
        with self._stats_lock:
            self.stats["requests"] += 1
            by = self.stats["by_status"]
            by[status] = by.get(status, 0) + 1


# Transport errors raised before any byte of the request left: nothing can have been applied.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def may_resend(exc: BaseException, resend_after_send: bool) -> bool:
    """Whether the HTTP layer may send this request again after ``exc``."""
    if not isinstance(exc, TransientError) or isinstance(exc, AnswerLost):
        return False
    return resend_after_send or exc.status is None or exc.status in NOT_PROCESSED_STATUSES


def _path_only(path: str) -> str:
    return str(path).split("?", 1)[0]
