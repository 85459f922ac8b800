"""Reconciliation: ServiceTitan totals vs ERP totals for one connection and day, per business
unit's coding key (Acumatica subaccount, Vantagepoint project) and document type, to the cent."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from mappings.canonical import document_from_json
from posting.adapter import ErpAdapter
from resources.store import SyncStore

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ReconRow:
    source_type: str
    key: str
    servicetitan: Decimal
    erp: Decimal

    @property
    def difference(self) -> Decimal:
        return self.erp - self.servicetitan


def servicetitan_totals(store: SyncStore, connection: str, day: date, adapter: ErpAdapter) -> dict:
    """Totals of the latest version of every ServiceTitan document of the day that maps to a
    document (quarantined ones count on the ServiceTitan side too: their absence is a real gap)."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    latest: dict[tuple[str, str], object] = {}
    for rec in store.records(connection, business_date=day):
        if rec.source_type in ("customer", "vendor") or rec.status == "superseded":
            continue
        latest[(rec.source_type, rec.source_id)] = rec
    for rec in latest.values():
        document = (rec.payload or {}).get("document")
        if rec.status == "skipped" or document is None:
            if rec.status == "quarantined" and rec.source_type == "invoice":
                raw = rec.payload.get("source", {})
                totals[("invoice", "unmapped")] += Decimal(str(raw.get("total") or "0"))
            continue
        doc = document_from_json(rec.source_type, document)
        if rec.source_type == "payment":
            totals[("payment", "*")] += doc.amount
            continue
        for line in doc.lines:
            totals[(rec.source_type, adapter.coding_key(line.coding))] += line.amount
    return dict(totals)


def reconcile(store: SyncStore, connection: str, day: date, adapter: ErpAdapter) -> list[ReconRow]:
    st = servicetitan_totals(store, connection, day, adapter)
    erp = adapter.ledger_totals(day)
    keys = sorted(set(st) | set(erp))
    return [ReconRow(t, k, st.get((t, k), ZERO), erp.get((t, k), ZERO)) for t, k in keys]
