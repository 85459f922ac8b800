"""A burst far beyond the receiver's concurrency limit (``max_in_flight``) over real sockets: each
delivery is either stored (200) or refused with 503 ``busy`` and a Retry-After, never dropped after
an acknowledgement and never stored twice; the refused ones are stored once when redelivered."""

from __future__ import annotations

import asyncio
import json

import httpx

from receiver.server import ThreadedReceiver
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
