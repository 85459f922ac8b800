"""The Deltek Vantagepoint adapter of the posting layer: renders canonical parties as firms, and AR
invoices, cash receipts and AP bills as IN / CR / AP transaction files posted with PostTransFile;
finds what already exists by deterministic batch id and document number, in the ledger and in
unposted files.

An invoice's sales tax cannot sit on an IN file (its lines take revenue accounts only), so it is
posted as a companion journal entry (debit AR, credit the tax account, on the invoice's project)
with its own deterministic batch id; the invoice counts as complete once both are in the ledger.
Posted files cannot be deleted or changed in Vantagepoint: a person voids a document by posting a
reversing entry (same invoice / voucher / receipt number, opposite amounts) under another batch,
which ``changes_since`` reads from the ledger; firms created by hand are read by ModDate.
It decides nothing about whether to post (posting/protocol.py does) and speaks HTTP only through
resources/vantagepoint.py; errors surface unchanged as the shared RemoteError classes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from mappings.canonical import CENT, APBill, ARInvoice, CashReceipt, Coding, Line, Party
from mappings.connection import Connection
from posting.adapter import Document, ErpChange, Existing, ReferenceData, References
from posting.parties import Candidate, Matches
from posting.text_limits import clip
from resources.http import ConflictError, NotFoundError, RemoteError, ValidationError
from resources.vantagepoint import (
    SYSTEM,
    Firm,
    InvoiceLine,
    JournalLine,
    LedgerRow,
    Period,
    ReceiptLine,
    TransactionFile,
    VantagepointClient,
    VoucherLine,
    batch_id,
)
from resources.vault import Vault

ZERO = Decimal("0.00")
SECRETS = ("client_id", "client_secret", "username", "password")

# Field lengths: firm Name 255 (CL.Name), transaction line and file descriptions 40, TransComment
# 255 (as the reference and the simulator enforce). The firm address widths are not documented;
# these are conservative. References are never cut: a clipped reference could match another.
LIMITS = {"name": 255, "address_line": 255, "city": 50, "state": 50, "postal_code": 20, "email": 255,
          "line": 40, "file": 40, "comment": 255}
# The same widths by canonical text field (posting/text_limits.py): a document's description and a
# payment's memo become the TransComment, each line's description the line's Description.
TEXT_LIMITS = {**{k: LIMITS[k] for k in ("name", "address_line", "city", "state", "postal_code", "email", "line")},
               "description": LIMITS["comment"], "memo": LIMITS["comment"]}
# Vantagepoint wants its canonical country names, not ISO codes; unknown ones are left out.
COUNTRY_NAMES = {"us": "United States", "usa": "United States", "united states": "United States",
                 "united states of america": "United States", "ca": "Canada", "can": "Canada",
                 "canada": "Canada"}
TAX_BATCH = "tax"  # the companion journal entry's batch id is derived from 'tax:<invoice id>'
OWN_JE_PREFIX = "FLJE"  # batch_id('JE', …): fieldledger posts journal entries only for invoice tax


class UnappliedReceipt(RemoteError):
    """A payment not (entirely) applied to invoices: Vantagepoint needs an account for unapplied
    cash and the connection maps none. A mapping gap, not an ERP fault."""

    error_class = "mapping"


# --- how each document type lives in Vantagepoint --------------------------------------------

@dataclass(frozen=True)
class DocumentKind:
    """A canonical document type's transaction file: its type code, the ledger column carrying
    the external reference, and the sign of its implicit (SubType 'A') ledger row relative to
    the document total (AR and bank are debits, the AP liability a credit)."""

    trans_type: str
    ref_column: str
    implicit_sign: int


KINDS = {"invoice": DocumentKind("IN", "Invoice", 1), "payment": DocumentKind("CR", "RefNo", 1),
         "bill": DocumentKind("AP", "Invoice", -1)}


def owner_of(kind: DocumentKind, row: LedgerRow) -> str:
    """What a document number is unique within: an invoice's project, a voucher's vendor, a
    receipt's bank (check numbers repeat across banks)."""
    return {"IN": row.WBS1, "AP": row.Vendor, "CR": row.BankCode}[kind.trans_type].casefold()


