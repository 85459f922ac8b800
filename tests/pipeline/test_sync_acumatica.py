"""Days (twelve; FL_TEST_DAYS=30 for a month) of Cascade HVAC synced through Dagster into Acumatica, then checked the way an
accountant would: by querying the Acumatica simulator's API."""

from __future__ import annotations

import os
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mappings.connection import load_connection
from posting.reconcile import reconcile
from posting.registry import open_adapter
from resources.acumatica import AcumaticaClient
from resources.vault import Vault
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import last_days, source_documents

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"
DAYS = int(os.environ.get("FL_TEST_DAYS", "12"))  # FL_TEST_DAYS=30 for a whole month (about 2.5x as long)


def acumatica(stack) -> AcumaticaClient:
    a = stack.info["acumatica"]
    return AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                           a["password"], poll_interval=0.05)


def test_a_backfill_of_days_lands_in_acumatica_exactly_once_and_reconcile(stack):
    days = last_days(DAYS)
    today = days[-1]
    started = datetime.now(UTC)
    outcome = run_partitions(CONNECTION, days, "test")
    elapsed = (datetime.now(UTC) - started).total_seconds()
    print(f"\n{DAYS}-day backfill to Acumatica: {outcome.runs} runs in {elapsed:.1f} s")
    assert outcome.failed_runs == []
    statuses = stack.store.status_counts(CONNECTION)
    assert statuses.get("failed", 0) == 0 and statuses.get("quarantined", 0) == 0, statuses

    expected = source_documents(stack.info, CONNECTION, days)
    assert len(expected["invoice"]) > 5 * DAYS and len(expected["payment"]) > 3 * DAYS and expected["bill"]  # a real backfill, whatever the days
    conn = load_connection(CONNECTION)
    window = (f"Date ge datetimeoffset'{days[0]}T00:00:00Z' and "
              f"Date lt datetimeoffset'{today + timedelta(days=1)}T00:00:00Z'")
    with acumatica(stack) as acu:
        invoices = list(acu.iter_all("Invoice", filter=window, expand="Details"))
        all_invoices = list(acu.iter_all("Invoice"))  # payments also apply to invoices dated before the window
        payments = list(acu.iter_all("Payment", expand="DocumentsToApply"))
        bills = list(acu.iter_all("Bill", filter=window, expand="Details"))

    # every ServiceTitan invoice exactly once, on its business unit's branch and subaccount
    by_ref = Counter(i["CustomerOrder"] for i in invoices)
    numbers = {d.number: d for d in expected["invoice"].values()}
    assert set(numbers) <= set(by_ref), set(numbers) - set(by_ref)
    assert [ref for ref in numbers if by_ref[ref] != 1] == []
    for inv in invoices:
        doc = numbers.get(inv["CustomerOrder"])
        if doc is None:
            continue
        unit = conn.mapping.business_units[doc.business_unit_id]
        assert {(d["Branch"], d["Subaccount"]) for d in inv["Details"]} == {(unit.branch, unit.subaccount)}
        assert Decimal(str(inv["Amount"])) == abs(doc.total)
        assert sorted(d["Account"] for d in inv["Details"]) == sorted(line.coding.account for line in doc.lines)

    # payments applied to the right invoices
    invoice_nbr_to_ref = {(i["Type"], i["ReferenceNbr"]): i["CustomerOrder"] for i in all_invoices}
    pay_by_ref = {p["PaymentRef"]: p for p in payments}
    for doc in expected["payment"].values():
        payment = pay_by_ref[doc.reference]
        applied = {invoice_nbr_to_ref.get((a["DocType"], a["ReferenceNbr"])): Decimal(str(a["AmountPaid"]))
                   for a in payment.get("DocumentsToApply") or []}
        assert applied == {a.invoice_number: a.amount for a in doc.applications}, (doc.reference, applied, doc.applications)
    assert Counter(p["PaymentRef"] for p in payments if p["PaymentRef"] in {d.reference for d in
                                                                            expected["payment"].values()}).most_common(1)[0][1] == 1

    # bills on the right vendors, once each
    vendor_keys = {sid: stack.store.lookup(CONNECTION, "vendor", sid) for sid in
                   {d.vendor_id for d in expected["bill"].values()}}
    bill_refs = Counter((b["Vendor"], b["VendorRef"]) for b in bills)
    for doc in expected["bill"].values():
        assert bill_refs[(vendor_keys[doc.vendor_id], doc.number)] == 1, doc.number

    # reconciliation to the cent, every day
    with closing(open_adapter(conn, Vault(stack.store))) as adapter:
        off = [(day, r) for day in days for r in reconcile(stack.store, CONNECTION, day, adapter)
               if r.difference != 0]
    assert off == []

    # replay is safe: the same days again post nothing
    before = len(invoices)
    again = run_partitions(CONNECTION, days[-3:], "test-replay")
    assert again.failed_runs == []
    with acumatica(stack) as acu:
        assert len(list(acu.iter_all("Invoice", filter=window))) == before
