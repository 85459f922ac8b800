"""Compact in-memory records of the ServiceTitan simulator and the per-tenant tables that hold them.

Records keep only what varies (ids, cents, ticks, names); ``render.py`` turns them into the API's
JSON. Every table keeps a modification log ordered by (modifiedOn, sequence) so export feeds can
resume from a continuation token and see records changed after the token was issued.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

from simulators.contractor import Contractor


@dataclass(slots=True, kw_only=True)
class Row:
    id: int
    created: int  # ticks
    modified: int  # ticks
    active: bool = True
    deleted: bool = False  # removed: gone from lists and by-id reads, still in export feeds
    seq: int = 0  # position in the table's modification log


@dataclass(slots=True, kw_only=True)
class BusinessUnitRow(Row):
    name: str
    official_name: str
    branch: Any  # simulators.contractor.Branch
    trade: Any  # simulators.contractor.Trade


@dataclass(slots=True, kw_only=True)
class GLAccountRow(Row):
    number: str
    name: str
    type: str
    subtype: str
    default_type: str | None


@dataclass(slots=True, kw_only=True)
class PaymentTypeRow(Row):
    name: str
    cash_account: str


@dataclass(slots=True, kw_only=True)
class Address:
    street: str
    unit: str | None
    city: str
    state: str
    zip: str
    lat: float
    lon: float


@dataclass(slots=True, kw_only=True)
class CustomerRow(Row):
    name: str
    type: str  # Residential | Commercial
    address: Address
    balance: int = 0  # cents
    merged_to: int | None = None
    tax_exempt: bool = False
    do_not_mail: bool = False
    key_account: bool = False
    locations: list[int] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class LocationRow(Row):
    customer_id: int
    name: str
    address: Address
    tax_zone_id: int
    zone_id: int


@dataclass(slots=True, kw_only=True)
class VendorRow(Row):
    name: str
    city: str
    state: str
    contact_first: str
    contact_last: str
    phone: str
    email: str
    street: str
    zip: str
    tax_rate_bp: int  # basis points


@dataclass(slots=True)
class InvoiceItem:
    id: int
    order: int
    type: str  # Service | Material | Equipment | PriceModifier | Unspecified
    sku_id: int
    sku_name: str
    description: str
    qty: int  # hundredths
    price: int  # cents per unit
    cost: int  # cents per unit
    total: int  # cents
    account: str  # GL account number
    taxable: bool
    created: int
    modified: int


@dataclass(slots=True, kw_only=True)
class InvoiceRow(Row):
    number: str
    customer_id: int
    location_id: int
    bu_id: int
    job_id: int | None
    job_number: str | None
    job_type: str | None
    day: int  # invoice date ordinal
    due_day: int
    items: list[InvoiceItem]
    tax_rate_bp: int  # basis points of the branch's sales tax
    tax: int  # cents
    subtotal: int
    balance: int
    paid_on: int | None = None  # ticks
    adjustment_to: int | None = None
    sync_status: str = "Pending"
    review_status: str = "Reviewed"
    sent_status: str = "Sent"
    summary: str | None = None
    created_by: str = "dispatch"

    @property
    def total(self) -> int:
        return self.subtotal + self.tax


@dataclass(slots=True)
class Application:
    applied_id: int
    invoice_id: int
    amount: int  # cents
    applied_on: int  # ticks
    applied_by: str


@dataclass(slots=True, kw_only=True)
class PaymentRow(Row):
    number: str
    customer_id: int
    bu_id: int
    type_id: int
    day: int  # payment date ordinal
    total: int
    applied: list[Application]
    memo: str | None = None
    check_number: str | None = None
    auth_code: str | None = None
    sync_status: str = "Pending"
    created_by: str = "office"

    @property
    def unapplied(self) -> int:
        return self.total - sum(a.amount for a in self.applied)


@dataclass(slots=True)
class StockLine:
    """One line of a PO, receipt or bill."""

    id: int
    sku_id: int
    code: str
    name: str
    qty: int  # hundredths
    cost: int  # cents per unit
    received: int = 0  # PO lines: hundredths received so far
    source_id: int | None = None  # receipt line -> PO line; bill line -> receipt line


@dataclass(slots=True, kw_only=True)
class PurchaseOrderRow(Row):
    number: str
    vendor_id: int
    bu_id: int
    job_id: int | None
    technician_id: int | None
    day: int
    required_day: int
    status: str
    lines: list[StockLine]
    tax: int
    shipping: int
    sent: int | None = None
    received: int | None = None
    receipts: list[int] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ReceiptRow(Row):
    number: str
    po_id: int
    bill_id: int | None
    vendor_id: int
    bu_id: int
    job_id: int | None
    vendor_invoice: str
    received: int
    lines: list[StockLine]
    tax: int
    shipping: int


@dataclass(slots=True, kw_only=True)
class BillRow(Row):
    number: str
    po_id: int
    receipt_id: int
    vendor_id: int
    bu_id: int
    job_id: int | None
    job_number: str | None
    vendor_invoice: str
    day: int
    due_day: int
    lines: list[StockLine]
    tax: int
    shipping: int
    sync_status: str = "Pending"

    @property
    def amount(self) -> int:
        return sum(line_total(line) for line in self.lines)


def line_total(line: StockLine) -> int:
    return (line.qty * line.cost + 50) // 100


class Table:
    """Rows of one kind by id, plus the modification log the export feed reads."""

    def __init__(self, kind: str):
        self.kind = kind
        self.rows: dict[int, Row] = {}
        self._log_keys: list[tuple[int, int]] = []  # (modified ticks, seq), ascending
        self._log_ids: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, rows: list[Row], seq_start: int) -> int:
        """Bulk load at seed time; rows are ordered by id, the log by modification."""
        for row in sorted(rows, key=lambda r: r.id):
            self.rows[row.id] = row
        seq = seq_start
        for row in sorted(rows, key=lambda r: (r.modified, r.id)):
            seq += 1
            row.seq = seq
            self._log_keys.append((row.modified, seq))
            self._log_ids.append(row.id)
        return seq

    def last_key(self) -> tuple[int, int]:
        return self._log_keys[-1] if self._log_keys else (0, 0)

    def append(self, row: Row, seq: int) -> None:
        """Record a new or changed row at the end of the log (row.modified must not go back)."""
        row.seq = seq
        self.rows[row.id] = row
        self._log_keys.append((row.modified, seq))
        self._log_ids.append(row.id)

    def scan(self, after: tuple[int, int], until_ticks: int | None = None):
        """Rows whose current log position is after ``after``, in modification order."""
        i = bisect.bisect_right(self._log_keys, after)
        keys, ids, rows = self._log_keys, self._log_ids, self.rows
        while i < len(keys):
            key = keys[i]
            if until_ticks is not None and key[0] > until_ticks:
                return
            row = rows.get(ids[i])
            if row is not None and row.seq == key[1]:
                yield key, row
            i += 1


@dataclass
class Credentials:
    client_id: str
    client_secret: str
    app_key: str
    webhook_secret: str


class TenantData:
    """Everything one simulated tenant holds. All access goes through ``lock``."""

    KINDS = (
        "business-units", "gl-accounts", "payment-types", "customers", "locations", "vendors",
        "purchase-orders", "receipts", "invoices", "payments", "inventory-bills",
    )

    def __init__(self, contractor: Contractor, credentials: Credentials):
        self.contractor = contractor
        self.tenant_id = contractor.tenant_id
        self.credentials = credentials
        self.lock = threading.RLock()
        self.tables: dict[str, Table] = {kind: Table(kind) for kind in self.KINDS}
        self.seq = 0
        self.seed_seq = 0  # log position after seeding: rows touched later are what a snapshot keeps
        self.gl_by_number: dict[str, GLAccountRow] = {}
        self.counters: dict[str, int] = {}
        self.id_base = 0

    def next_id(self, kind: str) -> int:
        value = self.counters.get(kind, 0) + 1
        self.counters[kind] = value
        return value

    def touch(self, kind: str, row: Row, now_ticks: int) -> None:
        """Mark a row changed now (new rows too): bumps modifiedOn and moves it to the log's end."""
        table = self.tables[kind]
        last = table.last_key()[0]
        row.modified = max(now_ticks, last, row.modified)
        self.seq += 1
        table.append(row, self.seq)