def is_own_batch(kind: DocumentKind, batch: str) -> bool:
    """Batches fieldledger posts are 'FL' + type + 28 hex (resources.vantagepoint.batch_id); any
    other batch was entered by a person."""
    return bool(re.fullmatch(f"FL{kind.trans_type}[0-9A-F]{{28}}", batch.upper()))


def invoice_key(wbs1: str, number: str) -> str:
    """'IN 2026-DEN-HVC 000000007001': an AR invoice is its project and its (padded) number."""
    return f"IN {wbs1} {number}"


def split_invoice_key(key: str) -> tuple[str, str]:
    parts = key.split(" ", 2)
    if len(parts) != 3 or parts[0] != "IN":
        raise ValidationError(f"{key!r} is not a Vantagepoint invoice key ('IN <WBS1> <invoice>'); replay the "
                              "invoice so its key is recorded again", system=SYSTEM)
    return parts[1], parts[2]


def receipt_key(batch: str, ref_no: str) -> str:
    """'CR FLCR… PMT-8001': receipt numbers repeat in Vantagepoint (check numbers), batches do not."""
    return f"CR {batch} {ref_no}"


def voucher_key(vendor: str, invoice: str) -> str:
    """'AP 000001 B-6001': a voucher is its vendor and the vendor's invoice number."""
    return f"AP {vendor} {invoice}"


def row_key(kind: DocumentKind, row: LedgerRow) -> str:
    if kind.trans_type == "IN":
        return invoice_key(row.WBS1, row.Invoice)
    if kind.trans_type == "CR":
        return receipt_key(row.Batch, row.RefNo)
    return voucher_key(row.Vendor, row.Invoice)


def implicit_total(kind: DocumentKind, rows: Iterable[LedgerRow]) -> Decimal:
    """A posted document's total, from its implicit row(s)."""
    return sum((r.Amount for r in rows if r.SubType == "A"), ZERO) * kind.implicit_sign


# --- small pure helpers -----------------------------------------------------------------------

def country_name(country: str | None) -> str | None:
    return COUNTRY_NAMES.get((country or "").strip().casefold())


def months(start: date, end: date) -> Iterable[str]:
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield f"{year:04d}{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def closed_months(periods: list[Period]) -> set[str]:
    """'YYYYMM' of every calendar month that only closed periods cover. A month shared with an
    open period is not listed: the ERP refuses its closed part, with the period named."""
    states: dict[str, set[bool]] = defaultdict(set)
    for period in periods:
        if period.AccountPdStart and period.AccountPdEnd:
            for month in months(period.AccountPdStart.date(), period.AccountPdEnd.date()):
                states[month].add(period.closed)
    return {month for month, closed in states.items() if closed == {True}}


def _created(firm: Firm) -> datetime | None:
    """A firm's CreateDate (naive on the wire, read as UTC like every Vantagepoint date)."""
    raw = (firm.model_extra or {}).get("CreateDate")
    if raw in (None, ""):
        return None
    parsed = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def day_window(day: date) -> tuple[tuple, tuple]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return (("TransDate", ">=", start, "datetime"), ("TransDate", "<", start + timedelta(days=1), "datetime"))


def side(amount: Decimal) -> dict[str, Decimal]:
    """A journal line's debit or credit for a signed amount (debits positive)."""
    return {"debit": amount} if amount >= 0 else {"credit": -amount}


# --- rendering --------------------------------------------------------------------------------

def firm_fields(party: Party) -> dict[str, str]:
    fields = {"PrimaryAddress1": clip(party.address_line, LIMITS["address_line"]),
              "PrimaryCity": clip(party.city, LIMITS["city"]), "PrimaryState": clip(party.state, LIMITS["state"]),
              "PrimaryZip": clip(party.postal_code, LIMITS["postal_code"]),
              "PrimaryCountry": country_name(party.country), "PrimaryEmail": clip(party.email, LIMITS["email"])}
    return {k: v for k, v in fields.items() if v}


