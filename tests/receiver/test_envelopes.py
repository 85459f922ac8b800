"""The envelope parsers (receiver/envelopes.py): each known shape gives the same normalised hint,
anything else authentic is unrecognised with a reason, and only non-JSON raises."""

from __future__ import annotations

import hashlib
import json

import pytest

from receiver.envelopes import NotJson, parse

INVOICE = {"id": 31726, "referenceNumber": "INV-31726", "total": "412.50", "invoiceDate": "2026-11-03T00:00:00Z"}


def encode(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def test_the_three_known_shapes_give_the_same_normalised_hint():
    current = {"eventId": "7d3e0f7a-2b43-4a8e-9a37-6a0f0f3c2b11", "eventType": "invoice.created", "webhookId": 1,
               "tenantId": 1000001, "createdOn": "2026-11-03T14:05:00.1234567Z", "data": INVOICE}
    v1 = {**INVOICE, "eventId": "2024-09-30T16:15:56.6122411Z", "webhookId": 1,
          "__eventInfo": {"eventId": "2024-09-30T16:15:56.6122411Z", "webhookId": 1, "webhookType": "InvoiceCreated"},
          "__tenantInfo": {"id": 1000001, "name": "Cascade"}}
    v2 = {"eventId": "e2", "eventType": "InvoiceCreated", "tenantId": 1000001,
          "entity": {"type": "Invoice", "id": 31726, "action": "created"}, "data": INVOICE}
    hints = {name: parse(encode(body)) for name, body in (("current", current), ("v1", v1), ("v2", v2))}
    for shape, hint in hints.items():
        assert (hint.shape, hint.entity, hint.source_id, hint.recognised) == (shape, "invoice", "31726", True)
        assert hint.record["invoiceDate"] == INVOICE["invoiceDate"]
    assert (hints["current"].event_id, hints["current"].event) == (current["eventId"], "invoice.created")
    assert (hints["v1"].event_id, hints["v1"].event) == ("2024-09-30T16:15:56.6122411Z", "InvoiceCreated")
    assert "__eventInfo" not in hints["v1"].record and "eventId" not in hints["v1"].record
    assert (hints["v2"].event_id, hints["v2"].event) == ("e2", "InvoiceCreated")


@pytest.mark.parametrize(("body", "entity", "source_id"), [
    ({"eventType": "InventoryBillCreated", "data": {"id": 5}}, "inventorybill", "5"),  # V2 without an entity object
    ({"eventType": "PaymentUpdated", "entity": {"type": "InventoryBill", "id": "77"}}, "inventorybill", "77"),
    ({"jobNumber": "J1", "__eventInfo": {"webhookType": "JobScheduled", "eventId": "2024-01-01T00:00:00Z"}},
     "job", None),
    ({"eventType": "customer.updated", "data": {"id": 9}}, "customer", "9"),
    ({"eventType": "technician.shift.updated", "data": {"name": "Day shift"}}, "technician", None),
])
def test_entity_and_id_are_normalised(body, entity, source_id):
    hint = parse(encode(body))
    assert (hint.entity, hint.source_id) == (entity, source_id)


def test_event_ids_fall_back_to_the_body_hash_when_unusable():
    for event_id in (None, "", True, {"nested": 1}, "x" * 201, "nul\u0000inside", "line\nbreak"):
        body = encode({"eventId": event_id, "eventType": "invoice.created", "data": {"id": 1}})
        hint = parse(body)
        assert hint.recognised and hint.event_id == "sha256:" + hashlib.sha256(body).hexdigest(), event_id
    assert parse(encode({"eventId": 44438357, "eventType": "invoice.created", "data": {}})).event_id == "44438357"


@pytest.mark.parametrize(("body", "reason"), [
    (b"[1, 2]", "JSON list, not an object"),
    (b'"just a string"', "JSON str, not an object"),
    (encode({"eventId": "x1", "data": {}}), "no known envelope"),
    (encode({"eventId": "x2", "eventType": "invoice.created"}), "no known envelope"),
    (encode({"eventId": "x3", "eventType": "invoice.created", "data": [1]}), "no known envelope"),
    (encode({"eventId": "x4", "eventType": "", "data": {}}), "eventType is not a short string"),
    (encode({"eventId": "x5", "eventType": "invoice.\u0000created", "data": {}}), "eventType is not a short string"),
    (encode({"__eventInfo": {"eventId": "x"}}), "__eventInfo has no webhookType"),
    (b"[" * 100_000 + b"]" * 100_000, "nests deeper than the parser's limit"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper than the parser's limit"),
])
def test_authentic_bodies_in_no_known_shape_are_unrecognised_with_the_reason(body, reason):
    hint = parse(body)
    assert (hint.shape, hint.event, hint.recognised) == ("unrecognised", "unrecognised", False)
    assert reason in hint.reason
    assert hint.event_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert "\u0000" not in hint.reason


@pytest.mark.parametrize("body", [b"not json at all", b"\xff\xfe{", b'{"a":', b""])
def test_only_a_body_that_is_not_json_raises(body):
    with pytest.raises(NotJson, match="JSON"):
        parse(body)
