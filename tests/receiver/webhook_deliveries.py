"""Building signed ServiceTitan webhook deliveries (the contract agreed with the ServiceTitan
simulator) and reading the inbox back, for the receiver tests."""

from __future__ import annotations

import json
import uuid

from receiver.signature import sign

CONNECTION = "cascade"


def make_event(n: int = 0, *, event_id: str | None = "random", event_type: str = "invoice.created") -> dict:
    event = {
        "eventType": event_type,
        "webhookId": 4401,
        "tenantId": 1170001,
        "createdOn": "2026-11-03T14:05:00.1234567Z",
        "data": {"id": 90_000 + n, "referenceNumber": f"INV-{n}", "total": "412.50", "invoiceDate": "2026-11-03T00:00:00Z"},
    }
    if event_id == "random":
        event["eventId"] = str(uuid.uuid4())
    elif event_id is not None:
        event["eventId"] = event_id
    return event


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def signed_headers(secret: str, body: bytes, *, header: str = "X-ServiceTitan-Signature",
                   encoding: str = "base64") -> dict[str, str]:
    return {"Content-Type": "application/json", header: sign(secret, body, encoding)}


def inbox_rows(store, connection: str = CONNECTION) -> list[dict]:
    with store.transaction() as conn:
        return conn.execute("SELECT * FROM inbox WHERE connection = %s ORDER BY id", (connection,)).fetchall()