def is_tax(line: Line) -> bool:
    return line.kind == "tax"


def render_invoice(doc: ARInvoice, batch: str, period: int, refno_length: int = 12) -> TransactionFile:
    """The IN file: every non-tax line on its revenue account, on the invoice's project; a
    negative invoice (credit memo) carries negative amounts. The number is zero-padded to the
    tenant's RefnoLength."""
    tf = TransactionFile("IN", batch, period, description=clip(f"ServiceTitan invoice {doc.number}", LIMITS["file"]),
                         refno_length=refno_length)
    lines = [InvoiceLine(line.coding.account, line.amount, wbs2=line.coding.task or " ",
                         description=clip(line.description, LIMITS["line"]))
             for line in doc.lines if not is_tax(line)]
    tf.add_invoice(doc.number, doc.header.project or "", doc.date, lines,
                   comment=clip(doc.description, LIMITS["comment"]), due_date=doc.due_date)
    return tf


def render_invoice_tax(doc: ARInvoice, batch: str, period: int, number: str) -> TransactionFile | None:
    """The companion JE for an invoice's tax lines: credit each tax account, debit AR (reversed
    for a credit memo), all on the invoice's project. None when the invoice carries no tax."""
    taxes = [line for line in doc.lines if is_tax(line)]
    if not taxes:
        return None
    tf = TransactionFile("JE", batch, period, description=clip(f"Sales tax, invoice {doc.number}", LIMITS["file"]))
    lines = [JournalLine(line.coding.account, wbs1=line.coding.project or "", wbs2=line.coding.task or " ",
                         description=clip(line.description, LIMITS["line"]), **side(-line.amount)) for line in taxes]
    total = sum((line.amount for line in taxes), ZERO)
    lines.append(JournalLine(doc.header.account, wbs1=doc.header.project or "",
                             description=clip(f"Sales tax, invoice {doc.number}", LIMITS["line"]), **side(total)))
    tf.add_journal_entry(number, doc.date, lines, description=clip(f"Sales tax {doc.number}", LIMITS["file"]))
    return tf


def render_receipt(doc: CashReceipt, batch: str, period: int, bank: str,
                   applied_to: list[tuple[str, str, Decimal]], refno_length: int = 12) -> TransactionFile:
    """``applied_to``: (WBS1, invoice number, amount) per application, each a line on the AR
    account. Vantagepoint has no customer balance to leave the rest on."""
    applied = sum((amount for _, _, amount in applied_to), ZERO)
    if not applied_to or applied != doc.amount:
        raise UnappliedReceipt(
            f"payment {doc.source_id} ({doc.external_ref}): {doc.amount} received but {applied} applied to invoices; "
            "Vantagepoint posts a receipt only as applications to posted invoices here. Apply the payment in "
            "ServiceTitan, or post the unapplied part in Vantagepoint by hand and mark the record reviewed",
            system=SYSTEM)
    tf = TransactionFile("CR", batch, period, description=clip(f"ServiceTitan payment {doc.reference}",
                                                               LIMITS["file"]), default_bank=bank,
                          refno_length=refno_length)
    lines = [ReceiptLine(amount, doc.ar.account, wbs1=wbs1, invoice=number,
                         description=clip(f"{doc.payment_type} {doc.reference}", LIMITS["line"]))
             for wbs1, number, amount in applied_to]
    tf.add_receipt(doc.reference, doc.date, lines, bank_code=bank,
                   comment=clip(doc.memo or f"ServiceTitan payment {doc.reference}", LIMITS["comment"]))
    return tf


