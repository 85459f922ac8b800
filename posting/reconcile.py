"""Reconciliation: ServiceTitan totals vs ERP totals for one connection and day, per business
unit (under the ERP dimension it maps to: Acumatica subaccount, Vantagepoint project) and document
type, to the cent.

Each side is read from its own system, never from fieldledger's mapping: the ServiceTitan side
sums the amounts in ServiceTitan's records as ServiceTitan sends them (its API, or the raw
records as extracted), the ERP side what the ERP's ledger holds. A mapping that got an amount
wrong, a record never extracted or an edit never synced therefore shows as a difference. The
only thing taken from the connection is where each business unit lands in the ERP.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from mappings.canonical import Coding
from mappings.connection import Connection, ConnectionFileError, load_connection
from mappings.rules import line_amount
from posting.adapter import ErpAdapter
from resources.store import SyncStore

log = logging.getLogger("fieldledger.reconcile")
ZERO = Decimal("0.00")
DOCUMENT_TYPES = ("invoice", "payment", "bill")
UNMAPPED = "unmapped"
# Where ServiceTitan states each document's total. A bill's billAmount is its items; tax,
# shipping and other costs are stated beside it (InventoryBillResponse) and belong to the bill too.
TOTAL_FIELDS = {"invoice": ("total",), "payment": ("total",),
                "bill": ("billAmount", "taxAmount", "shippingAmount", "otherAmount")}

# (source type, day) -> ServiceTitan's records of that type dated that day, in its JSON shape
SourceRecords = Callable[[str, date], Iterable[dict]]


@dataclass(frozen=True)
class ReconRow:
    source_type: str
    key: str
    servicetitan: Decimal
    erp: Decimal

    @property
    def difference(self) -> Decimal:
        return self.erp - self.servicetitan


def from_servicetitan(client) -> SourceRecords:
    """ServiceTitan's records of a day read from its API, with the extract's own day readers."""
    from pipelines.servicetitan.extract import day_records

    return lambda source_type, day: day_records(client, source_type, day)


def from_store(store: SyncStore, connection: str) -> SourceRecords:
    """ServiceTitan's records of a day as ServiceTitan sent them when they were extracted (the
    raw payload of each record's latest version), whether they mapped or not."""
    def records(source_type: str, day: date) -> list[dict]:
        latest: dict[str, dict] = {}
        for rec in store.records(connection, source_type=source_type, business_date=day):
            raw = (rec.payload or {}).get("source")
            if rec.status != "superseded" and raw is not None:
                latest[rec.source_id] = raw  # ordered by id: the newest version wins
        return list(latest.values())
    return records


def _decimal(raw: dict, field: str, source_type: str) -> Decimal:
    """A stated amount; one it cannot read counts as 0.00 (and is logged): it then shows as a difference."""
    value = raw.get(field)
    try:
        return Decimal(str(value)) if value not in (None, "") else ZERO
    except InvalidOperation:
        log.warning("%s %s: %s %r is not a number", source_type, raw.get("id"), field, value)
        return ZERO


def stated_total(source_type: str, raw: dict) -> Decimal:
    """The document's total as ServiceTitan states it. A bill that states no billAmount (the
    field is nullable) counts its items as ServiceTitan gives them: quantity x cost to the cent."""
    total = sum((_decimal(raw, field, source_type) for field in TOTAL_FIELDS[source_type]), ZERO)
    if source_type == "bill" and raw.get("billAmount") in (None, ""):
        total += sum((line_amount(_decimal(item, "quantity", source_type), _decimal(item, "cost", source_type))
                      for item in raw.get("items") or []), ZERO)
    return total


def unit_keys(conn: Connection, adapter: ErpAdapter) -> dict[int, str]:
    """Business unit id -> the ERP dimension it is mapped to."""
    return {unit_id: adapter.coding_key(Coding(account="", branch=u.branch, subaccount=u.subaccount,
                                               project=u.project, task=u.task, organization=u.organization))
            for unit_id, u in conn.mapping.business_units.items()}


def servicetitan_totals(records: SourceRecords, day: date, keys: dict[int, str]) -> dict[tuple[str, str], Decimal]:
    """(source type, key) -> what ServiceTitan says the day holds: invoices and bills under their
    business unit's key (``unmapped`` when the connection maps none), payments under '*'."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for source_type in DOCUMENT_TYPES:
        for raw in records(source_type, day):
            if source_type == "payment":
                key = "*"
            else:
                unit = (raw.get("businessUnit") or {}).get("id")
                key = keys.get(int(unit), UNMAPPED) if unit is not None else UNMAPPED
            totals[(source_type, key)] += stated_total(source_type, raw)
    return dict(totals)


def _connection(store: SyncStore, connection: str | Connection) -> Connection | None:
    if isinstance(connection, Connection):
        return connection
    try:
        return load_connection(connection)
    except (ConnectionFileError, FileNotFoundError, OSError):
        return None


def _stored_unit_keys(store: SyncStore, connection: str, day: date, adapter: ErpAdapter) -> dict[int, str]:
    """Without the connection file: business unit -> key as the day's stored documents were coded."""
    keys: dict[int, str] = {}
    for rec in store.records(connection, business_date=day):
        document = (rec.payload or {}).get("document") or {}
        if document.get("business_unit_id") is not None and document.get("header"):
            keys[int(document["business_unit_id"])] = adapter.coding_key(Coding.model_validate(document["header"]))
    return keys


def reconcile(store: SyncStore, connection: str | Connection, day: date, adapter: ErpAdapter,
              source: SourceRecords | None = None) -> list[ReconRow]:
    """ServiceTitan vs ERP for one day. ``source``: where ServiceTitan's records are read
    (``from_servicetitan(client)``; by default the raw records as extracted, ``from_store``)."""
    conn = _connection(store, connection)
    name = conn.name if conn else str(connection)
    keys = unit_keys(conn, adapter) if conn else _stored_unit_keys(store, name, day, adapter)
    st = servicetitan_totals(source or from_store(store, name), day, keys)
    erp = adapter.ledger_totals(day)
    pairs = sorted(set(st) | set(erp))
    return [ReconRow(t, k, st.get((t, k), ZERO), erp.get((t, k), ZERO)) for t, k in pairs]
