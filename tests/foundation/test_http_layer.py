"""The shared HTTP layer over a real socket: retries, waits, classification, refresh, redaction."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from resources.http import (
    AnswerLost,
    AuthError,
    ConflictError,
    HttpClient,
    NotFoundError,
    RateLimiter,
    RetryPolicy,
    TransientError,
    ValidationError,
    register_secret,
)
from resources.redaction import install_log_redaction, redact
from tests.foundation.scripted_server import ScriptedServer

TOKEN_1 = "tok-AAAA-first-token-value"
TOKEN_2 = "tok-BBBB-second-token-value"
APP_KEY = "ak-0123456789-app-key"


@pytest.fixture
def server():
    s = ScriptedServer().start()
    yield s
    s.stop()


class FakeSleep:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class TwoTokenAuth:
    """Hands out TOKEN_1, then TOKEN_2 after one refresh."""

    def __init__(self):
        self.token = TOKEN_1
        self.refreshes = 0
        register_secret(TOKEN_1)
        register_secret(TOKEN_2)

    def headers(self):
        return {"Authorization": f"Bearer {self.token}", "ST-App-Key": APP_KEY}

    def refresh(self, failed_headers):
        self.refreshes += 1
        self.token = TOKEN_2


def client(server, sleep, **kw):
    return HttpClient("testsys", server.url, sleep=sleep, retry=RetryPolicy(max_attempts=4, base_delay=0.5), **kw)


def test_429_with_retry_after_is_honoured(server):
    sleep = FakeSleep()
    server.script = [{"status": 429, "headers": {"Retry-After": "3"}}, {"status": 200, "json": {"v": 1}}]
    resp = client(server, sleep).get("/x")
    assert resp.json() == {"v": 1}
    assert len(sleep.waits) == 1 and 3.0 <= sleep.waits[0] <= 3.5
    assert len(server.requests) == 2


def test_429_without_retry_after_uses_jittered_backoff(server):
    sleep = FakeSleep()
    server.script = [{"status": 429}, {"status": 429}, {"status": 200}]
    c = client(server, sleep)
    c.get("/x")
    assert len(sleep.waits) == 2
    assert 0 <= sleep.waits[0] <= 0.5 and 0 <= sleep.waits[1] <= 1.0  # full jitter under the exponential cap
    assert c.stats["retries"] == 2 and c.stats["by_status"] == {429: 2, 200: 1}


def test_503_exhausts_attempts_then_raises_transient(server):
    sleep = FakeSleep()
    server.script = [{"status": 503, "body": "<html>Service Unavailable</html>"}] * 4
    with pytest.raises(TransientError) as err:
        client(server, sleep).get("/accounting/v2/tenant/1/invoices?page=3")
    e = err.value
    assert e.status == 503 and e.method == "GET" and e.path == "/accounting/v2/tenant/1/invoices"
    assert "Service Unavailable" in e.body_excerpt and e.error_class == "transient"
    assert len(server.requests) == 4 and len(sleep.waits) == 3


def test_connection_reset_of_a_read_is_retried(server):
    sleep = FakeSleep()
    server.script = [{"reset": True}, {"status": 200, "json": {"ok": 1}}]
    assert client(server, sleep).get("/x").json() == {"ok": 1}
    assert len(sleep.waits) == 1


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_lost_answer_to_a_write_is_never_resent(server, method):
    """The server read the whole write (and may have committed it), then the connection dropped:
    resending would make a second document in an ERP without idempotency keys."""
    sleep = FakeSleep()
    server.script = [{"reset": True}, {"status": 200, "json": {"ok": 1}}]
    with pytest.raises(AnswerLost) as err:
        client(server, sleep).request(method, "/entity/Default/24.200.001/Invoice", json={"a": 1})
    assert len(server.requests) == 1 and sleep.waits == []
    assert err.value.error_class == "transient" and "not resent" in str(err.value)


def test_write_whose_answer_times_out_is_not_resent(server):
    server.script = [{"delay": 1.0, "status": 200}, {"status": 200}]
    c = HttpClient("testsys", server.url, sleep=FakeSleep(), timeout=0.3, retry=RetryPolicy(max_attempts=4))
    with pytest.raises(AnswerLost):
        c.put("/x", json={"a": 1})
    assert len(server.requests) == 1


def test_write_refused_unprocessed_is_resent_but_a_500_is_not(server):
    sleep = FakeSleep()
    server.script = [{"status": 503}, {"status": 429}, {"status": 200, "json": {"ok": 1}}]
    assert client(server, sleep).put("/x", json={"a": 1}).json() == {"ok": 1}
    assert len(server.requests) == 3
    server.script = [{"status": 500}, {"status": 200}]
    with pytest.raises(TransientError) as err:
        client(server, sleep).put("/x", json={"a": 1})
    assert err.value.status == 500 and len(server.requests) == 4


def test_write_that_never_connected_is_resent():
    with socket.socket() as probe:  # a port nothing listens on: every attempt is refused at connect
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleep = FakeSleep()
    c = HttpClient("testsys", f"http://127.0.0.1:{port}", sleep=sleep, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(TransientError) as err:
        c.put("/x", json={"a": 1})
    assert not isinstance(err.value, AnswerLost) and len(sleep.waits) == 2


def test_write_declared_idempotent_is_resent_after_a_lost_answer(server):
    server.script = [{"reset": True}, {"status": 200, "json": {"access_token": "t"}}]
    assert client(server, FakeSleep()).post("/token", data={"grant_type": "x"}, idempotent=True).json()
    assert len(server.requests) == 2


def test_400_is_not_retried_and_is_a_validation_error(server):
    sleep = FakeSleep()
    server.script = [{"status": 400, "json": {"title": "ids: more than 50"}}]
    with pytest.raises(ValidationError, match="ids: more than 50"):
        client(server, sleep).get("/x")
    assert sleep.waits == [] and len(server.requests) == 1


@pytest.mark.parametrize(("status", "cls"), [(404, NotFoundError), (409, ConflictError), (422, ValidationError),
                                             (403, AuthError)])
def test_classification(server, status, cls):
    server.script = [{"status": status}]
    with pytest.raises(cls):
        client(server, FakeSleep()).get("/x")


def test_401_refreshes_once_then_succeeds(server):
    auth = TwoTokenAuth()
    server.script = [{"status": 401}, {"status": 200, "json": {"ok": True}}]
    c = client(server, FakeSleep(), auth=auth)
    assert c.get("/x").json() == {"ok": True}
    assert auth.refreshes == 1
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN_1}"
    assert server.requests[1]["headers"]["Authorization"] == f"Bearer {TOKEN_2}"


def test_401_twice_is_an_auth_error_without_looping(server):
    auth = TwoTokenAuth()
    server.script = [{"status": 401}, {"status": 401}, {"status": 200}]
    with pytest.raises(AuthError):
        client(server, FakeSleep(), auth=auth).get("/x")
    assert auth.refreshes == 1 and len(server.requests) == 2


def test_no_secret_in_logs_or_exceptions(server, caplog):
    install_log_redaction()
    auth = TwoTokenAuth()
    caplog.set_level(logging.DEBUG, logger="fieldledger")
    echo = f'{{"error": "bad token {TOKEN_1}", "password": "hunter2-long", "client_secret": "cs-xyz-123"}}'
    server.script = [{"status": 422, "body": echo}]
    with pytest.raises(ValidationError) as err:
        client(server, FakeSleep(), auth=auth).post("/x", data={"password": "hunter2-long"})
    text = str(err.value) + err.value.body_excerpt + caplog.text
    for secret in (TOKEN_1, TOKEN_2, APP_KEY, "hunter2-long", "cs-xyz-123"):
        assert secret not in text, secret
    assert "***" in str(err.value)
    assert redact(f"Authorization: Bearer {TOKEN_2}") == "Authorization: Bearer ***"


def test_rate_limiter_is_shared_and_holds_the_rate():
    a = RateLimiter.shared("st:app:1", 50, burst=5)
    b = RateLimiter.shared("st:app:1", 50, burst=5)
    assert a is b
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: [a.acquire() for _ in range(25)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # 100 tokens at 50/s with a burst of 5 need at least (100 - 5) / 50 = 1.9 s
    assert elapsed >= 1.85


def test_concurrency_cap(server):
    server.script = [{"status": 200}] * 20
    c = HttpClient("testsys", server.url, max_concurrency=2)
    active = {"now": 0, "peak": 0}
    lock = threading.Lock()
    original = c._client.request

    def tracking(*args, **kw):
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        try:
            time.sleep(0.02)
            return original(*args, **kw)
        finally:
            with lock:
                active["now"] -= 1

    c._client.request = tracking
    threads = [threading.Thread(target=c.get, args=("/x",)) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert active["peak"] == 2 and len(server.requests) == 10
