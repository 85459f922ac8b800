"""Simulators with a state folder keep what clients did across a restart, over real sockets:
documents and numbering sequences in both ERPs, live-mode changes, webhooks and the clock in
ServiceTitan; a snapshot they cannot use is refused with the way out."""

from __future__ import annotations

import pickle
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from resources.acumatica import AcumaticaClient
from resources.vantagepoint import InvoiceLine, TransactionFile, VantagepointClient
from simulators.snapshots import FORMAT, SnapshotError, snapshot_path
from tests.acumatica.documents import invoice
from tests.demo.conftest import st_record
from tests.vantagepoint.conftest import FAST_RETRY
from tests.vantagepoint.test_vp_adapter import DAY, DEN_HVC

KINDS = {"invoice": "invoices", "payment": "payments", "customer": "customers", "vendor": "vendors",
         "inventorybill": "inventory-bills"}


def acumatica_client(info: dict) -> AcumaticaClient:
    return AcumaticaClient(info["base_url"], info["tenant"], info["client_id"], info["client_secret"],
                           info["username"], info["password"], poll_interval=0.05, seat_retry_seconds=0.2)


def vp_client(info: dict) -> VantagepointClient:
    creds = {k: info[k] for k in ("base_url", "database", "client_id", "client_secret", "username", "password")}
    return VantagepointClient(**creds, retry=FAST_RETRY, rate_per_second=None)


def post_acumatica_invoice(client: AcumaticaClient, ref: str, amount: str) -> dict:
    saved = client.put("Invoice", invoice(ref=ref, amount=amount))
    client.release("Invoice", saved["id"])
    return saved


def test_acumatica_keeps_documents_and_numbering(start_sims, tmp_path):
    sims = start_sims("acumatica")
    client = acumatica_client(sims.info["acumatica"])
    first = post_acumatica_invoice(client, "ST-9001", "120.00")
    second = client.put("Invoice", invoice(ref="ST-9002", amount="80.50"))  # left unreleased
    client.close()
    sims.stop()
    assert snapshot_path(tmp_path / "sims", "acumatica").exists()

    sims = start_sims("acumatica")
    client = acumatica_client(sims.info["acumatica"])  # sessions are not kept: a new sign-in
    found = client.find_by_external_ref("Invoice", ["ST-9001", "ST-9002"])
    assert [r["ReferenceNbr"] for r in found["ST-9001"]] == [first["ReferenceNbr"]]
    assert [r["ReferenceNbr"] for r in found["ST-9002"]] == [second["ReferenceNbr"]]
    assert found["ST-9001"][0]["Status"] == "Open" and found["ST-9001"][0]["Amount"] == Decimal("120.00")
    assert found["ST-9002"][0]["Status"] == "Balanced"
    third = post_acumatica_invoice(client, "ST-9003", "10.00")
    assert int(third["ReferenceNbr"]) == int(second["ReferenceNbr"]) + 1  # numbering continues
    client.close()


def test_vantagepoint_keeps_firms_posted_files_and_numbering(start_sims):
    sims = start_sims("vantagepoint")
    client = vp_client(sims.info["vantagepoint"])
    firm = client.upsert_firm("Persistent Plumbing Supply", vendor=True).firm
    period = client.period_for(DAY)
    tf = TransactionFile("IN", "PERSIST-1", period, description="before the restart")
    tf.add_invoice("P-7001", DEN_HVC, DAY, [InvoiceLine("40100", Decimal("250.00"), description="AC repair")])
    client.create_file(tf)
    assert all(r.posted for r in client.post_files([("IN", "PERSIST-1", period)]))
    client.close()
    sims.stop()

    sims = start_sims("vantagepoint")
    client = vp_client(sims.info["vantagepoint"])
    assert client.find_firms_by_name("Persistent Plumbing Supply")[0].Vendor == firm.Vendor
    rows = client.find_posted_invoice("P-7001", DEN_HVC)
    assert sum((r.Amount for r in rows if r.SubType != "A"), Decimal(0)) == Decimal("-250.00")  # revenue: credit
    assert client.find_batch("IN", "PERSIST-1").posted
    later = client.upsert_firm("Resumed Rental Co", vendor=True).firm
    assert int(later.Vendor) == int(firm.Vendor) + 1  # vendor numbering continues
    client.close()


