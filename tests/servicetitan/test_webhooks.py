"""Live changes arrive as webhooks in the shape and with the authentication each registration
asks for; retries, duplicates and deletions behave as documented."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import date, timedelta

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from simulators.runtime import ServedApp
from tests.servicetitan.openapi import assert_valid

T = 1000001


class Receiver:
    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.received: list[tuple[dict, bytes]] = []
        self.calls = 0
        self.lock = threading.Lock()

        async def hook(request):
            body = await request.body()
            with self.lock:
                self.calls += 1
                if self.calls <= self.fail_first:
                    return Response(status_code=500)
                self.received.append((dict(request.headers), body))
            return Response(status_code=200)

        self.served = ServedApp(Starlette(routes=[Route("/hook", hook, methods=["POST"])])).start()
        self.url = f"{self.served.base_url}/hook"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} deliveries, got {len(self.received)}")


def _settled(ctl, timeout: float = 10.0) -> dict:
    """The hub's counts once no delivery is queued, held or on the wire."""
    deadline = time.monotonic() + timeout
    while True:
        counts = ctl.get("/_sim/webhooks/deliveries").json()
        if counts["pending"] == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def _verify(secret: str, body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


def test_signed_envelopes_verify_and_tampered_ones_do_not(st_factory):
    running = st_factory()
    receiver = Receiver()
    with running.control() as ctl:
        reg = ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url}).json()
        assert reg["secret"] == running.creds()["webhook_secret"]  # default: the tenant's secret
        events = ctl.post("/_sim/live/tick", json={"count": 6, "tenant": T}).json()["events"]
    got = receiver.wait_for(len(events))
    for headers, body in got:
        envelope = json.loads(body)
        assert set(envelope) == {"eventId", "eventType", "webhookId", "tenantId", "createdOn", "data"}
        assert envelope["tenantId"] == T and envelope["webhookId"] == reg["id"]
        assert envelope["createdOn"].endswith("Z")
        assert headers["content-type"] == "application/json"
        assert _verify(reg["secret"], body, headers["x-servicetitan-signature"])
        tampered = body.replace(b'"tenantId":1000001', b'"tenantId":1000002')
        assert tampered != body and not _verify(reg["secret"], tampered, headers["x-servicetitan-signature"])
    assert [json.loads(b)["eventType"] for _, b in got] == [e["eventType"] for e in events]
    receiver.served.stop()


def test_webhook_data_is_the_api_record(st_factory):
    running = st_factory()
    receiver = Receiver()
    schemas = {"invoice": ("accounting", "Accounting.V2.InvoiceResponse"),
               "payment": ("accounting", "Accounting.V2.DetailedPaymentResponse"),
               "inventorybill": ("accounting", "Accounting.V2.InventoryBillResponse"),
               "customer": ("crm", "Crm.V2.Customers.CustomerResponse"),
               "vendor": ("inventory", "Inventory.V2.VendorResponse")}
    with running.control() as ctl:
        ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url}).raise_for_status()
        kinds = ["invoice.created", "payment.created", "inventorybill.created", "customer.updated", "vendor.created"]
        events = ctl.post("/_sim/live/tick", json={"count": 5, "tenant": T, "eventTypes": kinds}).json()["events"]
    got = receiver.wait_for(len(events))
    client = running.client()
    for _, body in got:
        envelope = json.loads(body)
        spec, schema = schemas[envelope["eventType"].split(".")[0]]
        assert_valid(spec, schema, envelope["data"])
        if envelope["eventType"].startswith("invoice"):
            [listed] = [i for i in client.invoices(ids=[envelope["data"]["id"]])]
            assert listed.model_dump(by_alias=False)["total"] == listed.total
            assert str(listed.total) == envelope["data"]["total"]
    receiver.served.stop()


def test_failed_deliveries_are_retried(st_factory):
    running = st_factory(time_factor=100.0)  # 10 s, 30 s ... become 0.1 s, 0.3 s ...
    receiver = Receiver(fail_first=2)
    with running.control() as ctl:
        ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url, "secret": "s" * 40}).raise_for_status()
        ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T, "eventTypes": ["vendor.created"]})
        got = receiver.wait_for(1)
        counts = _settled(ctl)
    assert len(got) == 1
    assert counts["failed"] == 2 and counts["retried"] == 2 and counts["sent"] == 1
    receiver.served.stop()


def test_duplicate_fault_sends_the_same_event_twice_and_hex_encoding(st_factory):
    running = st_factory(profile="webhook_duplicate_rate=1.0", webhook_signature_encoding="hex",
                         webhook_signature_header="X-Sim-Signature")
    receiver = Receiver()
    with running.control() as ctl:
        reg = ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url}).json()
        ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T, "eventTypes": ["customer.updated"]})
    got = receiver.wait_for(2)
    assert json.loads(got[0][1])["eventId"] == json.loads(got[1][1])["eventId"]
    headers, body = got[0]
    assert headers["x-sim-signature"] == hmac.new(reg["secret"].encode(), body, hashlib.sha256).hexdigest()
    receiver.served.stop()


