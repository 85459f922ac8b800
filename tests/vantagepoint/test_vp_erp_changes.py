"""The ERP catch-up against the Vantagepoint simulator over real sockets, with a real sync store:
invoices posted through the real Poster, then one reversed the way an accountant voids a posted
invoice in Vantagepoint (a reversing IN entry under their own batch: posted files cannot be
deleted or changed), found by ``changes_since`` and held for review; a client firm created by
hand is linked to the ServiceTitan customer of that name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from posting.erp_changes import apply_erp_changes, verify_posted_exist
from posting.protocol import Poster
from posting.registry import open_adapter
from resources.vantagepoint import InvoiceLine, TransactionFile
from resources.vault import Vault
from tests.vantagepoint.test_vp_adapter import CUSTOMERS, DAY, connection_for, intake, item, st_invoice, st_party

INVOICES = [st_invoice(7010, 9001, 2101, [item(1, "AC repair", "1", "200.00", "200.00", "40100")]),
            st_invoice(7011, 9001, 2101, [item(1, "Duct cleaning", "1", "100.00", "100.00", "40100"),
                                          item(2, "Filters", "2", "25.00", "50.00", "41000")])]


@pytest.fixture
def conn(vp):
    return connection_for(vp)


@pytest.fixture
def adapter(store, conn, vp):
    vault = Vault(store, keys=[Fernet.generate_key()])
    for name, vault_name in conn.erp.secrets.items():
        vault.set(conn.name, vault_name, vp.info[name])
    opened = open_adapter(conn, vault)
    yield opened
    opened.close()


@pytest.fixture
def client(vp):
    return vp.client()


def post(store, conn, adapter, run_id="r1"):
    return Poster(store, adapter, conn.name, run_id).post(store.claim(conn.name, run_id, limit=1000))


def reverse_invoice(client, key: str, batch: str) -> None:
    """What an accountant does to void a posted invoice: an IN file of their own with the same
    invoice number on the same project and the opposite amounts, posted."""
    _, wbs1, number = key.split(" ", 2)
    rows = [r for r in client.find_posted_invoice(number, wbs1) if r.SubType != "A"]
    tf = TransactionFile("IN", batch, rows[0].Period, description="Void: job cancelled")
    tf.add_invoice(number, wbs1, DAY, [InvoiceLine(r.Account, r.Amount, description="Void") for r in rows])
    client.create_file(tf)
    assert all(result.posted for result in client.post_files([("IN", batch, rows[0].Period)]))


def latest(store, conn, source_type, source_id):
    return store.records(conn.name, source_type=source_type, source_id=source_id)[-1]


def test_reversed_invoice_is_held_for_review(store, conn, adapter, client):
    start = datetime.now(UTC) - timedelta(seconds=1)
    intake(store, conn, CUSTOMERS[:1], invoices=INVOICES)
    assert post(store, conn, adapter).failures == []
    changes, mark = adapter.changes_since(start)
    assert mark.tzinfo is not None and mark > start
    assert not [c for c in changes if c.kind != "party_created"]  # our own postings are no news

    key = store.lookup(conn.name, "invoice", "7011")
    reverse_invoice(client, key, "VOID-7011")
    changes, mark2 = adapter.changes_since(mark)
    assert mark2 >= mark
    assert [(c.kind, c.source_type, c.key) for c in changes] == [("document_voided", "invoice", key)]
    assert "VOID-7011" in changes[0].detail
    assert apply_erp_changes(store, conn.name, changes, run_id="poll-1") == {"flagged": 1}

    held = latest(store, conn, "invoice", "7011")
    assert (held.status, held.error_class, held.target_key) == ("needs_review", "conflict", key)
    assert key in held.error_message and "reversed" in held.error_message and "VOID-7011" in held.error_message
    assert "fieldledger replay --connection" in held.error_message
    trail = store.audit_trail(conn.name, "invoice", "7011")[-1]
    assert (trail["step"], trail["outcome"], trail["run_id"]) == ("failed", "conflict", "poll-1")
    assert trail["detail"]["erp_change"] == "document_voided"
    assert latest(store, conn, "invoice", "7010").status == "posted"

    # a partial credit is not a void; posted entries never disappear from the ledger
    other = store.lookup(conn.name, "invoice", "7010")
    _, wbs1, number = other.split(" ", 2)
    period = client.find_posted_invoice(number, wbs1)[0].Period
    tf = TransactionFile("IN", "CREDIT-7010", period, description="Goodwill credit")
    tf.add_invoice(number, wbs1, DAY, [InvoiceLine("40100", Decimal("-20.00"), description="Goodwill")])
    client.create_file(tf)
    client.post_files([("IN", "CREDIT-7010", period)])
    again = adapter.changes_since(mark2)[0]  # the window includes its mark: the void may come again
    assert {c.key for c in again if c.kind == "document_voided"} <= {key}
    assert verify_posted_exist(store, conn.name, adapter, [DAY]) == []
    assert apply_erp_changes(store, conn.name, changes) == {"unknown_documents": 1}  # idempotent


def test_client_firm_created_by_hand_is_linked(store, conn, adapter, client):
    start = datetime.now(UTC) - timedelta(seconds=1)
    made = client.upsert_firm("Harbor View Dental", client=True).firm
    intake(store, conn, [st_party(9050, "Harbor View Dental")],
           invoices=[st_invoice(7050, 9050, 2101, [item(1, "Service call", "1", "100.00", "100.00", "40100")])])

    changes, _ = adapter.changes_since(start)
    assert [(c.kind, c.source_type, c.key, c.name) for c in changes] == [
        ("party_created", "customer", made.ClientID, "Harbor View Dental")]
    assert apply_erp_changes(store, conn.name, changes, run_id="poll-1") == {"linked": 1}
    assert store.lookup(conn.name, "customer", "9050") == made.ClientID
    record = latest(store, conn, "customer", "9050")
    assert (record.status, record.target_key) == ("posted", made.ClientID)
    assert store.audit_trail(conn.name, "customer", "9050")[-1]["outcome"] == "linked_erp_party"

    summary = post(store, conn, adapter)  # the invoice, against the linked firm; no second firm
    assert summary.failures == [] and summary.counts["posted"] == 1
    assert [f.ClientID for f in client.find_firms_by_name("Harbor View Dental")] == [made.ClientID]
