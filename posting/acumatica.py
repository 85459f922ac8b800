"""The Acumatica adapter of the posting layer: renders canonical parties, AR invoices, cash
receipts and AP bills into the Default 24.200.001 contract (Customer, Vendor, Invoice, Payment,
Bill), releases what it posts, finds what already exists by external reference, and polls for
what people changed afterwards (voided documents, parties created by hand).

It decides nothing about whether to post (posting/protocol.py does) and speaks HTTP only through
resources/acumatica.py; errors surface unchanged as the shared RemoteError classes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from mappings.canonical import CENT, APBill, ARInvoice, CashReceipt, Coding, Line, Party
from mappings.connection import Connection
from posting.adapter import Document, ErpChange, Existing, ReferenceData, References
from posting.parties import Candidate, Matches, external_id, parse_external_id
from posting.text_limits import clip
from posting.validation import closed_period_message
from resources.acumatica import RELEASE_ACTIONS, SYSTEM, AcumaticaClient, odata_string
from resources.http import AuthError, ConflictError, NotFoundError, RemoteError, ValidationError
from resources.vault import Vault

ZERO = Decimal("0.00")

# Field lengths of the 24.x DACs (nvarchar, measured in UTF-16 code units). External references
# are never cut: a clipped reference could match another document, so the ERP refuses it instead.
LIMITS = {"name": 255, "description": 256, "address_line": 50, "city": 50, "state": 50, "postal_code": 20,
          "email": 255}
# The same widths by canonical text field (posting/text_limits.py): descriptions and memos all land
# in 256-unit Description / TransactionDescription columns.
TEXT_LIMITS = {**LIMITS, "memo": LIMITS["description"], "line": LIMITS["description"],
               "invoice_reference": 40, "payment_reference": 40, "bill_reference": 40}  # CustomerOrder, PaymentRef, VendorRef
DEFAULT_SUBACCOUNT = "000-000"

# ServiceTitan payment type -> Acumatica payment method.
PAYMENT_METHODS = {"Cash": "CASH", "Check": "CHECK", "Credit Card": "CREDITCARD", "ACH": "ACH"}
COUNTRY_CODES = {"usa": "US", "united states": "US", "united states of america": "US", "can": "CA",
                 "canada": "CA"}


class UnmappedPaymentType(RemoteError):
    """A ServiceTitan payment type with no Acumatica payment method: a mapping gap, not an ERP fault."""

    error_class = "mapping"


# --- how each document type lives in Acumatica ------------------------------------------------

@dataclass(frozen=True)
class DocumentKind:
    """One canonical document type's Acumatica entity: where its party and external reference
    sit, its date and amount fields, its detail collection, its type labels (with the internal
    codes used in keys) and which types count negative in the ledger."""

    entity: str
    party_field: str
    ref_field: str
    date_field: str
    amount_field: str
    details: str
    types: dict[str, str]
    negative: frozenset[str]

    @property
    def labels(self) -> dict[str, str]:
        return {code: label for label, code in self.types.items()}

    def key(self, record: dict[str, Any]) -> str:
        """'INV 010001': the document's type code and reference number, as accountants quote it."""
        label = record.get("Type") or ""
        return f"{self.types.get(label, label)} {record['ReferenceNbr']}"

    def split_key(self, key: str) -> tuple[str, str]:
        """Key -> (type label, reference number) for addressing the document."""
        code, number = key.rsplit(" ", 1)
        return self.labels.get(code, code), number

    def sign(self, record: dict[str, Any]) -> Decimal:
        return Decimal(-1) if record.get("Type") in self.negative else Decimal(1)

    def lookup_fields(self) -> str:
        return ",".join(("Type", "ReferenceNbr", "Status", self.party_field, self.ref_field, self.amount_field))


INVOICE = DocumentKind("Invoice", "Customer", "CustomerOrder", "Date", "Amount", "Details",
                       {"Invoice": "INV", "Debit Memo": "DRM", "Credit Memo": "CRM"}, frozenset({"Credit Memo"}))
PAYMENT = DocumentKind("Payment", "CustomerID", "PaymentRef", "ApplicationDate", "PaymentAmount", "DocumentsToApply",
                       {"Payment": "PMT", "Prepayment": "PPM", "Refund": "REF", "Voided Payment": "RPM"},
                       frozenset({"Refund", "Voided Payment"}))