def render_voucher(doc: APBill, batch: str, period: int, vendor: str) -> TransactionFile:
    tf = TransactionFile("AP", batch, period, description=clip(f"ServiceTitan bill {doc.number}", LIMITS["file"]))
    lines = [VoucherLine(line.coding.account, line.amount, wbs1=line.coding.project or "",
                         wbs2=line.coding.task or " ", description=clip(line.description, LIMITS["line"]))
             for line in doc.lines]
    tf.add_voucher(vendor, doc.number, doc.date, lines, invoice_date=doc.date,
                   comment=clip(doc.description, LIMITS["comment"]))
    return tf


@dataclass(frozen=True)
class Rendered:
    key: str  # the document's ERP key once posted
    files: tuple[TransactionFile, ...]  # the document's file, then its companion (an invoice's tax JE)


# --- the adapter ------------------------------------------------------------------------------

class VantagepointAdapter:
    """posting.adapter.ErpAdapter for one Vantagepoint database; holds one client (one token)."""

    kind = "vantagepoint"
    coding_dimensions = ("project", "organization")
    parallelism = 4  # documents posted at once by the protocol (Vantagepoint documents no limit; be polite)

    def __init__(self, client: VantagepointClient, scope: str, ar_account: str):
        self.client = client
        self.scope = scope  # batch ids are derived from (scope, type, ServiceTitan id)
        self.ar_account = ar_account  # tells a tax JE's AR line from its tax lines in the ledger
        self._periods: list[Period] | None = None
        self._banks: dict[str, str] | None = None
        self._vendor_length: int | None = None

    @property
    def text_limits(self) -> dict[str, int]:
        """TEXT_LIMITS plus the references: invoice and receipt numbers are RefnoLength long at most,
        a voucher's vendor invoice number 50."""
        refno = self.client.refno_length
        return {**TEXT_LIMITS, "invoice_reference": refno, "payment_reference": refno, "bill_reference": 50}

    @classmethod
    def open(cls, conn: Connection, vault: Vault) -> VantagepointAdapter:
        erp = conn.erp
        missing = [k for k in SECRETS if k not in erp.secrets]
        if missing:
            raise ValueError(f"connection {conn.name}: erp.secrets lacks {', '.join(missing)}; name the vault "
                             f"secret for each (e.g. client_id: vp_client_id)")
        secrets = {k: vault.get(conn.name, erp.secrets[k]) for k in SECRETS}
        client = VantagepointClient(erp.base_url, erp.database, rate_per_second=erp.requests_per_second,
                                    ledger_paging=erp.ledger_paging, file_grouping=erp.file_grouping,
                                    refno_length=erp.refno_length, **secrets)
        # Scoped by the ServiceTitan tenant, not the file name: renaming a connection keeps its batches.
        return cls(client, scope=f"st{conn.servicetitan.tenant}", ar_account=conn.mapping.accounts.ar)

    def close(self) -> None:
        self.client.close()

    # --- cached settings -----------------------------------------------------------------
    def periods(self) -> list[Period]:
        if self._periods is None:
            self._periods = self.client.list_periods()
        return self._periods

    def bank_for(self, doc: CashReceipt) -> str:
        """The bank code whose GL account is the receipt's cash account (its own code first)."""
        if self._banks is None:
            banks = sorted(self.client.list_banks(), key=lambda b: (b.Code != b.Account, b.Code))
            self._banks = {}
            for bank in banks:
                self._banks.setdefault(bank.Account, bank.Code)
        code = self._banks.get(doc.cash.account)
        if code is None:
            raise ValidationError(
                f"payment {doc.source_id} ({doc.external_ref}): no Vantagepoint bank code posts to cash account "
                f"{doc.cash.account}; add one in Vantagepoint (Settings > Banks) or change "
                "mapping.accounts.cash_by_payment_type, then replay", system=SYSTEM, path="BankCode/CFGBANKS")
        return code

    def vendor_code(self, party: Party) -> str | None:
        """The derived id as Vantagepoint stores a vendor code (upper case, digits zero-padded),
        or None when it does not fit VendorLength (the ERP then numbers the vendor itself)."""
        if not party.erp_id or party.source_type != "vendor":
            return None
        if self._vendor_length is None:
            self._vendor_length = int(self.client.key_formats().get("VendorLength") or 6)
        code = party.erp_id.strip().upper()
        code = code.zfill(self._vendor_length) if code.isdigit() else code
        return code if len(code) <= self._vendor_length else None

    # --- reference data ------------------------------------------------------------------
    def reference_data(self) -> ReferenceData:
        self._periods = None  # re-read: a period may have been closed or reopened
        return ReferenceData(
            accounts={a.Account for a in self.client.list_accounts() if a.Status == "A"},
            projects={p.WBS1 for p in self.client.list_projects() if p.Status == "A"},
            organizations={o.Org for o in self.client.list_organizations() if o.Status == "A"},
            closed_periods=closed_months(self.periods()),
        )

    # --- parties -------------------------------------------------------------------------
    def party_matches(self, parties: list[Party]) -> dict[str, Matches]:
        """Per party: the vendor under its derived vendor code, and the firms with its exact name
        and role (when it is matched by name). Client firm numbers are autonumbered, so customers
        have no derived key and no field for our external id."""
        codes = [code for p in parties if (code := self.vendor_code(p))]
        by_code = {f.Vendor.upper(): f for f in self.client.find_firms_where("Vendor", codes) if f.is_vendor}
        names = [clip(p.name, LIMITS["name"]) for p in parties if p.match_by_name]
        by_name: dict[str, list[Firm]] = defaultdict(list)
        for firm in sorted(self.client.find_firms_where("Name", names), key=lambda f: f.ClientID):
            by_name[firm.Name.strip()].append(firm)
        found = {}
        for party in parties:
            firm = by_code.get(self.vendor_code(party) or "")
            own = self.party_key(party, firm) if firm is not None else None
            named = []
            if party.match_by_name:
                role = "is_vendor" if party.source_type == "vendor" else "is_client"
                named = [Candidate(key=self.party_key(party, f), name=f.Name.strip(), detail=f"firm {f.Client}")
                         for f in by_name.get(clip(party.name, LIMITS["name"]).strip(), []) if getattr(f, role)]
            if own or named:
                found[party.source_id] = Matches(own=own, named=named)
        return found

    @staticmethod
    def party_key(party: Party, firm: Firm) -> str:
        """Vendors by vendor code (what a voucher names); customers by ClientID."""
        return firm.Vendor if party.source_type == "vendor" else firm.ClientID

    def create_party(self, party: Party) -> str:
        """A firm of the party's own: a namesake is never reused here (the protocol decided that
        none is this party, posting/parties.py)."""
        vendor = party.source_type == "vendor"
        code = self.vendor_code(party)
        firm = self.client.create_firm(clip(party.name, LIMITS["name"]), client=not vendor, vendor=vendor,
                                       fields=firm_fields(party), create_fields={"Vendor": code} if code else None)
        return self.party_key(party, firm)

    def rename_party(self, party: Party, key: str) -> str:
        """A linked party renamed in ServiceTitan: the same firm, its name and address brought up
        to date (never a second firm)."""
        firm = self.client.find_vendor(key) if party.source_type == "vendor" else self.client.get_firm(key)
        if firm is None:
            raise NotFoundError(f"{party.source_type} {party.source_id}: firm {key} linked to it is no longer in "
                                "Vantagepoint; restore it, or unlink it, then replay", system=SYSTEM)
        self.client.update_firm(firm.ClientID, {"Name": clip(party.name, LIMITS["name"]), **firm_fields(party)})
        return key

    # --- documents -----------------------------------------------------------------------
    def batch(self, doc: Document) -> str:
        return batch_id(KINDS[doc.source_type].trans_type, doc.source_id, self.scope)

    def tax_batch(self, doc: ARInvoice) -> str:
        return batch_id("JE", f"{TAX_BATCH}:{doc.source_id}", self.scope)

    def reference(self, doc: Document) -> str:
        """The external reference as the ledger holds it (invoice numbers zero-padded)."""
        if isinstance(doc, ARInvoice):
            return self.client.invoice_number(doc.number)
        return doc.external_ref

    def _render(self, doc: Document, refs: References) -> Rendered:
        period = self.client.period_for(doc.date, self.periods())
        batch = self.batch(doc)
        if isinstance(doc, ARInvoice):
            tf = render_invoice(doc, batch, period, self.client.refno_length)
            tax = render_invoice_tax(doc, self.tax_batch(doc), period, tf.master_keys[0])
            refs.customer(doc.customer_id)  # the client comes from the project; the customer must still exist
            return Rendered(invoice_key(doc.header.project or "", tf.master_keys[0]), (tf, tax) if tax else (tf,))
        if isinstance(doc, APBill):
            vendor = refs.vendor(doc.vendor_id)
            return Rendered(voucher_key(vendor, doc.number), (render_voucher(doc, batch, period, vendor),))
        refs.customer(doc.customer_id)
        applied = [(*split_invoice_key(refs.invoice(a.invoice_id)), a.amount) for a in doc.applications]
        return Rendered(receipt_key(batch, doc.reference),
                        (render_receipt(doc, batch, period, self.bank_for(doc), applied, self.client.refno_length),))

    def create_document(self, doc: Document, refs: References) -> str:
        rendered = self._render(doc, refs)
        for tf in rendered.files:
            self.client.submit(tf)  # looks first: a repeat is recognised, never posted twice
        return rendered.key

    def update_document(self, doc: Document, existing: Existing, refs: References) -> str:
        """Finish or replace what an earlier attempt left unposted: submit replaces an unposted
        file whose content differs. A document already in the ledger with other amounts is not
        touched (posted files cannot change): that is a conflict for a person."""
        rendered = self._render(doc, refs)
        main = rendered.files[0]
        kind = KINDS[doc.source_type]
        posted = (self.client.find_posted_invoice(main.master_keys[0], doc.header.project)
                  if isinstance(doc, ARInvoice) else self.client.ledger_by_batch(kind.trans_type, main.batch))
        if posted and implicit_total(kind, posted) != main.total:
            raise ConflictError(
                f"{doc.source_type} {doc.source_id}: {existing.key} is posted in Vantagepoint for "
                f"{implicit_total(kind, posted)}, the edited document is {main.total}; posted files cannot change: "
                "adjust it in Vantagepoint, then mark the record reviewed", system=SYSTEM)
        for tf in rendered.files:
            self.client.submit(tf)
        return rendered.key

    def settle(self) -> dict[tuple[str, str], Exception]:
        """Nothing finishes later: submit returns once the transaction file is posted."""
        return {}

    def _ledger_by_reference(self, kind: DocumentKind, docs: list[Document]) -> dict[str, list[LedgerRow]]:
        """Rows by reference; an invoice is looked up padded and as given (tenants differ) and
        filed under its padded form."""
        invoices = kind.trans_type == "IN"
        refs = [form for d in docs for form in (self.client.invoice_forms(d.number) if invoices
                                                 else [self.reference(d)])]
        rows = self.client.ledger_where(kind.trans_type, kind.ref_column, refs)
        by_ref: dict[str, list[LedgerRow]] = defaultdict(list)
        for row in rows:
            value = str(getattr(row, kind.ref_column))
            by_ref[(self.client.invoice_number(value) if invoices else value).casefold()].append(row)
        return by_ref

    def _own_rows(self, doc: Document, rows: list[LedgerRow]) -> list[LedgerRow]:
        """The ledger rows that stand for this document: an invoice's number on its project (any
        batch: a posting under another batch is the same invoice); otherwise our batch's rows. A
        voucher found only under another batch is left to submit(), which knows the vendor."""
        if isinstance(doc, ARInvoice):
            project = (doc.header.project or "").casefold()
            mine = [r for r in rows if r.WBS1.casefold() == project]
            ours = [r for r in mine if r.Batch.upper() == self.batch(doc)]
            first = ours[0].Batch if ours else (mine[0].Batch if mine else "")
            return [r for r in mine if r.Batch == first]
        return [r for r in rows if r.Batch.upper() == self.batch(doc)]

    def find_documents(self, docs: list[Document]) -> dict[str, Existing]:
        found: dict[str, Existing] = {}
        for source_type, kind in KINDS.items():
            group = [d for d in docs if d.source_type == source_type]
            if not group:
                continue
            by_ref = self._ledger_by_reference(kind, group)
            unposted = self.client.unposted_files(kind.trans_type)
            taxes = self._tax_state([d for d in group if isinstance(d, ARInvoice)])
            for doc in group:
                rows = self._own_rows(doc, by_ref.get(self.reference(doc).casefold(), []))
                tax_posted, tax_total = taxes.get(doc.source_id, (True, ZERO))
                if rows:
                    found[doc.source_id] = Existing(key=row_key(kind, rows[0]), updatable=not tax_posted,
                                                    total=str((implicit_total(kind, rows) + tax_total).quantize(CENT)))
                elif self.batch(doc) in unposted:
                    found[doc.source_id] = Existing(key=self._unposted_key(doc), updatable=True,
                                                    total=str(unposted[self.batch(doc)].quantize(CENT)))
        return found

    def _tax_state(self, invoices: list[ARInvoice]) -> dict[str, tuple[bool, Decimal]]:
        """source_id -> (tax JE in the ledger, its AR amount) for invoices that carry tax."""
        taxed = {self.tax_batch(d): d for d in invoices if any(is_tax(line) for line in d.lines)}
        if not taxed:
            return {}
        rows = self.client.ledger_where("JE", "Batch", list(taxed))
        state = {d.source_id: (False, ZERO) for d in taxed.values()}
        for row in rows:
            doc = taxed.get(row.Batch.upper())
            if doc is not None:
                posted, total = state[doc.source_id]
                state[doc.source_id] = (True, total + (row.Amount if row.Account == self.ar_account else ZERO))
        return state

    def _unposted_key(self, doc: Document) -> str:
        """A provisional key for a document saved but not posted (update_document returns the final one)."""
        if isinstance(doc, ARInvoice):
            return invoice_key(doc.header.project or "", self.reference(doc))
        if isinstance(doc, CashReceipt):
            return receipt_key(self.batch(doc), doc.reference)
        return f"AP file {self.batch(doc)}"

    def duplicate_external_refs(self, docs: list[Document]) -> dict[str, list[str]]:
        """References posted under more than one batch: an invoice number per project, a voucher's
        invoice number per vendor, a receipt number (check numbers repeat; worth a look)."""
        duplicates: dict[str, list[str]] = {}
        for source_type, kind in KINDS.items():
            group = [d for d in docs if d.source_type == source_type]
            if not group:
                continue
            by_ref = self._ledger_by_reference(kind, group)
            refs = {self.reference(d).casefold(): d.external_ref for d in group}
            for ref, rows in by_ref.items():
                batches: dict[str, dict[str, str]] = defaultdict(dict)
                for row in rows:
                    owner = {"IN": row.WBS1, "AP": row.Vendor}.get(kind.trans_type, "")
                    batches[owner.casefold()].setdefault(row.Batch, f"{row_key(kind, row)} (batch {row.Batch})")
                for keys in batches.values():
                    if len(keys) > 1:
                        duplicates.setdefault(refs.get(ref, ref), []).extend(keys.values())
        return duplicates

    # --- changes made in the ERP ---------------------------------------------------------
    def changes_since(self, since: datetime) -> tuple[list[ErpChange], datetime]:
        """Firms created from ``since`` on (ModDate window, CreateDate checked), and documents
        reversed by an entry posted from ``since`` on: a batch that is not fieldledger's, posted
        on a document number fieldledger posted, that brings the document's total to zero."""
        changes: list[ErpChange] = []
        mark = since
        for firm in self.client.list_firms(modified_since=since):
            mark = max(mark, firm.ModDate or mark)
            created = _created(firm)
            if created is None or created < since:
                continue
            stamp = created.isoformat(timespec="seconds")
            if firm.is_client:
                changes.append(ErpChange("party_created", "customer", firm.ClientID, name=firm.Name.strip(),
                                         detail=f"client firm {firm.Client or firm.ClientID} {firm.Name.strip()!r} "
                                                f"was created in Vantagepoint at {stamp}"))
            if firm.is_vendor and firm.Vendor:
                changes.append(ErpChange("party_created", "vendor", firm.Vendor, name=firm.Name.strip(),
                                         detail=f"vendor {firm.Vendor} {firm.Name.strip()!r} was created in "
                                                f"Vantagepoint at {stamp}"))
        for source_type, kind in KINDS.items():
            recent = self.client.ledger(kind.trans_type, since)
            for row in recent:
                mark = max(mark, row.PostDate or mark)
            changes += self._reversals(source_type, kind, recent)
        return changes, mark

    def _reversals(self, source_type: str, kind: DocumentKind, recent: list[LedgerRow]) -> list[ErpChange]:
        """Documents fieldledger posted that a recent foreign batch reverses to a zero total."""
        foreign = {r.Batch for r in recent if not is_own_batch(kind, r.Batch)}
        refs = {str(getattr(r, kind.ref_column)) for r in recent if r.Batch in foreign and getattr(r, kind.ref_column)}
        if not refs:
            return []
        groups: dict[tuple[str, str], list[LedgerRow]] = defaultdict(list)
        for row in self.client.ledger_where(kind.trans_type, kind.ref_column, sorted(refs)):
            groups[(owner_of(kind, row), str(getattr(row, kind.ref_column)).casefold())].append(row)
        changes = []
        for rows in groups.values():
            reversing = sorted({r.Batch for r in rows} & foreign)
            originals = [r for r in rows if r.Batch not in foreign]
            if not reversing or not originals or implicit_total(kind, rows) != 0:
                continue
            posted = max((r.PostDate for r in rows if r.Batch in reversing and r.PostDate), default=None)
            when = f" on {posted.isoformat(timespec='seconds')}" if posted else ""
            for key in dict.fromkeys(row_key(kind, r) for r in originals):
                changes.append(ErpChange(
                    "document_voided", source_type, key,
                    detail=f"{key} was reversed in Vantagepoint by batch {', '.join(reversing)} posted{when}; "
                           "its ledger total is now 0.00"))
        return changes

    # --- reconciliation ------------------------------------------------------------------
    def coding_key(self, coding: Coding) -> str:
        return coding.project or "(no project)"

    def ledger_totals(self, day: date) -> dict[tuple[str, str], Decimal]:
        """Documents dated ``day`` in the ledger: invoice lines by project (revenue credits, plus the
        tax lines of our tax JEs; credit memos negative), voucher lines by project, receipts by
        their bank debit under '*'. Unposted files are not in the ledger."""
        totals: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
        window = day_window(day)
        for row in self.client.ledger("IN", None, None, *window):
            if row.SubType != "A":
                totals[("invoice", row.WBS1 or "(no project)")] -= row.Amount
        for row in self.client.ledger("JE", None, None, *window):
            if row.Batch.upper().startswith(OWN_JE_PREFIX) and row.Account != self.ar_account:
                totals[("invoice", row.WBS1 or "(no project)")] -= row.Amount
        for row in self.client.ledger("AP", None, None, *window):
            if row.SubType != "A":
                totals[("bill", row.WBS1 or "(no project)")] += row.Amount
        for row in self.client.ledger("CR", None, None, *window):
            if row.SubType == "A":
                totals[("payment", "*")] += row.Amount
        return {key: total.quantize(CENT) for key, total in totals.items()}
