"""The ERP catch-up against the Acumatica simulator over real sockets, with a real sync store:
documents posted through the real Poster, then voided or deleted the way a person would (the
VoidPayment action, Void on the invoice screen, a document gone), found by ``changes_since`` and
the existence check, and held for review; a customer created by hand is linked, not duplicated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from posting.erp_changes import apply_erp_changes, verify_posted_exist
from posting.registry import open_adapter
from tests.acumatica.test_adapter_acumatica import (
    CUSTOMERS,
    DAY,
    VENDORS,
    by_ref,
    connection_for,
    intake,
    item,
    post,
    st_bill,
    st_customer,
    st_invoice,
    st_payment,
    vault_for,
)

INVOICES = [st_invoice(7001, 9001, 1101, [item(1, "AC repair", "1", "200.00", "200.00", "40100")]),
            st_invoice(7004, 9001, 1101, [item(1, "Duct cleaning", "1", "100.00", "100.00", "40100")])]
PAYMENTS = [st_payment(8001, 9001, "Check", "200.00", [(7001, "200.00")])]
BILLS = [st_bill(6001, 5101, 1101, [("Evaporator coil", "2", "125.00")]),
         st_bill(6002, 5104, 1105, [("PEX fittings", "4", "20.00")])]


@pytest.fixture
def sim(make_sim):
    return make_sim(tier="trial", release_seconds=0)


@pytest.fixture
def conn(sim):
    return connection_for(sim)


@pytest.fixture
def adapter(store, conn, sim):
    opened = open_adapter(conn, vault_for(store, conn, sim))
    yield opened
    opened.close()


def person(sim, action: str, entity: str, doc_type: str, number: str) -> None:
    """What an accountant does on the document's screen (simulator control endpoint)."""
    httpx.post(f"{sim.base_url}/_sim/{action}", json={"entity": entity, "keys": [doc_type, number]},
               timeout=10).raise_for_status()


def latest(store, conn, source_type, source_id):
    return store.records(conn.name, source_type=source_type, source_id=source_id)[-1]


def test_voided_and_deleted_documents_are_held_for_review(store, conn, adapter, acu, sim):
    start = datetime.now(UTC) - timedelta(seconds=1)
    intake(store, conn, CUSTOMERS[:1], VENDORS[:2], INVOICES, PAYMENTS, BILLS)
    assert post(store, conn, adapter).failures == []
    changes, mark = adapter.changes_since(start)
    assert mark.tzinfo is not None and mark > start
    assert not [c for c in changes if c.kind != "party_created"]  # our own postings are no news
    assert apply_erp_changes(store, conn.name, changes).get("flagged", 0) == 0

    keys = {sid: store.lookup(conn.name, t, sid) for t, sid in (("payment", "8001"), ("invoice", "7004"),
                                                                 ("bill", "6002"), ("invoice", "7001"))}
    payment = by_ref(acu, "Payment", "PMT-8001")
    acu.invoke("Payment", "VoidPayment", payment["id"])  # the API action a person's void also runs
    person(sim, "void", "Invoice", "Invoice", keys["7004"].split()[1])
    person(sim, "delete", "Bill", "Bill", keys["6002"].split()[1])

    changes, mark2 = adapter.changes_since(mark)
    assert mark2 > mark
    voided = {(c.source_type, c.key) for c in changes if c.kind == "document_voided"}
    assert voided == {("payment", keys["8001"]), ("invoice", keys["7004"])}
    assert not [c for c in changes if c.kind == "document_deleted"]  # no tombstones in the poll
    assert apply_erp_changes(store, conn.name, changes, run_id="poll-1") == {"flagged": 2}

    held = latest(store, conn, "payment", "8001")
    assert (held.status, held.error_class, held.target_key) == ("needs_review", "conflict", keys["8001"])
    assert keys["8001"] in held.error_message and "voided" in held.error_message
    assert "fieldledger replay --connection cascade-hvac --record 8001" in held.error_message
    trail = store.audit_trail(conn.name, "payment", "8001")[-1]
    assert (trail["step"], trail["outcome"], trail["run_id"]) == ("failed", "conflict", "poll-1")
    assert trail["detail"]["erp_change"] == "document_voided" and trail["detail"]["target_key"] == keys["8001"]
    assert latest(store, conn, "invoice", "7004").status == "needs_review"
    assert latest(store, conn, "invoice", "7001").status == "posted"  # its payment was voided, not it

    # the deleted bill: found by the existence check, not by the poll
    deleted = verify_posted_exist(store, conn.name, adapter, [DAY])
    assert [(c.kind, c.source_type, c.key) for c in deleted] == [("document_deleted", "bill", keys["6002"])]
    assert "B-6002" in deleted[0].detail
    assert apply_erp_changes(store, conn.name, deleted, run_id="check-1") == {"flagged": 1}
    bill = latest(store, conn, "bill", "6002")
    assert bill.status == "needs_review" and "no longer exists" in bill.error_message
    assert keys["6002"] in bill.error_message
    assert store.audit_trail(conn.name, "bill", "6002")[-1]["detail"]["erp_change"] == "document_deleted"

    # applying again changes nothing; the next check finds nothing new
    assert apply_erp_changes(store, conn.name, changes + deleted) == {"unknown_documents": 3}
    assert verify_posted_exist(store, conn.name, adapter, [DAY]) == []

    # replaying as the message says: the voided invoice is recorded, not posted again; the deleted
    # bill is posted again
    for source_id in ("7004", "6002"):
        store.requeue(conn.name, source_id=source_id)
    summary = post(store, conn, adapter, "replay")
    assert (summary.counts["found_existing"], summary.counts["posted"]) == (1, 1)
    assert by_ref(acu, "Invoice", "INV-7004")["Status"] == "Voided"
    assert by_ref(acu, "Bill", "B-6002")["Status"] == "Open"