BILL = DocumentKind("Bill", "Vendor", "VendorRef", "Date", "Amount", "Details",
                    {"Bill": "INV", "Credit Adj.": "ACR", "Debit Adj.": "ADR", "Prepayment": "PPM"},
                    frozenset({"Debit Adj."}))
KINDS = {"invoice": INVOICE, "payment": PAYMENT, "bill": BILL}

UNRELEASED = frozenset({"On Hold", "Balanced"})  # still editable
IN_LEDGER = frozenset({"Open", "Closed"})  # released and not voided
CLOSED_PERIOD_STATUSES = frozenset({"Closed", "Locked", "Inactive"})
MODULE_NAMES = {"AR": "Accounts Receivable", "AP": "Accounts Payable"}
CLOSED_PERIOD_FIX = {
    "AR": "reopen it for Accounts Receivable in Acumatica (Financial Periods GL201000, Reopen Financial Periods "
          "GL503000) or correct the document date in ServiceTitan, then `fieldledger replay`",
    "AP": "reopen it for Accounts Payable in Acumatica (Financial Periods GL201000, Reopen Financial Periods "
          "GL503000) or correct the bill date in ServiceTitan, then `fieldledger replay`",
}

PARTIES = {"customer": ("Customer", "CustomerID", "CustomerName"), "vendor": ("Vendor", "VendorID", "VendorName")}


# --- small pure helpers -----------------------------------------------------------------------

def or_filters(conditions: list[str], max_conditions: int, max_chars: int = 1500) -> Iterable[str]:
    """The conditions OR-ed into as few $filter texts as fit: at most ``max_conditions`` each and
    about ``max_chars`` once URL-encoded (IIS refuses long query strings; names can be long)."""
    batch: list[str] = []
    size = 0
    for condition in conditions:
        cost = len(quote(condition)) + len("%20or%20")
        if batch and (len(batch) == max_conditions or size + cost > max_chars):
            yield " or ".join(batch)
            batch, size = [], 0
        batch.append(condition)
        size += cost
    if batch:
        yield " or ".join(batch)


def day_filter(field: str, day: date, zone: tzinfo = UTC) -> str:
    """$filter for one business day of a date field: Acumatica holds a date as midnight in the API
    user's time zone, so the window is that zone's midnight to the next (DST-aware offsets)."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return (f"{field} ge datetimeoffset'{start.isoformat()}' and "
            f"{field} lt datetimeoffset'{end.isoformat()}'")


def modified_after(since: datetime) -> str:
    """$filter for records changed after ``since``: LastModifiedDateTime gt datetimeoffset'…' (UTC,
    milliseconds, as the API stores them; '+' encoded by the HTTP layer)."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC)")
    stamp = since.astimezone(UTC).isoformat(timespec="milliseconds")
    return f"LastModifiedDateTime gt datetimeoffset'{stamp}'"


def parse_stamp(value: Any) -> datetime | None:
    """An Acumatica date-time as UTC-aware (naive values are the API's UTC)."""
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def period_of(period_id: str | None) -> str | None:
    """A financial period id as 'YYYYMM' (Acumatica shows 'MMYYYY' or 'MM-YYYY', stores 'YYYYMM')."""
    digits = "".join(ch for ch in str(period_id or "") if ch.isdigit())
    if len(digits) != 6:
        return None
    return digits if 1900 <= int(digits[:4]) <= 2999 else digits[2:] + digits[:2]


def country_code(country: str | None) -> str | None:
    """Acumatica wants ISO country codes; names it cannot resolve are left out, not guessed."""
    text = (country or "").strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return COUNTRY_CODES.get(text.casefold())


def money(value: Any) -> Decimal:
    """An amount as the client parsed it (Decimal, or None for an empty field)."""
    return Decimal(str(value)) if value is not None else ZERO


# --- rendering --------------------------------------------------------------------------------

