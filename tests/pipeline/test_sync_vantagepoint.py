"""Thirty days of Summit Mechanical synced through Dagster into Vantagepoint, then checked in the
Vantagepoint simulator's ledger through its API."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from contextlib import closing
from decimal import Decimal

import pytest

from fieldledger.operations import run_partitions
from mappings.connection import load_connection
from posting.reconcile import reconcile
from posting.registry import open_adapter
from resources.vantagepoint import VantagepointClient, pad_document_number
from resources.vault import Vault
from tests.pipeline.source import last_days, source_documents

pytestmark = pytest.mark.slow
CONNECTION = "summit-mechanical"
DAYS = int(os.environ.get("FL_TEST_DAYS", "30"))


def vantagepoint(stack) -> VantagepointClient:
    v = stack.info["vantagepoint"]
    return VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                              v["password"], rate_per_second=200)


def test_thirty_days_land_in_vantagepoint_exactly_once_and_reconcile(stack):
    days = last_days(DAYS)
    started = time.monotonic()
    outcome = run_partitions(CONNECTION, days, "test")
    print(f"\n{DAYS}-day backfill to Vantagepoint: {outcome.runs} runs in {time.monotonic() - started:.1f} s")
    assert outcome.failed_runs == []
    statuses = stack.store.status_counts(CONNECTION)
    assert statuses.get("failed", 0) == 0 and statuses.get("quarantined", 0) == 0, statuses

    expected = source_documents(stack.info, CONNECTION, days)
    assert len(expected["invoice"]) > 15 * DAYS and len(expected["payment"]) > 10 * DAYS
    conn = load_connection(CONNECTION)
    with vantagepoint(stack) as vp:
        invoices = vp.ledger("IN")
        receipts = vp.ledger("CR")
        vouchers = vp.ledger("AP")

    # one AR row per invoice: each ServiceTitan invoice exactly once, on its business unit's project
    ar_rows = Counter(pad_document_number(r.Invoice) for r in invoices if r.SubType == "A")
    revenue = defaultdict(set)
    for r in invoices:
        if r.SubType != "A":
            revenue[pad_document_number(r.Invoice)].add(r.WBS1)
    for doc in expected["invoice"].values():
        number = pad_document_number(doc.number)
        assert ar_rows[number] == 1, (doc.number, ar_rows[number])
        unit = conn.mapping.business_units[doc.business_unit_id]
        assert revenue[number] == {unit.project}, (doc.number, revenue[number])

    # receipts: one bank row each, applied to the right invoices for the right amounts
    bank_rows = Counter(r.RefNo for r in receipts if r.SubType == "A")
    applied = defaultdict(dict)
    for r in receipts:
        if r.SubType != "A" and r.Invoice:
            applied[r.RefNo][pad_document_number(r.Invoice)] = -r.Amount
    for doc in expected["payment"].values():
        key = next((k for k in bank_rows if k.strip().lstrip("0") == doc.reference.lstrip("0")), doc.reference)
        assert bank_rows[key] == 1, doc.reference
        assert applied[key] == {pad_document_number(a.invoice_number): a.amount for a in doc.applications}

    # vouchers: one per bill, on the mapped vendor
    voucher_rows = Counter((r.Vendor, r.Invoice) for r in vouchers if r.SubType == "A")
    for doc in expected["bill"].values():
        vendor = stack.store.lookup(CONNECTION, "vendor", doc.vendor_id)
        matches = [k for k in voucher_rows if k[0] == vendor and doc.number in k[1]]
        assert len(matches) == 1 and voucher_rows[matches[0]] == 1, (doc.number, vendor, list(voucher_rows)[:5])

    # reconciliation to the cent, every day
    with closing(open_adapter(conn, Vault(stack.store))) as adapter:
        off = [(day, r) for day in days for r in reconcile(stack.store, CONNECTION, day, adapter)
               if r.difference != Decimal("0")]
    assert off == []

    # replaying days posts nothing new
    before = len(invoices)
    assert run_partitions(CONNECTION, days[-3:], "test-replay").failed_runs == []
    with vantagepoint(stack) as vp:
        assert len(vp.ledger("IN")) == before
