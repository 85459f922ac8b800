"""The receiver over real loopback sockets: acceptance, every refusal (with nothing stored),
duplicates, concurrency, secret rotation, health and metrics."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time

import httpx

from receiver.server import ThreadedReceiver
from receiver.signature import new_token, sign
from tests.receiver.webhook_deliveries import CONNECTION, encode, inbox_rows, make_event, signed_headers


def test_signed_delivery_is_stored_with_its_raw_body(client, store, secret):
    event = make_event(1)
    body = encode(event)
    resp = client.post(f"/webhooks/servicetitan/{CONNECTION}", content=body,
                       headers={**signed_headers(secret, body), "User-Agent": "ServiceTitan-Webhooks/2"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "stored", "eventId": event["eventId"]}
    [row] = inbox_rows(store)
    assert row["event_id"] == event["eventId"]
    assert row["event_type"] == "invoice.created"
    assert bytes(row["body"]) == body
    assert row["state"] == "pending"
    assert row["headers"] == {"content-type": "application/json", "user-agent": "ServiceTitan-Webhooks/2"}
    assert store.pending_inbox_events()[0].body == body


def _post(client, body: bytes, headers: dict, connection: str = CONNECTION) -> httpx.Response:
    return client.post(f"/webhooks/servicetitan/{connection}", content=body, headers=headers)


def _assert_refusal(resp: httpx.Response, status: int, error: str, *, secret: str, signature: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert payload["error"] == error
    assert len(payload["message"]) > 20  # says what happened and what to do
    assert secret not in resp.text
    if signature:
        assert signature not in resp.text


def test_duplicate_delivery_is_stored_once_and_answered_200(client, store, secret):
    body = encode(make_event(2))
    first = _post(client, body, signed_headers(secret, body))
    second = _post(client, body, signed_headers(secret, body))
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["status"], second.json()["status"]) == ("stored", "duplicate")
    assert len(inbox_rows(store)) == 1


def test_event_without_id_is_deduplicated_by_body_hash(client, store, secret):
    body = encode(make_event(3, event_id=None))
    other = encode(make_event(4, event_id=None))
    answers = [_post(client, b, signed_headers(secret, b)) for b in (body, body, other)]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate", "stored"]
    rows = inbox_rows(store)
    assert [r["event_id"] for r in rows] == [
        "sha256:" + hashlib.sha256(body).hexdigest(), "sha256:" + hashlib.sha256(other).hexdigest()]


def test_missing_and_bad_signatures_are_refused_401(client, store, secret):
    body = encode(make_event(5))
    missing = _post(client, body, {"Content-Type": "application/json"})
    _assert_refusal(missing, 401, "missing_signature", secret=secret)
    wrong_key = sign("another-key-of-sufficient-length-1234567", body)
    _assert_refusal(_post(client, body, {"Content-Type": "application/json", "X-ServiceTitan-Signature": wrong_key}),
                    401, "bad_signature", secret=secret, signature=wrong_key)
    tampered = body.replace(b"412.50", b"999.99")
    good_for_original = sign(secret, body)
    _assert_refusal(_post(client, tampered, {"Content-Type": "application/json",
                                             "X-ServiceTitan-Signature": good_for_original}),
                    401, "bad_signature", secret=secret, signature=good_for_original)
    truncated = sign(secret, body, "hex")[:-2]  # right key, a digest cut short
    _assert_refusal(_post(client, body, {"Content-Type": "application/json", "X-ServiceTitan-Signature": truncated}),
                    401, "bad_signature", secret=secret, signature=truncated)
    assert inbox_rows(store) == []


def test_unknown_connection_is_refused_404(client, store, secret):
    body = encode(make_event(6))
    for name in ("summit", "no_such_connection", "cascade.yaml", "%2E%2E"):
        resp = client.post(f"/webhooks/servicetitan/{name}", content=body, headers=signed_headers(secret, body))
        _assert_refusal(resp, 404, "unknown_connection", secret=secret)
    resp = client.post("/webhooks/servicetitan/..%2Fcascade", content=body, headers=signed_headers(secret, body))
    _assert_refusal(resp, 404, "unknown_connection", secret=secret)  # read as connection "..", token "cascade"
    resp = client.post("/webhooks/servicetitan/a/b/c", content=body, headers=signed_headers(secret, body))
    _assert_refusal(resp, 404, "not_found", secret=secret)
    with store.transaction() as conn:
        assert conn.execute("SELECT count(*) AS n FROM inbox").fetchone()["n"] == 0


def test_an_authentic_json_body_is_kept_whatever_its_content_type(client, store, secret):
    """A 4xx goes only to what is not authentic or not JSON (issue 16): a signed JSON event used
    to be refused 415 for its Content-Type, which ServiceTitan does not publish."""
    for n, content_type in enumerate(("text/plain", "application/x-www-form-urlencoded", None,
                                      "application/json; charset=utf-8")):
        body = encode(make_event(70 + n))
        headers = signed_headers(secret, body)
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
        assert _post(client, body, headers).status_code == 200, content_type
    assert len(inbox_rows(store)) == 4
    body = encode(make_event(79))
    forged = {**signed_headers(secret, body), "Content-Type": "text/plain"}
    forged[next(k for k in forged if "signature" in k.lower())] = "AAAA"
    assert _post(client, body, forged).status_code == 401  # not authentic: refused, nothing stored
    assert len(inbox_rows(store)) == 4


def test_only_a_body_that_is_not_json_is_refused_400(client, store, secret):
    for body in (b"not json at all", b"\xff\xfe{", b'{"eventType": "invoice.created", "data": {'):
        _assert_refusal(_post(client, body, signed_headers(secret, body)), 400, "invalid_json", secret=secret)
    assert inbox_rows(store) == []


def test_authentic_bodies_in_no_known_shape_are_kept_as_unrecognised(client, store, secret):
    """Input: signed JSON bodies no envelope parser knows (a list, no eventType, no data, an empty
    eventType). Expected: each 200 ``stored`` under its body hash (ServiceTitan would otherwise
    retry and give up), kept with event type ``unrecognised`` and the reason; the inbox sensor
    turns them into a catch-up. Before: 400 ``missing_event_fields``."""
    bodies = {
        b"[1, 2]": "JSON list",
        encode({"eventId": "x1", "data": {}}): "no known envelope",
        encode({"eventId": "x2", "eventType": "invoice.created"}): "no known envelope",
        encode({"eventId": "x4", "eventType": "", "data": {}}): "eventType is not a short string",
    }
    for body in bodies:
        resp = _post(client, body, signed_headers(secret, body))
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "stored", "eventId": "sha256:" + hashlib.sha256(body).hexdigest()}
    rows = inbox_rows(store)
    assert [(bytes(r["body"]), r["event_type"], r["state"]) for r in rows] == [
        (b, "unrecognised", "pending") for b in bodies]
    for row, reason in zip(rows, bodies.values(), strict=True):
        assert reason in row["detail"]


def test_json_100k_levels_deep_is_kept_as_unrecognised_not_a_500(client, store, secret):
    """Input: a signed body of 100,000 nested arrays (valid JSON). Expected: 200 ``stored``, kept
    as ``unrecognised`` ("nests deeper than the parser's limit"), the receiver healthy. Before:
    500 ``internal_error`` (RecursionError in json.loads), so ServiceTitan redelivered it."""
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        resp = _post(client, deep, signed_headers(secret, deep))
        assert resp.status_code == 200, resp.text
        assert resp.json()["eventId"] == "sha256:" + hashlib.sha256(deep).hexdigest()
    rows = inbox_rows(store)
    assert [r["event_type"] for r in rows] == ["unrecognised"] * 2
    assert all("nests deeper than the parser's limit" in r["detail"] for r in rows)
    assert client.get("/healthz").json() == {"status": "ok"}


def test_deep_json_with_a_bad_signature_is_refused_401(client, store, secret):
    deep = b"[" * 100_000 + b"]" * 100_000
    resp = _post(client, deep, {"Content-Type": "application/json", "X-ServiceTitan-Signature": sign("x" * 40, deep)})
    _assert_refusal(resp, 401, "bad_signature", secret=secret)
    assert inbox_rows(store) == []


def _raw_exchange(port: int, head: bytes, body: bytes) -> tuple[bytes, bool]:
    """Send a request head and part of a body, never finishing it; return the answer and whether
    the server closed the connection afterwards."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        closed = False
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                try:
                    closed = sock.recv(1) == b""
                except TimeoutError:
                    closed = False
                break
        return answer, closed