def render_party(party: Party) -> dict[str, Any]:
    _, key_field, name_field = PARTIES[party.source_type]
    record: dict[str, Any] = {name_field: clip(party.name, LIMITS["name"])}
    if party.erp_id:
        record[key_field] = party.erp_id
    address = {"AddressLine1": clip(party.address_line, LIMITS["address_line"]),
               "City": clip(party.city, LIMITS["city"]), "State": clip(party.state, LIMITS["state"]),
               "PostalCode": clip(party.postal_code, LIMITS["postal_code"]),
               "Country": country_code(party.country)}
    contact: dict[str, Any] = {"DisplayName": record[name_field]}
    if party.email:
        contact["Email"] = clip(party.email, LIMITS["email"])
    address = {k: v for k, v in address.items() if v}
    if address:
        contact["Address"] = address
    record["MainContact"] = contact
    return record


def render_line(line: Line, sign: Decimal, price_field: str, extended_field: str,
                description_field: str) -> dict[str, Any]:
    """One GL-coded detail line. Quantity x unit price is sent when it gives the amount; otherwise
    the amount itself (ServiceTitan totals carry discounts and rounding the unit price does not)."""
    amount, unit = line.amount * sign, line.unit_amount * sign
    row: dict[str, Any] = {"Branch": line.coding.branch, "Account": line.coding.account,
                           "Subaccount": line.coding.subaccount,
                           description_field: clip(line.description, LIMITS["description"]), "Qty": line.quantity}
    if (line.quantity * unit).quantize(CENT) == amount:
        row[price_field] = unit
    row[extended_field] = amount
    return row


def invoice_type(doc: ARInvoice) -> tuple[str, Decimal]:
    """Negative invoices are credit memos, carried with positive amounts."""
    return ("Credit Memo", Decimal(-1)) if doc.total < 0 else ("Invoice", Decimal(1))


def render_invoice(doc: ARInvoice, customer: str) -> dict[str, Any]:
    doc_type, sign = invoice_type(doc)
    record: dict[str, Any] = {
        "Type": doc_type, "Customer": customer, "CustomerOrder": doc.external_ref, "Date": doc.date,
        "Description": clip(doc.description, LIMITS["description"]), "Hold": False, "Amount": doc.total * sign,
        "LinkBranch": doc.header.branch, "LinkARAccount": doc.header.account,
        "Details": [render_line(line, sign, "UnitPrice", "ExtendedPrice", "TransactionDescription")
                    for line in doc.lines],
    }
    if doc.due_date and doc_type == "Invoice":
        record["DueDate"] = doc.due_date
    return record


def bill_type(doc: APBill) -> tuple[str, Decimal]:
    """Negative bills are vendor credits: debit adjustments, carried with positive amounts."""
    return ("Debit Adj.", Decimal(-1)) if doc.total < 0 else ("Bill", Decimal(1))


def render_bill(doc: APBill, vendor: str) -> dict[str, Any]:
    doc_type, sign = bill_type(doc)
    record: dict[str, Any] = {
        "Type": doc_type, "Vendor": vendor, "VendorRef": doc.external_ref, "Date": doc.date,
        "Description": clip(doc.description, LIMITS["description"]), "Hold": False, "Amount": doc.total * sign,
        "BranchID": doc.header.branch,
        "Details": [render_line(line, sign, "UnitCost", "ExtendedCost", "TransactionDescription")
                    for line in doc.lines],
    }
    if doc.due_date and doc_type == "Bill":
        record["DueDate"] = doc.due_date
    return record


def payment_method(doc: CashReceipt) -> str:
    method = PAYMENT_METHODS.get(doc.payment_type)
    if method is None:
        raise UnmappedPaymentType(
            f"payment {doc.source_id}: ServiceTitan payment type {doc.payment_type!r} has no Acumatica payment "
            f"method (known: {', '.join(PAYMENT_METHODS)}); add it to PAYMENT_METHODS in posting/acumatica.py",
            system=SYSTEM)
    return method


def render_payment(doc: CashReceipt, customer: str, applied_to: list[tuple[str, str, Decimal]]) -> dict[str, Any]:
    """``applied_to``: (invoice type label, reference number, amount) per application."""
    record: dict[str, Any] = {
        "Type": "Payment", "CustomerID": customer, "PaymentMethod": payment_method(doc),
        "CashAccount": doc.cash.account, "PaymentRef": doc.external_ref, "ApplicationDate": doc.date,
        "PaymentAmount": doc.amount, "Hold": False,
        "Description": clip(doc.memo or f"ServiceTitan payment {doc.external_ref}", LIMITS["description"]),
        "DocumentsToApply": [{"DocType": label, "ReferenceNbr": number, "AmountPaid": amount}
                             for label, number, amount in applied_to],
    }
    if doc.cash.branch:
        record["Branch"] = doc.cash.branch
    return record