def test_customer_created_by_hand_is_linked_not_duplicated(store, sim, acu):
    conn = connection_for(sim)
    derived = conn.mapping.customers.model_copy(update={"key": "derived"})  # no name matching at posting
    conn = conn.model_copy(update={"mapping": conn.mapping.model_copy(update={"customers": derived})})
    adapter = open_adapter(conn, vault_for(store, conn, sim))
    try:
        start = datetime.now(UTC) - timedelta(seconds=1)
        made = acu.put("Customer", {"CustomerName": "Harbor View Dental"})
        for _ in range(2):
            acu.put("Customer", {"CustomerName": "Twin Peaks Bakery"})
        intake(store, conn, [st_customer(9050, "Harbor View Dental"), st_customer(9051, "Harbor View dental"),
                             st_customer(9060, "Twin Peaks Bakery")],
               invoices=[st_invoice(7050, 9050, 1101, [item(1, "Service call", "1", "100.00", "100.00", "40100")])])

        changes, _ = adapter.changes_since(start)
        created = {(c.source_type, c.name): c.key for c in changes if c.kind == "party_created"}
        assert created[("customer", "Harbor View Dental")] == made["CustomerID"]
        counts = apply_erp_changes(store, conn.name, changes, run_id="poll-1")
        assert counts == {"linked": 1, "ambiguous_parties": 2}  # the twin name was created twice: not guessed

        assert store.lookup(conn.name, "customer", "9050") == made["CustomerID"]
        assert store.lookup(conn.name, "customer", "9051") is None  # names match exactly or not at all
        assert store.lookup(conn.name, "customer", "9060") is None
        record = latest(store, conn, "customer", "9050")
        assert (record.status, record.target_key) == ("posted", made["CustomerID"])
        trail = store.audit_trail(conn.name, "customer", "9050")[-1]
        assert (trail["outcome"], trail["detail"]["erp_key"], trail["run_id"]) == (
            "linked_erp_party", made["CustomerID"], "poll-1")

        summary = post(store, conn, adapter)
        assert summary.failures == []
        assert by_ref(acu, "Invoice", "INV-7050")["Customer"] == made["CustomerID"]
        same_name = acu.list("Customer", filter="CustomerName eq 'Harbor View Dental'")  # case-insensitive
        assert [c["CustomerID"] for c in same_name if c["CustomerName"] == "Harbor View Dental"] == [
            made["CustomerID"]]
        assert apply_erp_changes(store, conn.name, changes).get("linked", 0) == 0  # already linked
    finally:
        adapter.close()