def test_registration_rules_and_unregister(st):
    with st.control() as ctl:
        assert ctl.post("/_sim/webhooks", json={"tenant": T, "url": "http://x", "secret": "short"}).status_code == 400
        assert ctl.post("/_sim/webhooks", json={"tenant": T, "url": "http://x",
                                                "events": ["job.created"]}).status_code == 400
        reg = ctl.post("/_sim/webhooks", json={"tenant": T, "url": "http://127.0.0.1:9/x"}).json()
        assert any(r["id"] == reg["id"] for r in ctl.get("/_sim/webhooks").json())
        assert ctl.delete(f"/_sim/webhooks/{reg['id']}").status_code == 204
        assert all(r["id"] != reg["id"] for r in ctl.get("/_sim/webhooks").json())


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def test_v1_shape_puts_the_record_at_the_top_with_event_info(st_factory):
    running = st_factory(webhook_shape="cascade-hvac:v1")
    receiver = Receiver()
    with running.control() as ctl:
        reg = ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url}).json()
        assert reg["shape"] == "v1" and reg["signing"] == "hmac"
        events = ctl.post("/_sim/live/tick", json={"count": 4, "tenant": T,
                                                   "eventTypes": ["invoice.created", "payment.created"]}).json()
    got = receiver.wait_for(len(events["events"]))
    stamps = []
    for headers, body in got:
        payload = json.loads(body)
        info = payload["__eventInfo"]
        assert info["webhookId"] == payload["webhookId"] == reg["id"]
        assert STAMP.match(info["eventId"]) and payload["eventId"] == info["eventId"]
        assert info["webhookType"] in ("InvoiceCreated", "PaymentCreated", "InvoiceUpdated", "CustomerCreated")
        assert payload["__tenantInfo"] == {"id": T, "name": "cascade-hvac"}
        assert isinstance(payload["id"], int) and "data" not in payload and "eventType" not in payload
        assert _verify(reg["secret"], body, headers["x-servicetitan-signature"])
        stamps.append(info["eventId"])
    assert len(set(stamps)) == len(stamps)  # the instant is the V1 event id: never shared
    assert [(json.loads(b)["__eventInfo"]["webhookType"], json.loads(b)["id"]) for _, b in got] == [
        ("".join(p.capitalize() for p in e["eventType"].split(".")), e["id"]) for e in events["events"]]
    receiver.served.stop()


def test_v2_guess_and_unsigned_deliveries_per_tenant(st_factory):
    running = st_factory(webhook_shape="v2", webhook_signing="cascade-hvac:none,summit-mechanical:hmac")
    assert running.creds()["webhook"]["signing"] == "none"
    assert running.creds("summit-mechanical")["webhook"]["signing"] == "hmac"
    receiver = Receiver()
    with running.control() as ctl:
        ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url + "?token=in-the-url"}).raise_for_status()
        [event] = ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T,
                                                    "eventTypes": ["inventorybill.created"]}).json()["events"]
    [(headers, body)] = receiver.wait_for(1)
    payload = json.loads(body)
    assert payload["eventType"] == "InventoryBillCreated" and payload["tenantId"] == T
    assert payload["entity"] == {"type": "InventoryBill", "id": event["id"], "action": "created"}
    assert payload["data"]["id"] == event["id"]
    assert not any("signature" in name for name in headers)  # an app without an HMAC key signs nothing
    receiver.served.stop()


def test_lying_dates_and_a_rotated_key(st_factory):
    running = st_factory()
    receiver = Receiver()
    with running.control() as ctl:
        reg = ctl.post("/_sim/webhooks", json={"tenant": T, "url": receiver.url, "date_shift_days": -3,
                                               "encoding": "hex", "header": "X-Hook-Sig"}).json()
        [event] = ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T,
                                                    "eventTypes": ["vendor.created"]}).json()["events"]
        receiver.wait_for(1)
        rotated = "r" * 48
        assert ctl.patch(f"/_sim/webhooks/{reg['id']}", json={"secret": rotated}).status_code == 200
        assert ctl.patch(f"/_sim/webhooks/{reg['id']}", json={"shape": "v9"}).status_code == 400
        events = ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T,
                                                   "eventTypes": ["invoice.created"]}).json()["events"]
        [invoice_id] = [e["id"] for e in events if e["eventType"] == "invoice.created"]
        real = ctl.get(f"/_sim/records/{T}/invoices/{invoice_id}").json()["record"]
    got = receiver.wait_for(1 + len(events))
    headers, body = next((h, b) for h, b in got if json.loads(b)["data"]["id"] == invoice_id
                         and json.loads(b)["eventType"] == "invoice.created")
    assert headers["x-hook-sig"] == hmac.new(rotated.encode(), body, hashlib.sha256).hexdigest()
    lied = json.loads(body)["data"]
    assert date.fromisoformat(lied["invoiceDate"][:10]) == date.fromisoformat(real["invoiceDate"][:10]) - timedelta(3)
    assert lied["total"] == real["total"]
    receiver.served.stop()


@pytest.mark.parametrize("option", [{"webhook_shape": "v3"}, {"webhook_signing": "cascade-hvac:maybe"},
                                    {"webhook_signature_encoding": "base32"}])
def test_a_bad_webhook_option_fails_at_start(option):
    from simulators.runtime import SimOptions
    from simulators.servicetitan import ServiceTitanSim

    with pytest.raises(ValueError, match="webhook"):
        ServiceTitanSim(SimOptions(seed=3, options={"days": 2, "customers": 20, "invoices_per_day": 1, **option}))