def test_vantagepoint_ledger_survives_in_chunks(start_sims):
    """More ledger rows than one snapshot chunk (512), posted across two snapshots."""
    sims = start_sims("vantagepoint")
    client = vp_client(sims.info["vantagepoint"])
    period = client.period_for(DAY)
    for batch, numbers in (("BULK-1", range(1, 301)), ("BULK-2", range(301, 311))):
        tf = TransactionFile("IN", batch, period)
        for n in numbers:
            tf.add_invoice(f"B-{n:04d}", DEN_HVC, DAY, [InvoiceLine("40100", Decimal(n), description="Service")])
        client.create_file(tf)
        assert all(r.posted for r in client.post_files([("IN", batch, period)]))
    before = sorted((r.Batch, r.Invoice, r.Amount, r.SubType) for r in client.ledger("IN"))
    assert len(before) == 620
    client.close()
    sims.stop()

    sims = start_sims("vantagepoint")
    client = vp_client(sims.info["vantagepoint"])
    assert sorted((r.Batch, r.Invoice, r.Amount, r.SubType) for r in client.ledger("IN")) == before
    assert len(client.find_posted_invoice("B-0305", DEN_HVC)) == 2  # the index is rebuilt too
    client.close()


def test_servicetitan_keeps_live_changes_webhooks_and_clock(start_sims, tmp_path):
    sims = start_sims("servicetitan")
    st = sims.info["servicetitan"]["base_url"]
    tenant = sims.info["servicetitan"]["tenant"]
    unchanged = st_record(st, tenant, "invoices", 1_030_000_001).json()["record"]  # generated, never touched
    # a receiver that is down: deliveries stay queued (retried), so they must survive the restart
    reg = httpx.post(f"{st}/_sim/webhooks", json={"tenant": tenant, "url": "http://127.0.0.1:9/down"}).json()
    events = httpx.post(f"{st}/_sim/live/tick", json={"count": 4, "tenant": tenant}).json()["events"]
    events += httpx.post(f"{st}/_sim/live/tick", json={"count": 2, "tenant": tenant,
                                                       "eventTypes": ["invoice.created"]}).json()["events"]
    httpx.post(f"{st}/_sim/clock", json={"advance_seconds": 7200}).raise_for_status()
    before = {(e["eventType"], e["id"]): st_record(st, tenant, KINDS[e["eventType"].split(".")[0]], e["id"]).json()
              for e in events}
    clock_before = datetime.fromisoformat(httpx.get(f"{st}/_sim/clock").json()["now"])
    pending = httpx.get(f"{st}/_sim/stats").json()["webhooks"]["pending"]
    assert pending >= 1
    sims.stop()

    sims = start_sims("servicetitan")
    st = sims.info["servicetitan"]["base_url"]
    assert st_record(st, tenant, "invoices", 1_030_000_001).json()["record"] == unchanged
    for (event_type, record_id), record in before.items():
        assert st_record(st, tenant, KINDS[event_type.split(".")[0]], record_id).json() == record
    assert datetime.fromisoformat(httpx.get(f"{st}/_sim/clock").json()["now"]) >= clock_before  # advance kept
    assert [r["id"] for r in httpx.get(f"{st}/_sim/webhooks").json()] == [reg["id"]]
    stats = httpx.get(f"{st}/_sim/stats").json()
    assert stats["webhooks"]["pending"] >= pending and stats["live_changes"] == 6
    created = httpx.post(f"{st}/_sim/live/tick", json={"count": 1, "tenant": tenant,
                                                       "eventTypes": ["invoice.created"]}).json()["events"]
    new_invoice = next(e["id"] for e in created if e["eventType"] == "invoice.created")
    last_before = max(rid for (et, rid) in before if et == "invoice.created")
    assert new_invoice == last_before + 1  # a clean stop: the sequence continues without a gap


def test_a_snapshot_of_another_format_or_seed_is_refused(start_sims, tmp_path):
    sims = start_sims("acumatica")
    sims.stop()
    with pytest.raises(SnapshotError, match=r"other settings \(seed differ.*demo --fresh"):
        start_sims("acumatica", seed=8)
    path = snapshot_path(tmp_path / "sims", "acumatica")
    with open(path, "wb") as handle:
        pickle.dump({"format": FORMAT, "version": 0, "simulator": "acumatica"}, handle)
    with pytest.raises(SnapshotError, match=r"format version 0.*reads version 1.*demo --fresh"):
        start_sims("acumatica")
