"""Bursts and hostile senders over real sockets. A burst far beyond the receiver's concurrency limit
(``max_in_flight``): each delivery is either stored (200) or refused with 503 ``busy`` and a
Retry-After, never dropped after an acknowledgement and never stored twice; the refused ones are
stored once when redelivered. Slow senders cannot lock others out, and one event the database
cannot hold as sent fails none of its neighbours (issue 22, break 8)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time

import httpx

from receiver.server import ThreadedReceiver
from receiver.signature import sign
from tests.receiver.webhook_deliveries import CONNECTION, encode, inbox_rows, make_event, signed_headers

LIMIT = 4
BURST = 300


async def _deliver(base_url: str, bodies: list[bytes], secret: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        return await asyncio.gather(*(
            client.post(f"/webhooks/servicetitan/{CONNECTION}", content=b, headers=signed_headers(secret, b))
            for b in bodies))


def test_burst_beyond_the_in_flight_limit_is_refused_503_with_retry_after_and_nothing_lost(database_url, store,
                                                                                           secret):
    """Input: 300 distinct signed events at once against a receiver allowing 4 in flight.
    Expected: 200 ``stored`` or 503 ``busy`` (Retry-After: 10, message "...Redeliver after
    Retry-After."); the inbox holds exactly the acknowledged events, once each; after redelivering the
    refused ones it holds all 300 once; the receiver stays healthy."""
    events = [make_event(n) for n in range(BURST)]
    bodies = [encode(e) for e in events]
    with ThreadedReceiver(database_url, max_in_flight=LIMIT) as served:
        warm = encode(make_event(-1))  # the connection's settings are cached, as on a running receiver
        assert httpx.post(f"{served.base_url}/webhooks/servicetitan/{CONNECTION}", content=warm,
                          headers=signed_headers(secret, warm)).status_code == 200
        answers = asyncio.run(_deliver(served.base_url, bodies, secret))
        stored = {e["eventId"] for e, a in zip(events, answers, strict=True) if a.status_code == 200}
        refused = [(e, b) for e, b, a in zip(events, bodies, answers, strict=True) if a.status_code != 200]
        assert {a.status_code for a in answers} <= {200, 503}
        assert refused, "the burst never exceeded the limit: the test proves nothing"
        for answer in answers:
            if answer.status_code == 503:
                assert answer.json()["error"] == "busy"
                assert "Redeliver after Retry-After" in answer.json()["message"]
                assert answer.headers["Retry-After"] == "10"
            else:
                assert answer.json()["status"] == "stored"
        acknowledged = sorted(r["event_id"] for r in inbox_rows(store) if r["event_id"] in stored)
        assert acknowledged == sorted(stored) and len(inbox_rows(store)) == len(stored) + 1  # each once

        with httpx.Client(base_url=served.base_url, timeout=15) as client:  # ServiceTitan redelivers later
            for _event, body in refused:
                again = client.post(f"/webhooks/servicetitan/{CONNECTION}", content=body,
                                    headers=signed_headers(secret, body))
                assert again.status_code == 200 and again.json()["status"] == "stored", again.text
            assert client.get("/healthz").json() == {"status": "ok"}
            metrics = client.get("/metrics").text
    assert sorted(r["event_id"] for r in inbox_rows(store)) == sorted([e["eventId"] for e in events]
                                                                      + [json.loads(warm)["eventId"]])
    assert f'fieldledger_webhooks_total{{connection="{CONNECTION}",outcome="busy"}} {len(refused)}' in metrics


# --- issue 22, break 8: slow senders, a NUL in one event -------------------------------------

OTHER = "summit"


def _slow_sender(port: int, connection: str, secret: str) -> socket.socket:
    """A sender that announces a 1,000-byte signed body and sends one byte of it (then, as the red
    team's did, nothing for seconds)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = (f"POST /webhooks/servicetitan/{connection} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: 1000\r\n"
            f"X-ServiceTitan-Signature: {sign(secret, b'x' * 1000)}\r\n\r\n{{").encode()
    sock.sendall(head)
    return sock


def _answer(sock: socket.socket) -> tuple[int, str]:
    """(status, error) of a slow sender's answer, read until the server closes the connection
    (a socket timeout here means it kept the connection open)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def test_slow_senders_on_one_connection_do_not_lock_out_deliveries(database_url, store, secret, vault):
    """Input: 50 senders on connection ``cascade`` that send headers and one byte of a 1,000-byte
    body, then nothing; the receiver allows 40 deliveries in flight, 10 per connection, 1 s for a
    body. Expected: while they hang, a signed delivery for ``summit`` is stored (200); each slow
    sender is answered 503 ``busy`` at once or 408 ``body_timeout`` after the deadline, and its
    connection closed; afterwards a delivery for ``cascade`` is stored too. Before: the slow
    senders held every in-flight slot for as long as they liked (no body deadline) and every
    other delivery was answered 503 ``busy``."""
    other_secret = "s" * 48
    vault.set(OTHER, "st_webhook_secret", other_secret)
    with ThreadedReceiver(database_url, max_in_flight=40, max_in_flight_per_connection=10,
                          body_timeout=1.0) as served:
        url = f"{served.base_url}/webhooks/servicetitan"
        for connection, key in ((CONNECTION, secret), (OTHER, other_secret)):  # settings cached, as when running
            warm = encode(make_event(-1))
            assert httpx.post(f"{url}/{connection}", content=warm, headers=signed_headers(key, warm)).status_code == 200
        slow = [_slow_sender(served.port, CONNECTION, secret) for _ in range(50)]
        try:
            # every slow sender is either holding a slot or was refused: the lock-out is in place
            deadline = time.monotonic() + 30
            while served.metrics.in_flight + served.metrics.count(CONNECTION, "busy") < len(slow):
                assert time.monotonic() < deadline, "the slow senders never reached the receiver"
                time.sleep(0.02)
            legit = encode(make_event(1))
            answer = httpx.post(f"{url}/{OTHER}", content=legit, headers=signed_headers(other_secret, legit),
                                timeout=15)
            assert answer.status_code == 200 and answer.json()["status"] == "stored", answer.text
            outcomes = [_answer(sock) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
        assert set(outcomes) <= {(503, "busy"), (408, "body_timeout")}  # each connection closed
        assert outcomes.count((408, "body_timeout")) == 10  # the per-connection share, cut at 1 s
        after = encode(make_event(2))
        assert httpx.post(f"{url}/{CONNECTION}", content=after, headers=signed_headers(secret, after),
                          timeout=15).status_code == 200
    assert len(inbox_rows(store, OTHER)) == 2 and len(inbox_rows(store)) == 2


def test_an_event_with_nul_characters_is_stored_and_fails_none_of_its_neighbours(database_url, store, secret):
    """Input: 200 signed events at once; three of them carry a NUL character (``\\u0000``) in the
    eventId, the eventType and the data (PostgreSQL text and jsonb cannot hold one). Expected: all
    200 answered 200 ``stored``, each stored once with its raw bytes; the NUL-bearing ids fall back
    to the body hash, the NUL-bearing type is kept as ``unrecognised`` (the sensor asks for a
    catch-up). Before: the bad row failed the whole group commit: 96-129 neighbours were answered
    503 and the bad event was redelivered for ever."""
    events = [make_event(n) for n in range(200)]
    events[50]["eventId"] = "evt\u0000050"
    events[100]["eventType"] = "invoice\u0000created"
    events[150]["data"]["referenceNumber"] = "INV\u0000150"
    bodies = [encode(e) for e in events]
    with ThreadedReceiver(database_url, max_in_flight_per_connection=len(bodies)) as served:  # all at once
        answers = asyncio.run(_deliver(served.base_url, bodies, secret))
    assert [a.status_code for a in answers] == [200] * 200, [a.text for a in answers if a.status_code != 200][:3]
    assert {a.json()["status"] for a in answers} == {"stored"}
    rows = {r["event_id"]: r for r in inbox_rows(store)}
    assert len(rows) == 200
    for n in (50, 100):
        assert rows[answers[n].json()["eventId"]]["event_id"] == "sha256:" + hashlib.sha256(bodies[n]).hexdigest()
    assert rows[answers[100].json()["eventId"]]["event_type"] == "unrecognised"
    assert bytes(rows[events[150]["eventId"]]["body"]) == bodies[150]