def test_declared_oversize_body_is_refused_413_without_reading_it(receiver, store, secret):
    signature = sign(secret, b"whatever")
    head = (f"POST /webhooks/servicetitan/{CONNECTION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-ServiceTitan-Signature: {signature}\r\nContent-Length: {5 * 1024 * 1024}\r\n\r\n").encode()
    answer, closed = _raw_exchange(receiver.port, head, b"")  # no body byte is ever sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"too_large"' in answer
    assert closed
    assert inbox_rows(store) == []


def test_streamed_oversize_body_is_refused_413_at_the_limit(receiver, store, secret):
    signature = sign(secret, b"whatever")
    head = (f"POST /webhooks/servicetitan/{CONNECTION} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-ServiceTitan-Signature: {signature}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(17))  # 1 MiB + 64 KiB, never terminated
    answer, closed = _raw_exchange(receiver.port, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"too_large"' in answer
    assert closed
    assert inbox_rows(store) == []


def test_body_of_exactly_one_mebibyte_is_accepted(client, store, secret):
    event = make_event(8)
    event["data"]["notes"] = ""
    padding = (1 << 20) - len(encode(event))
    event["data"]["notes"] = "n" * padding
    body = encode(event)
    assert len(body) == 1 << 20
    assert _post(client, body, signed_headers(secret, body)).status_code == 200
    assert _post(client, body + b" ", signed_headers(secret, body + b" ")).status_code == 413
    assert len(inbox_rows(store)) == 1


def test_paused_connection_is_refused_503_with_retry_after(database_url, store, secret):
    store.set_paused(CONNECTION, True, "ERP month-end close")
    body = encode(make_event(9))
    with ThreadedReceiver(database_url, secret_ttl=0.5) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        resp = _post(client, body, signed_headers(secret, body))
        _assert_refusal(resp, 503, "paused", secret=secret)
        assert int(resp.headers["Retry-After"]) > 0
        assert inbox_rows(store) == []
        store.set_paused(CONNECTION, False)
        time.sleep(0.6)
        assert _post(client, body, signed_headers(secret, body)).status_code == 200  # the redelivery
    assert len(inbox_rows(store)) == 1


def test_signature_header_and_encoding_come_from_the_connection_file(client, store, secret, home):
    (home / "connections" / f"{CONNECTION}.yaml").write_text(
        "erp: acumatica\nservicetitan:\n  tenant: 1170001\n  webhook:\n"
        "    signature_header: X-Hub-Signature\n    signature_encoding: hex\n"
    )
    # The settings cached for this connection before the file existed expire within seconds.
    body = encode(make_event(10))
    deadline = time.monotonic() + 10
    while True:
        resp = _post(client, body, signed_headers(secret, body, header="X-Hub-Signature", encoding="hex"))
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert resp.status_code == 200, resp.text
    other = encode(make_event(11))
    resp = _post(client, other, signed_headers(secret, other))  # the default header is no longer read
    _assert_refusal(resp, 401, "missing_signature", secret=secret)
    assert "X-Hub-Signature" in resp.json()["message"]
    assert len(inbox_rows(store)) == 1


def test_connection_without_a_secret_asks_for_redelivery(database_url, store, vault, home):
    (home / "connections" / "summit.yaml").write_text("erp: vantagepoint\n")
    body = encode(make_event(12))
    with ThreadedReceiver(database_url) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        resp = client.post("/webhooks/servicetitan/summit", content=body,
                           headers=signed_headers("some-key-nobody-configured-0123456789", body))
    assert resp.status_code == 503
    assert resp.json()["error"] == "not_configured"
    assert "st_webhook_secret" in resp.json()["message"]
    assert inbox_rows(store, "summit") == []


def test_hundreds_of_parallel_deliveries_are_each_stored_once(client, receiver, store, secret):
    events = [make_event(n) for n in range(150)]
    bodies = [encode(e) for e in events] * 2  # every event delivered twice, concurrently

    async def deliver_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=receiver.base_url, limits=limits, timeout=30) as aclient:
            return await asyncio.gather(*(
                aclient.post(f"/webhooks/servicetitan/{CONNECTION}", content=b, headers=signed_headers(secret, b))
                for b in bodies))

    answers = asyncio.run(deliver_all())
    assert [a.status_code for a in answers] == [200] * 300
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("stored") == 150 and statuses.count("duplicate") == 150
    rows = inbox_rows(store)
    assert sorted(r["event_id"] for r in rows) == sorted(e["eventId"] for e in events)
    metrics = client.get("/metrics").text
    assert f'fieldledger_webhooks_total{{connection="{CONNECTION}",outcome="stored"}} 150' in metrics
    assert f'fieldledger_webhooks_total{{connection="{CONNECTION}",outcome="duplicate"}} 150' in metrics
    commits = int(next(line.split()[-1] for line in metrics.splitlines()
                        if line.startswith("fieldledger_inbox_commits_total")))
    assert 0 < commits <= 300


def test_rotated_secret_takes_effect_within_seconds(client, store, vault, secret):
    body = encode(make_event(13))
    assert _post(client, body, signed_headers(secret, body)).status_code == 200
    new_secret = "rotated-" + secret[:40]
    vault.set(CONNECTION, "st_webhook_secret", new_secret)
    rotated_at = time.monotonic()
    n = 100
    while True:  # the new key is refused until the cache expires, then accepted
        n += 1
        fresh = encode(make_event(n))
        if _post(client, fresh, signed_headers(new_secret, fresh)).status_code == 200:
            break
        assert time.monotonic() - rotated_at < 8, "the rotated secret was not picked up within seconds"
        time.sleep(0.1)
    old = encode(make_event(999))
    _assert_refusal(_post(client, old, signed_headers(secret, old)), 401, "bad_signature", secret=secret)
    assert len(inbox_rows(store)) == 2


def test_health_and_metrics(client, secret):
    assert client.get("/healthz").json() == {"status": "ok"}
    body = encode(make_event(14))
    _post(client, body, signed_headers(secret, body))
    _post(client, body, {"Content-Type": "application/json"})
    client.post("/webhooks/servicetitan/nobody", content=body, headers=signed_headers(secret, body))
    resp = client.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert f'fieldledger_webhooks_total{{connection="{CONNECTION}",outcome="stored"}} 1' in text
    assert f'fieldledger_webhooks_total{{connection="{CONNECTION}",outcome="missing_signature"}} 1' in text
    assert 'fieldledger_webhooks_total{connection="_unknown",outcome="unknown_connection"} 1' in text
    assert "nobody" not in text
    assert 'fieldledger_webhook_duration_seconds_bucket{le="+Inf"} 3' in text
    assert "fieldledger_webhook_duration_seconds_count 3" in text


def test_health_reports_an_unreachable_store(database_url, secret, master_key):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with ThreadedReceiver(database_url) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        assert client.get("/healthz").status_code == 200
        admin = make_conninfo(database_url, dbname="postgres")  # the URL may name a passfile
        name = conninfo_to_dict(database_url)["dbname"]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            resp = client.get("/healthz")
            assert resp.status_code == 503
            assert resp.json()["status"] == "unavailable"
            body = encode(make_event(15))
            refused = client.post(f"/webhooks/servicetitan/{CONNECTION}", content=body,
                                  headers=signed_headers(secret, body))
            assert refused.status_code == 503  # never acknowledged when it could not be committed
            assert refused.json()["error"] == "store_unavailable"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_no_secret_or_signature_reaches_the_logs(client, secret, caplog):
    caplog.set_level("DEBUG")
    body = encode(make_event(16))
    good = sign(secret, body)
    bad = sign("an-attacker-key-that-is-long-enough-000", body)
    _post(client, body, {"Content-Type": "application/json", "X-ServiceTitan-Signature": good})
    _post(client, body, {"Content-Type": "application/json", "X-ServiceTitan-Signature": bad})
    _post(client, b"{}", {"Content-Type": "application/json", "X-ServiceTitan-Signature": sign(secret, b"{}")})
    assert any("refused" in r.getMessage() for r in caplog.records)  # the refusals were logged
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for value in (secret, good, bad, sign(secret, b"{}")):
        assert value not in text


def test_invalid_connection_file_asks_for_redelivery(client, store, secret, home):
    (home / "connections" / f"{CONNECTION}.yaml").write_text("servicetitan:\n  webhook:\n    signature_encoding: rot13\n")
    body = encode(make_event(17))
    deadline = time.monotonic() + 10
    while True:  # settings cached before the file changed expire within seconds
        resp = _post(client, body, signed_headers(secret, body))
        if resp.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    _assert_refusal(resp, 503, "not_configured", secret=secret)
    assert "Retry-After" in resp.headers


def _token_connection(home, vault, connection: str = CONNECTION) -> str:
    (home / "connections" / f"{connection}.yaml").write_text("servicetitan:\n  webhook:\n    auth: path_token\n")
    token = new_token()
    vault.set(connection, "st_webhook_token", token)
    return token


def test_path_token_mode_authenticates_by_the_url(database_url, store, vault, home):
    """Input: a connection in ``path_token`` mode (an app without an HMAC key): unsigned deliveries
    to /webhooks/servicetitan/cascade/<token>, to the URL without the token, with a wrong token,
    and a token URL for an HMAC-mode connection. Expected: the right token is stored (200); no token
    401 ``missing_token``; a wrong one (also one character short) 401 ``bad_token``; the token URL of
    an HMAC connection 404; the token never appears in an answer or the inbox headers."""
    token = _token_connection(home, vault)
    vault.set("summit", "st_webhook_secret", "s" * 40)
    body = encode(make_event(40))
    plain = {"Content-Type": "application/json"}
    with ThreadedReceiver(database_url) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        ok = client.post(f"/webhooks/servicetitan/{CONNECTION}/{token}", content=body, headers=plain)
        assert ok.status_code == 200 and ok.json()["status"] == "stored", ok.text
        answers = {
            "missing_token": client.post(f"/webhooks/servicetitan/{CONNECTION}", content=body, headers=plain),
            "bad_token": client.post(f"/webhooks/servicetitan/{CONNECTION}/{new_token()}", content=body, headers=plain),
            "short": client.post(f"/webhooks/servicetitan/{CONNECTION}/{token[:-1]}", content=body, headers=plain),
            "hmac_mode": client.post(f"/webhooks/servicetitan/summit/{token}", content=body, headers=plain),
        }
    _assert_refusal(answers["missing_token"], 401, "missing_token", secret=token)
    _assert_refusal(answers["bad_token"], 401, "bad_token", secret=token)
    _assert_refusal(answers["short"], 401, "bad_token", secret=token)
    _assert_refusal(answers["hmac_mode"], 404, "not_found", secret=token)
    [row] = inbox_rows(store)
    assert token not in str(row["headers"])
    assert inbox_rows(store, "summit") == []


def test_path_token_rotation_keeps_the_old_url_valid_until_finished(database_url, store, vault, home):
    old = _token_connection(home, vault)
    with ThreadedReceiver(database_url, secret_ttl=0.05) as served, \
            httpx.Client(base_url=served.base_url, timeout=15) as client:
        def post(token: str, n: int) -> int:
            time.sleep(0.1)  # past the settings cache
            body = encode(make_event(n))
            return client.post(f"/webhooks/servicetitan/{CONNECTION}/{token}", content=body,
                               headers={"Content-Type": "application/json"}).status_code

        new = new_token()
        vault.rotate(CONNECTION, "st_webhook_token", new)
        assert (post(old, 41), post(new, 42)) == (200, 200)  # ServiceTitan may still call the old URL
        vault.finish_rotation(CONNECTION, "st_webhook_token")
        assert (post(old, 43), post(new, 44)) == (401, 200)
    assert len(inbox_rows(store)) == 3


def test_a_weak_or_missing_path_token_is_not_used(database_url, store, vault, home):
    (home / "connections" / f"{CONNECTION}.yaml").write_text("servicetitan:\n  webhook:\n    auth: path_token\n")
    vault.set(CONNECTION, "st_webhook_secret", "k" * 40)  # an HMAC key does not count in token mode
    body = encode(make_event(45))
    with ThreadedReceiver(database_url, secret_ttl=0.05) as served, \
            httpx.Client(base_url=served.base_url, timeout=15) as client:
        missing = client.post(f"/webhooks/servicetitan/{CONNECTION}/anything", content=body,
                              headers=signed_headers("k" * 40, body))
        vault.set(CONNECTION, "st_webhook_token", "short-token")  # 66 bits, typed by hand
        time.sleep(0.1)
        weak = client.post(f"/webhooks/servicetitan/{CONNECTION}/short-token", content=body,
                           headers={"Content-Type": "application/json"})
    for answer, problem in ((missing, "has no webhook path token yet"), (weak, "shorter than 128 bits")):
        _assert_refusal(answer, 503, "not_configured", secret="short-token")
        assert problem in answer.json()["message"] and "fieldledger secrets rotate-webhook" in answer.json()["message"]
    assert inbox_rows(store) == []


def test_two_hmac_keys_are_valid_during_a_rotation(database_url, store, vault, secret):
    new_key = "n" * 48
    body_old, body_new = encode(make_event(46)), encode(make_event(47))
    vault.rotate(CONNECTION, "st_webhook_secret", new_key)
    with ThreadedReceiver(database_url) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        assert _post(client, body_old, signed_headers(secret, body_old)).status_code == 200
        assert _post(client, body_new, signed_headers(new_key, body_new, encoding="hex")).status_code == 200
    vault.finish_rotation(CONNECTION, "st_webhook_secret")
    with ThreadedReceiver(database_url) as served, httpx.Client(base_url=served.base_url, timeout=15) as client:
        late = encode(make_event(48))
        _assert_refusal(_post(client, late, signed_headers(secret, late)), 401, "bad_signature", secret=secret)
    assert len(inbox_rows(store)) == 2