# --- the adapter ------------------------------------------------------------------------------

class AcumaticaAdapter:
    """posting.adapter.ErpAdapter for one Acumatica tenant; holds one client (one API-user seat)."""

    kind = "acumatica"
    coding_dimensions = ("branch", "subaccount")
    lookup_chunk = 25  # OR-ed conditions per $filter request
    parallelism = 1
    text_limits = TEXT_LIMITS

    def __init__(self, client: AcumaticaClient):
        self.client = client
        # releases started but not yet confirmed: (source type, key) -> the action's status URL
        self._releasing: dict[tuple[str, str], str] = {}
        self._releasing_lock = threading.Lock()
        self._closed: dict[str, set[str]] | None = None  # closed periods per module, see closed_by_module

    @classmethod
    def open(cls, conn: Connection, vault: Vault) -> AcumaticaAdapter:
        erp = conn.erp
        missing = [k for k in ("client_id", "client_secret", "username", "password") if k not in erp.secrets]
        if missing:
            raise ValueError(f"connection {conn.name}: erp.secrets lacks {', '.join(missing)}; name the vault "
                             f"secret for each (e.g. client_id: acu_client_id)")
        secrets = {k: vault.get(conn.name, erp.secrets[k]) for k in ("client_id", "client_secret", "username",
                                                                      "password")}
        adapter = cls(AcumaticaClient(erp.base_url, erp.tenant or "", endpoint=erp.endpoint, version=erp.version,
                                      max_concurrency=erp.max_concurrency, rate_per_minute=erp.requests_per_minute,
                                      time_zone=erp.time_zone, **secrets))
        adapter.parallelism = erp.max_concurrency  # the protocol posts this many documents at once
        return adapter

    def close(self) -> None:
        self.client.close()

    # --- reference data ------------------------------------------------------------------
    def reference_data(self) -> ReferenceData:
        self._closed = None  # re-read: a period may have been closed or reopened
        return ReferenceData(
            accounts={a.AccountCD for a in self.client.list_accounts() if a.Active is not False},
            subaccounts={s.SubaccountCD for s in self.client.list_subaccounts() if s.Active is not False},
            branches={b.BranchID for b in self.client.list_branches() if b.BranchStatus is not False},
            closed_periods=self.closed_periods(),
        )

    def closed_periods(self) -> set[str]:
        """Periods ('YYYYMM') closed (or locked, or not active) in GL, AR or AP."""
        return set().union(*self.closed_by_module().values())

    def closed_by_module(self) -> dict[str, set[str]]:
        """'AR' / 'AP' -> periods ('YYYYMM') that refuse that module's documents: closed, locked or
        inactive ones, and those closed in the subledger (FinancialPeriod Details). Read once and
        kept until reference_data() reads again; an instance whose endpoint lacks FinancialPeriod
        has nothing to report (the ERP still refuses, with the period named)."""
        if self._closed is not None:
            return self._closed
        try:
            years = self.client.list("FinancialPeriod", expand="Details")
        except NotFoundError:
            years = []
        closed: dict[str, set[str]] = {"AR": set(), "AP": set()}
        for year in years:
            for row in year.get("Details") or []:
                period = period_of(row.get("FinancialPeriodID"))
                if not period:
                    continue
                for module in closed:
                    if row.get("Status") in CLOSED_PERIOD_STATUSES or row.get(f"ClosedIn{module}"):
                        closed[module].add(period)
        self._closed = closed
        return closed

    def refuse_closed_period(self, doc: Document) -> None:
        """Before anything is sent: a document dated in a period its module has closed fails as
        erp_validation naming the period and the fix, exactly as the ERP would refuse it."""
        module = "AP" if isinstance(doc, APBill) else "AR"
        if doc.date.strftime("%Y%m") in self.closed_by_module()[module]:
            raise ValidationError(
                closed_period_message(f"{doc.source_type} {doc.source_id}", doc.date, f"{doc.date:%m-%Y}",
                                      f"Acumatica ({MODULE_NAMES[module]})", CLOSED_PERIOD_FIX[module]),
                system=SYSTEM, path="FinancialPeriod")

    # --- parties -------------------------------------------------------------------------
    def party_matches(self, parties: list[Party]) -> dict[str, Matches]:
        """Per party: the customer / vendor that is its own (under its derived id, or a namesake
        whose AccountRef carries its external id), and those with its exact name (when it is
        matched by name), each with the ServiceTitan party its AccountRef names, if any."""
        found: dict[str, Matches] = {}
        for source_type in PARTIES:
            group = [p for p in parties if p.source_type == source_type]
            if group:
                found.update(self._party_group(source_type, group))
        return found

    def _party_group(self, source_type: str, parties: list[Party]) -> dict[str, Matches]:
        entity, key_field, name_field = PARTIES[source_type]
        conditions = list(dict.fromkeys(
            [f"{key_field} eq {odata_string(p.erp_id)}" for p in parties if p.erp_id]
            + [f"{name_field} eq {odata_string(clip(p.name, LIMITS['name']))}" for p in parties if p.match_by_name]))
        rows: list[dict] = []
        for flt in or_filters(conditions, self.lookup_chunk):
            rows += self.client.list(entity, filter=flt, select=f"{key_field},{name_field},AccountRef")
        by_key = {str(r[key_field]).casefold(): r[key_field] for r in rows}
        by_ref = {str(r["AccountRef"]): r[key_field] for r in rows if r.get("AccountRef")}
        by_name: dict[str, dict[str, Candidate]] = defaultdict(dict)
        for r in rows:
            by_name[r[name_field]].setdefault(str(r[key_field]).casefold(), Candidate(
                key=r[key_field], name=r[name_field], detail=f"AccountRef {r['AccountRef']}" if r.get("AccountRef")
                else "", owner=parse_external_id(r.get("AccountRef"), source_type)))
        found = {}
        for party in parties:
            own = by_ref.get(external_id(party))  # a namesake a person marked as this party's
            if party.erp_id and party.erp_id.casefold() in by_key:
                own = by_key[party.erp_id.casefold()]
            named = list(by_name.get(clip(party.name, LIMITS["name"]), {}).values()) if party.match_by_name else []
            if own or named:
                found[party.source_id] = Matches(own=own, named=named)
        return found

    def create_party(self, party: Party) -> str:
        entity, key_field, _ = PARTIES[party.source_type]
        # A derived key is ours: an upsert stays idempotent if another run created it meanwhile.
        return self.client.put(entity, {**render_party(party), "AccountRef": external_id(party)})[key_field]

    def rename_party(self, party: Party, key: str) -> str:
        """A linked party renamed in ServiceTitan: the same customer / vendor, its name and
        contact brought up to date (never a second one)."""
        entity, key_field, _ = PARTIES[party.source_type]
        return self.client.put(entity, {**render_party(party), key_field: key}, update_only=True)[key_field]

    # --- documents -----------------------------------------------------------------------
    def _lookup(self, kind: DocumentKind, docs: list[Document]) -> dict[str, list[dict]]:
        return self.client.find_by_external_ref(kind.entity, [d.external_ref for d in docs],
                                                chunk_size=self.lookup_chunk, select=kind.lookup_fields())

    def find_documents(self, docs: list[Document]) -> dict[str, Existing]:
        found: dict[str, Existing] = {}
        for source_type, kind in KINDS.items():
            group = [d for d in docs if d.source_type == source_type]
            if not group:
                continue
            matches = self._lookup(kind, group)
            for doc in group:
                record = self._pick(kind, matches.get(doc.external_ref, []))
                if record is not None:
                    found[doc.source_id] = Existing(
                        key=kind.key(record), updatable=record.get("Status") in UNRELEASED,
                        total=str((kind.sign(record) * money(record.get(kind.amount_field))).quantize(CENT)))
        return found

    @staticmethod
    def _pick(kind: DocumentKind, records: list[dict]) -> dict | None:
        """The document carrying the reference. A bill's VendorRef is unique only per vendor and the
        vendor is not known here: a reference under several vendors is left to the ERP, which
        refuses a second bill with the same VendorRef for one vendor. Otherwise the first
        match; repeated references are reported by duplicate_external_refs."""
        if not records:
            return None
        if kind is BILL and len({str(r.get("Vendor")).casefold() for r in records}) > 1:
            return None
        return records[0]

    def create_document(self, doc: Document, refs: References) -> str:
        return self._save_and_release(doc.source_type, self._render(doc, refs))

    def update_document(self, doc: Document, existing: Existing, refs: References) -> str:
        kind = KINDS[doc.source_type]
        label, number = kind.split_key(existing.key)
        record = self._render(doc, refs)
        if record["Type"] != label:
            raise ConflictError(
                f"{doc.source_type} {doc.source_id}: {existing.key} is a {label} but the edited document is now a "
                f"{record['Type']}; delete the unreleased {existing.key} in Acumatica, then replay",
                system=SYSTEM)
        current = self.client.get(kind.entity, [label, number], expand=kind.details)
        replaced = [{"id": row["id"], "delete": True} for row in current.get(kind.details) or []]
        return self._save_and_release(doc.source_type, {**record, "id": current["id"],
                                                        kind.details: replaced + record[kind.details]})

    def _save_and_release(self, source_type: str, record: dict[str, Any]) -> str:
        """PUT the document and start its release; ``settle`` confirms the release. The key
        (type and reference number) is assigned at save and release keeps it, so nothing is read back."""
        kind = KINDS[source_type]
        saved = self.client.put(kind.entity, record, select="Type,ReferenceNbr")
        key = kind.key(saved)
        location = self.client.start_action(kind.entity, RELEASE_ACTIONS[kind.entity], saved["id"])
        if location is not None:
            with self._releasing_lock:
                self._releasing[(source_type, key)] = location
        return key

    def settle(self) -> dict[tuple[str, str], RemoteError]:
        """Wait for the releases started since the last call; returns (source type, key) -> why the
        release failed. Polling every action would cost a request per document or more: instead one
        look-up per ``lookup_chunk`` documents drops those already released, the earliest one still
        running is polled to its end (those started after it are then mostly done too), and the
        look-up repeats for the rest while it clears at least as many documents as it costs
        requests; past that (releases finishing one by one) the rest are polled one by one. A
        failed release surfaces when its own poll is reached."""
        with self._releasing_lock:
            pending, self._releasing = self._releasing, {}
        failures: dict[tuple[str, str], RemoteError] = {}

        def wait(source_type: str, kind: DocumentKind, key: str, url: str) -> None:
            try:
                self.client.wait_action(url, f"release of {kind.entity} {key}")
            except AuthError:
                raise
            except RemoteError as exc:
                failures[(source_type, key)] = exc

        for source_type, kind in KINDS.items():
            running = {key: url for (st, key), url in pending.items() if st == source_type}  # in start order
            rounds = 0
            while running:
                cost = -(-len(running) // self.lookup_chunk)
                cleared = self._released(kind, list(running))
                for key in cleared:
                    del running[key]
                rounds += 1
                if rounds > 2 and len(cleared) < cost:
                    break
                if running:
                    key = next(iter(running))
                    wait(source_type, kind, key, running.pop(key))
            for key, url in running.items():
                wait(source_type, kind, key, url)
        return failures

    def _released(self, kind: DocumentKind, keys: list[str]) -> set[str]:
        """Which of these documents are released (in the ledger) now; none when the look-up fails,
        as it is only a shortcut past polling."""
        numbers = sorted({kind.split_key(key)[1] for key in keys})
        released: set[str] = set()
        try:
            for flt in or_filters([f"ReferenceNbr eq {odata_string(n)}" for n in numbers], self.lookup_chunk):
                released |= {kind.key(row) for row in self.client.list(kind.entity, filter=flt,
                                                                       select="Type,ReferenceNbr,Status")
                             if row.get("Status") in IN_LEDGER}
        except AuthError:
            raise
        except RemoteError:
            return set()
        return released & set(keys)

    def _render(self, doc: Document, refs: References) -> dict[str, Any]:
        self.refuse_closed_period(doc)
        if isinstance(doc, ARInvoice):
            return render_invoice(doc, refs.customer(doc.customer_id))
        if isinstance(doc, APBill):
            return render_bill(doc, refs.vendor(doc.vendor_id))
        applied = [(*INVOICE.split_key(refs.invoice(a.invoice_id)), a.amount) for a in doc.applications]
        return render_payment(doc, refs.customer(doc.customer_id), applied)

    def duplicate_external_refs(self, docs: list[Document]) -> dict[str, list[str]]:
        duplicates: dict[str, list[str]] = {}
        for source_type, kind in KINDS.items():
            group = [d for d in docs if d.source_type == source_type]
            if not group:
                continue
            for ref, records in self._lookup(kind, group).items():
                per_party: dict[str, list[str]] = defaultdict(list)
                for r in records:  # a bill's VendorRef need only be unique per vendor
                    per_party[str(r.get(kind.party_field)).casefold() if kind is BILL else ""].append(kind.key(r))
                for keys in per_party.values():
                    if len(keys) > 1:
                        duplicates.setdefault(ref, []).extend(keys)
        return duplicates

    # --- changes made in the ERP ---------------------------------------------------------
    def changes_since(self, since: datetime) -> tuple[list[ErpChange], datetime]:
        """Invoices, payments and bills modified after ``since`` whose Status is now Voided, and
        customers / vendors created after ``since`` (CreatedDateTime), by LastModifiedDateTime.
        Deleted documents leave no trace here (the contract API has no tombstones): they are
        found by the existence check, posting.erp_changes.verify_posted_exist."""
        changes: list[ErpChange] = []
        mark = since
        flt = modified_after(since)
        for source_type, kind in KINDS.items():
            select = f"Type,ReferenceNbr,Status,LastModifiedDateTime,{kind.ref_field}"
            for record in self.client.iter_all(kind.entity, filter=flt, select=select):
                mark = max(mark, parse_stamp(record.get("LastModifiedDateTime")) or mark)
                if record.get("Status") == "Voided":
                    changes.append(ErpChange(
                        "document_voided", source_type, kind.key(record),
                        detail=f"{kind.entity} {kind.key(record)} (external reference "
                               f"{record.get(kind.ref_field) or 'none'}) was voided in Acumatica "
                               f"at {record.get('LastModifiedDateTime')}"))
        for source_type, (entity, key_field, name_field) in PARTIES.items():
            select = f"{key_field},{name_field},CreatedDateTime,LastModifiedDateTime"
            for record in self.client.iter_all(entity, filter=flt, select=select):
                mark = max(mark, parse_stamp(record.get("LastModifiedDateTime")) or mark)
                created = parse_stamp(record.get("CreatedDateTime"))
                if created is not None and created > since and record.get(key_field):
                    changes.append(ErpChange(
                        "party_created", source_type, record[key_field], name=record.get(name_field),
                        detail=f"{entity} {record[key_field]} {record.get(name_field)!r} was created in Acumatica "
                               f"at {record.get('CreatedDateTime')}"))
        return changes, mark

    # --- reconciliation ------------------------------------------------------------------
    def coding_key(self, coding: Coding) -> str:
        return coding.subaccount or DEFAULT_SUBACCOUNT

    def ledger_totals(self, day: date) -> dict[tuple[str, str], Decimal]:
        """Released documents dated ``day``: invoice and bill lines by subaccount (credit memos and
        debit adjustments negative), receipts under '*'. Unreleased documents are not in the ledger."""
        totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        for source_type, kind in (("invoice", INVOICE), ("bill", BILL)):
            for record in self._released_on(kind, day, expand="Details"):
                for key, amount in self._line_amounts(record):
                    totals[(source_type, key)] += kind.sign(record) * amount
        for record in self._released_on(PAYMENT, day):
            totals[("payment", "*")] += PAYMENT.sign(record) * money(record.get("PaymentAmount"))
        return {key: total.quantize(CENT) for key, total in totals.items()}

    def _released_on(self, kind: DocumentKind, day: date, expand: str | None = None) -> Iterable[dict]:
        for record in self.client.iter_all(kind.entity, filter=day_filter(kind.date_field, day, self.client.zone),
                                           expand=expand):
            if record.get("Status") in IN_LEDGER:
                yield record

    @staticmethod
    def _line_amounts(record: dict) -> list[tuple[str, Decimal]]:
        """(subaccount, amount) per detail line; tax the ERP calculated itself (TaxTotal) lands on
        the first line's subaccount, as the document has no other."""
        lines = [(row.get("Subaccount") or DEFAULT_SUBACCOUNT, money(row.get("Amount")))
                 for row in record.get("Details") or []]
        tax = money(record.get("TaxTotal"))
        if tax:
            lines.append((lines[0][0] if lines else DEFAULT_SUBACCOUNT, tax))
        return lines
