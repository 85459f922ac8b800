"""Each branch of the posting protocol, on a real sync store and an in-memory ERP."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from mappings.connection import load_connection_file
from mappings.intake import register, remap_quarantined
from posting.protocol import Poster
from resources.http import AuthError, TransientError, ValidationError
from tests.mappings.test_rules import invoice
from tests.posting.memory_adapter import MemoryErp

DEMO = Path(__file__).resolve().parents[2] / "mappings" / "connections"
DAY = date(2026, 11, 3)


@pytest.fixture
def conn():
    return load_connection_file(DEMO / "cascade-hvac.yaml")


def customer(cid=77, name="Ana Núñez"):
    return {"id": cid, "name": name, "active": True, "address": {"street": "1 Pine", "city": "Seattle"}}


def payment(pid=801, inv_id=5001, amount="324.60"):
    return {"id": pid, "referenceNumber": f"PMT-{pid}", "date": "2026-11-03T00:00:00Z", "total": amount,
            "type": "Check", "customer": {"id": 77, "name": "Ana"},
            "appliedTo": [{"appliedTo": inv_id, "appliedAmount": amount, "appliedToReferenceNumber": "INV-5001"}]}


def run_once(store, conn, erp, run_id="r1"):
    records = store.claim(conn.name, "w", limit=1000)
    return Poster(store, erp, conn.name, run_id).post(records)


def intake(store, conn, customers=(), invoices=(), payments=()):
    summary = register(store, conn, "customer", customers, DAY)
    register(store, conn, "invoice", invoices, DAY, summary=summary)
    return register(store, conn, "payment", payments, DAY, summary=summary)


def test_creates_parties_then_invoices_then_payments(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()], [payment()])
    summary = run_once(store, conn, erp)
    assert summary.counts["posted"] == 3 and not summary.failures
    assert erp.calls.index("create_party") < erp.calls.index("create_document")
    assert store.lookup(conn.name, "customer", "77") == "ST77"
    assert store.lookup(conn.name, "invoice", "5001") == "D0001"
    assert store.lookup(conn.name, "payment", "801") == "D0002"
    steps = [a["step"] for a in store.audit_trail(conn.name, "invoice", "5001")]
    assert steps == ["extracted", "mapped", "posted"]


def test_same_content_again_is_not_posted_twice(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()])
    run_once(store, conn, erp)
    again = intake(store, conn, [customer()], [invoice()])
    assert again.counts["unchanged"] == 2 and again.counts["new"] == 0
    assert store.claim(conn.name, "w") == []
    assert len(erp.documents) == 1


def test_crash_after_erp_answer_is_found_not_reposted(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()])
    run_once(store, conn, erp)
    # simulate the lost write: the ERP has the invoice, our store forgot it
    with store.transaction() as c:
        c.execute("UPDATE records SET status = 'pending', target_key = NULL WHERE source_type = 'invoice'")
        c.execute("DELETE FROM id_map WHERE entity = 'invoice'")
    summary = run_once(store, conn, erp)
    assert summary.counts["found_existing"] == 1 and len(erp.documents) == 1
    assert store.lookup(conn.name, "invoice", "5001") == "D0001"


def test_post_is_recorded_only_after_the_erp_confirms_it(store, conn):
    """A release that fails in the background (Acumatica's 202 + poll) fails the record, not
    'posted'; the payment on it waits; the next attempt completes the unreleased document."""
    erp = MemoryErp()
    erp.fail_release["INV-5001"] = TransientError("release of Invoice INV 000001: 500", system="erp", status=500)
    intake(store, conn, [customer()], [invoice()], [payment()])
    summary = run_once(store, conn, erp)
    assert erp.calls.index("settle") < len(erp.calls) - 1  # settled before the payment stage
    failed = store.records(conn.name, source_type="invoice")[-1]
    assert failed.status == "failed" and failed.error_class == "transient" and "release of Invoice" in failed.error_message
    assert store.lookup(conn.name, "invoice", "5001") is None
    assert [f["class"] for f in summary.failures] == ["transient", "dependency"]  # the payment waits for it
    assert "posted" not in [a["step"] for a in store.audit_trail(conn.name, "invoice", "5001")]
    with store.transaction() as c:
        c.execute("UPDATE records SET next_attempt_at = now() WHERE status = 'failed'")
    summary = Poster(store, erp, conn.name).post(store.claim(conn.name, "w", statuses=["failed"]))
    assert summary.counts["posted"] == 2 and not summary.failures
    assert erp.calls.count("update_document") == 1 and len(erp.documents) == 2  # completed, not duplicated
    assert store.lookup(conn.name, "invoice", "5001") == "D0001"


def test_matched_by_name_party_is_linked_not_created(store, conn):
    erp = MemoryErp()
    erp.parties["C000123"] = {"name": "O'Brien Family Dental"}
    intake(store, conn, [customer(90, "O'Brien Family Dental")])
    summary = run_once(store, conn, erp)
    assert summary.counts["found_existing"] == 1 and "create_party" not in erp.calls
    assert store.lookup(conn.name, "customer", "90") == "C000123"


def test_edit_after_release_needs_review_and_editable_is_updated(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()])
    run_once(store, conn, erp)
    intake(store, conn, [], [invoice(total="334.60", salesTax="34.60")])
    summary = run_once(store, conn, erp)
    assert summary.counts["needs_review"] == 1 and len(erp.documents) == 1
    flagged = store.records(conn.name, statuses=["needs_review"])[0]
    assert "amount was 324.60, now 334.60" in flagged.error_message and flagged.error_class == "conflict"
    # an unreleased document is updated in place instead
    erp.documents["D0001"]["released"] = False
    intake(store, conn, [], [invoice(total="344.60", salesTax="44.60")])
    summary = run_once(store, conn, erp)
    assert summary.counts["posted"] == 1 and "update_document" in erp.calls and len(erp.documents) == 1


def test_an_edit_the_erp_refuses_as_posted_is_a_conflict_a_person_can_close(store, conn):
    """Vantagepoint's case (issue 18): the document looked updatable, but the ERP answered that it
    is posted with other amounts. That is a conflict held for review (not a failure no command
    closes), its message gives both amounts, the fix names the record's own id, and
    `errors resolve` closes it for good."""
    from fieldledger.operations import mark_reviewed
    from posting.protocol import fix_for

    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()], [payment()])
    run_once(store, conn, erp)
    erp.documents["D0002"]["released"] = False  # looks updatable...
    erp.posted_elsewhere.add("PMT-801")  # ...but the ERP holds it posted
    intake(store, conn, [], [], [payment(amount="300.00")])
    summary = run_once(store, conn, erp)
    (flagged,) = store.records(conn.name, statuses=["needs_review"])
    assert (flagged.source_type, flagged.error_class) == ("payment", "conflict")
    assert "amount was 324.60, now 300.00" in flagged.error_message and "posted with other amounts" in flagged.error_message
    assert summary.failures[0]["fix"] == fix_for("conflict", flagged.id)
    assert f"fieldledger errors resolve {flagged.id} --note" in summary.failures[0]["fix"]
    mark_reviewed(store, flagged.id, "adjusted in the ERP", "tester")
    again = run_once(store, conn, erp, "r3")
    assert not store.records(conn.name, statuses=["needs_review", "failed"]) and not again.failures


def test_transient_failure_is_retried_later_and_validation_is_not(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()])
    run_once(store, conn, erp)
    intake(store, conn, [], [invoice(), invoice(id=5002, referenceNumber="INV-5002")])
    erp.fail_next = [TransientError("503", system="erp", status=503)]
    run_once(store, conn, erp)  # the batched find_documents fails for both invoices
    failed = store.records(conn.name, statuses=["failed"])
    assert len(failed) == 2 and {r.error_class for r in failed} == {"transient"}
    with store.transaction() as c:
        assert c.execute("SELECT count(*) AS n FROM records WHERE next_attempt_at IS NOT NULL").fetchone()["n"] == 2
    assert store.claim(conn.name, "w", statuses=["failed"]) == []  # not before its backoff
    erp.fail_next = [ValidationError("422 Branch: unknown", system="erp", status=422)]
    with store.transaction() as c:
        c.execute("UPDATE records SET next_attempt_at = now() WHERE status = 'failed'")
    summary = Poster(store, erp, conn.name).post(store.claim(conn.name, "w", statuses=["failed"]))
    assert summary.counts["failed"] == 2  # the 422 hits find_documents for the pair
    assert {r.error_class for r in store.records(conn.name, statuses=["failed"])} == {"erp_validation"}
    with store.transaction() as c:
        assert c.execute("SELECT count(*) AS n FROM records WHERE next_attempt_at IS NOT NULL").fetchone()["n"] == 0


def test_payment_on_quarantined_invoice_waits_with_a_clear_reason(store, conn):
    erp = MemoryErp()
    bad = invoice(businessUnit={"id": 1999, "name": "Spokane HVAC"})
    intake(store, conn, [customer()], [bad], [payment()])
    summary = run_once(store, conn, erp)
    failure = next(f for f in summary.failures if f["record"] == "payment 801")
    assert failure["class"] == "dependency"
    assert "invoice 5001 is not in the ERP yet (its record is quarantined" in failure["message"]
    assert "business unit 1999 (Spokane HVAC) has no mapping" in failure["message"]


def test_fix_mapping_then_replay_posts(store, conn, tmp_path):
    erp = MemoryErp()
    bad = invoice(businessUnit={"id": 1999, "name": "Spokane HVAC"})
    intake(store, conn, [customer()], [bad])
    run_once(store, conn, erp)
    assert store.records(conn.name, statuses=["quarantined"])[0].source_id == "5001"
    fixed_text = (DEMO / "cascade-hvac.yaml").read_text().replace(
        "  business_units:\n", "  business_units:\n    1999:\n      branch: SEATTLE\n      subaccount: SEA-PLM\n", 1)
    fixed_path = tmp_path / "cascade-hvac.yaml"
    fixed_path.write_text(fixed_text)
    fixed = load_connection_file(fixed_path)
    summary = remap_quarantined(store, fixed, run_id="replay-1")
    assert summary.counts["new"] == 1
    posted = run_once(store, fixed, erp, run_id="replay-1")
    assert posted.counts["posted"] == 1 and len(erp.documents) == 1
    steps = [a["step"] for a in store.audit_trail(conn.name, "invoice", "5001")]
    assert steps[:3] == ["extracted", "mapped", "replayed"] and steps[-1] == "posted"


def test_auth_failure_stops_the_run_loudly(store, conn):
    erp = MemoryErp()
    intake(store, conn, [customer()], [invoice()])
    run_once(store, conn, erp)
    intake(store, conn, [], [invoice(id=6000, referenceNumber="INV-6000")])
    erp.fail_next = [AuthError("401", system="erp", status=401)]
    with pytest.raises(AuthError):
        run_once(store, conn, erp)
