"""What an accountant checks in Vantagepoint after a sync, read through its API: each ServiceTitan
invoice once on its business unit's project, each payment once and applied to the right invoices,
each bill once on the mapped vendor. Shared by the Dagster end-to-end sync and its per-mode variant."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from mappings.connection import Connection
from resources.vantagepoint import VantagepointClient, pad_document_number


def assert_synced_once(vp: VantagepointClient, expected: dict[str, dict], conn: Connection,
                       vendor_of: Callable[[str], str | None]) -> int:
    """Asserts the ledger holds ``expected`` (source_documents' shape) exactly once; returns the
    number of IN ledger rows (to compare after a replay). Invoice numbers are compared padded, so
    the check holds whether the tenant pads them on save or keeps them as sent."""
    invoices, receipts, vouchers = vp.ledger("IN"), vp.ledger("CR"), vp.ledger("AP")

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

    bank_rows = Counter(r.RefNo for r in receipts if r.SubType == "A")
    applied = defaultdict(dict)
    for r in receipts:
        if r.SubType != "A" and r.Invoice:
            applied[r.RefNo][pad_document_number(r.Invoice)] = -r.Amount
    for doc in expected["payment"].values():
        key = next((k for k in bank_rows if k.strip().lstrip("0") == doc.reference.lstrip("0")), doc.reference)
        assert bank_rows[key] == 1, doc.reference
        assert applied[key] == {pad_document_number(a.invoice_number): a.amount for a in doc.applications}

    voucher_rows = Counter((r.Vendor, r.Invoice) for r in vouchers if r.SubType == "A")
    for doc in expected["bill"].values():
        vendor = vendor_of(doc.vendor_id)
        matches = [k for k in voucher_rows if k[0] == vendor and doc.number in k[1]]
        assert len(matches) == 1 and voucher_rows[matches[0]] == 1, (doc.number, vendor, list(voucher_rows)[:5])
    return len(invoices)
