"""Write rules of the simulated tenant: PUT upsert (merge, defaults, validation with Acumatica's
field messages, document numbering and totals), DELETE, and the release workflow
(On Hold -> Balanced -> released Open -> Closed; payments reduce invoice balances), and voiding
(the VoidPayment action; a person's Void on an invoice or bill) -> Voided.

Inferred behaviour (reference marks it [I]) is configurable through ``Rules.settings`` (from
SimOptions.options) with the stricter default: documents are held on entry unless Hold=false is
sent (hold_on_entry), AP bills need a unique VendorRef per vendor (require_vendor_ref,
duplicate_vendor_ref_error), unknown JSON properties are refused (reject_unknown_fields), lines
must carry Account and Subaccount (no defaulting from items), and field lengths are capped per
FIELD_LIMITS (DAC lengths as known for 24.x; override with options["field_limits"]).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from simulators.acumatica.periods import period_id, refusal
from simulators.acumatica.schema import ENTITIES, EntityDef, local_midnight
from simulators.acumatica.store import DOC_TYPES, OPEN_STATUSES, Tenant, normalize_type

CENT = Decimal("0.01")
FIELD_LIMITS: dict[str, dict[str, int]] = {
    "Customer": {"CustomerID": 30, "CustomerName": 255, "AccountRef": 30, "Email": 255},
    "Vendor": {"VendorID": 30, "VendorName": 255, "LegalName": 255, "AccountRef": 30},
    "Invoice": {"Description": 256, "CustomerOrder": 40},
    "InvoiceDetail": {"TransactionDescription": 256},
    "Payment": {"Description": 256, "PaymentRef": 40, "ExternalRef": 40},
    "Bill": {"Description": 256, "VendorRef": 40},
    "BillDetail": {"TransactionDescription": 256},
    "Account": {"AccountCD": 10, "Description": 60},
    "Subaccount": {"SubaccountCD": 30, "Description": 60},
}
CACHE_NAMES = {"Customer": "Customer", "Vendor": "Vendor", "Invoice": "AR Invoice", "Payment": "AR Payment",
               "Bill": "AP Invoice", "Account": "Account", "Subaccount": "Subaccount",
               "PaymentMethod": "Payment Method", "Ledger": "Ledger"}


def money(v: Decimal | None) -> Decimal:
    return (v or Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


class ApiError(Exception):
    """An answer other than 200: status + HttpError body (or the 422 echo, built by the app)."""

    def __init__(self, status: int, message: str, exception_type: str | None = None, exception_message: str | None = None):
        super().__init__(exception_message or message)
        self.status = status
        self.body: dict[str, Any] = {"message": message}
        if exception_type:
            self.body.update({"exceptionMessage": exception_message, "exceptionType": exception_type,
                              "stackTrace": None})


def not_found() -> ApiError:
    return ApiError(500, "An error has occurred.", "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException",
                    "No entity satisfies the condition.")


def px_error(message: str, exception_type: str = "PX.Data.PXException") -> ApiError:
    return ApiError(500, "An error has occurred.", exception_type, message)


class Invalid(Exception):
    """422: the candidate record plus errors {field: msg, detail: {row: {field: msg}}, __entity__}."""

    def __init__(self, edef: EntityDef, record: dict, errors: dict):
        super().__init__("validation failed")
        self.edef = edef
        self.record = record
        self.errors = errors


@dataclass
class Operation:
    id: str
    entity: str
    action: str
    record_id: str
    done_at: datetime
    error: str | None = None
    applied: bool = False


@dataclass
class Rules:
    tenant: Tenant
    now: Any  # () -> datetime
    settings: dict = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    zone: Any = UTC  # the API user's time zone: "today" and a date's period are its calendar days

    def today(self) -> datetime:
        return local_midnight(self.now().astimezone(self.zone).date(), self.zone)

    def setting(self, name: str, default: Any) -> Any:
        return self.settings.get(name, default)

    def limits(self, entity: str) -> dict[str, int]:
        merged = dict(FIELD_LIMITS.get(entity, {}))
        merged.update((self.settings.get("field_limits") or {}).get(entity, {}))
        return merged

    # --- PUT ----------------------------------------------------------------------------------
    def put(self, entity: str, data: dict, if_match: str | None, if_none_match: str | None) -> dict:
        edef = ENTITIES[entity]
        t = self.tenant
        with t.lock:
            self.settle()
            existing = None
            if data.get("id"):
                existing = t.by_id(entity, data["id"])
                if existing is None:
                    raise not_found()
            elif edef.keys and all(data.get(k) not in (None, "") for k in edef.keys):
                existing = t.by_keys(entity, [data[k] for k in edef.keys])
                if existing is None and entity in DOC_TYPES and data.get("ReferenceNbr"):
                    raise not_found()  # documents are auto-numbered: a given number must exist
            if if_none_match == "*" and existing is not None:
                raise ApiError(412, "The record already exists.")
            if if_match == "*" and existing is None:
                raise ApiError(412, "The record does not exist.")
            candidate = copy.deepcopy(existing) if existing else {"id": str(uuid.uuid4())}
            errors: dict[str, Any] = {}
            if existing and entity in DOC_TYPES and existing.get("Status") not in OPEN_STATUSES:
                changed = [k for k, v in data.items() if k in edef.fields and k not in edef.read_only
                           and k not in edef.keys and v != existing.get(k)]
                changed += [k for k in data if k in edef.details and data[k]]
                if changed:
                    for k in changed:
                        errors[k] = (f"The document is {existing['Status'].lower()} and cannot be edited: "
                                     f"'{edef.display(k)}' is read-only once released.")
                    errors["__entity__"] = (f"Updating '{CACHE_NAMES[entity]}' record raised at least one error. "
                                            f"Please review the errors.")
                    self._merge(edef, candidate, data)
                    raise Invalid(edef, candidate, errors)
            self._merge(edef, candidate, data)
            if existing is not None and entity in DOC_TYPES:
                self._recalculate(edef, candidate, data)
            getattr(self, f"_prepare_{entity.lower()}", self._prepare_generic)(edef, candidate, errors, existing)
            self._check_lengths(edef, candidate, errors)
            if errors:
                verb = "Updating" if existing else "Inserting"
                errors["__entity__"] = (f"{verb} '{CACHE_NAMES.get(entity, entity)}' record raised at least one "
                                        f"error. Please review the errors.")
                if entity in DOC_TYPES and not candidate.get("ReferenceNbr"):
                    candidate["ReferenceNbr"] = "<NEW>"
                raise Invalid(edef, candidate, errors)
            self.number(entity, candidate)
            now = self.now()
            if existing is None:
                if "CreatedDateTime" in edef.fields:
                    candidate["CreatedDateTime"] = now
                if "NoteID" in edef.fields:
                    candidate["NoteID"] = candidate["id"]
            candidate["LastModifiedDateTime"] = now
            for name in edef.details:
                for row in candidate.get(name) or []:
                    row.setdefault("id", str(uuid.uuid4()))
                    if "LastModifiedDateTime" in edef.details[name].fields:
                        row["LastModifiedDateTime"] = now
            t.records[entity][candidate["id"]] = candidate
            return candidate

    def _merge(self, edef: EntityDef, target: dict, data: dict) -> None:
        for name, value in data.items():
            if name in ("id", "delete"):
                continue
            if name in edef.fields:
                if name not in edef.read_only:
                    target[name] = value
            elif name in edef.linked:
                sub = target.setdefault(name, {})
                self._merge(edef.linked[name], sub, value)
            elif name in edef.details:
                rows = target.setdefault(name, [])
                for row in value:
                    match = next((r for r in rows if row.get("id") and r.get("id") == row["id"]), None)
                    if row.get("delete"):
                        if match is not None:
                            rows.remove(match)
                        continue
                    if match is None:
                        match = {"id": row.get("id") or str(uuid.uuid4())}
                        rows.append(match)
                    self._merge(edef.details[name], match, row)

    @staticmethod
    def _recalculate(edef: EntityDef, record: dict, data: dict) -> None:
        """An update that does not send a computed amount gets it recomputed, as the graph does:
        the header Amount when it is not sent, and on each line sent without Amount its Amount
        (and the extended amount, unless sent, when quantity or unit price changed)."""
        if "Amount" in edef.fields and "Amount" not in data:
            record["Amount"] = None
        for dname, ddef in edef.details.items():
            price = next((f for f in ("UnitPrice", "UnitCost") if f in ddef.fields), None)
            extended = next((f for f in ("ExtendedPrice", "ExtendedCost") if f in ddef.fields), None)
            if price is None or extended is None:
                continue
            sent = {row.get("id"): row for row in data.get(dname) or [] if row.get("id")}
            for row in record.get(dname) or []:
                given = sent.get(row.get("id"))
                if given is None:
                    continue
                if "Amount" not in given:
                    row["Amount"] = None
                if extended not in given and ("Qty" in given or price in given):
                    row[extended] = None

    def _check_lengths(self, edef: EntityDef, record: dict, errors: dict) -> None:
        for fname, limit in self.limits(edef.name).items():
            v = record.get(fname)
            if isinstance(v, str) and len(v) > limit and fname not in errors:
                errors[fname] = (f"The length of '{edef.display(fname)}' ({len(v)} characters) exceeds the "
                                 f"maximum of {limit} characters.")
        for dname, ddef in edef.details.items():
            for i, row in enumerate(record.get(dname) or []):
                for fname, limit in self.limits(ddef.name).items():
                    v = row.get(fname)
                    if isinstance(v, str) and len(v) > limit:
                        errors.setdefault(dname, {}).setdefault(i, {})[fname] = (
                            f"The length of '{ddef.display(fname)}' ({len(v)} characters) exceeds the "
                            f"maximum of {limit} characters.")

    # --- per-entity preparation: defaults, derived values, validation -------------------------
    def _prepare_generic(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        for k in edef.keys:
            if rec.get(k) in (None, ""):
                errors[k] = f"'{edef.display(k)}' cannot be empty."
            elif existing is None and self.tenant.by_keys(edef.name, [rec.get(k)]) is not None:
                errors[k] = f"Another record with the key '{rec[k]}' already exists."

    def _prepare_customer(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        self._prepare_party(edef, rec, errors, existing, "CustomerID", "CustomerName", "C", 1000)

    def _prepare_vendor(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        self._prepare_party(edef, rec, errors, existing, "VendorID", "VendorName", "V", 1000)
        for fname, entity in (("APAccount", "Account"), ("APSubaccount", "Subaccount")):
            if rec.get(fname) and not self.tenant.exists(entity, rec[fname]):
                errors[fname] = f"'{entity}' cannot be found in the system."

    def _prepare_party(self, edef, rec, errors, existing, key, name_field, prefix, start) -> None:
        if not rec.get(name_field) or not str(rec[name_field]).strip():
            errors[name_field] = f"'{edef.display(name_field)}' cannot be empty."
        if existing is None and not rec.get(key):
            rec[key] = self.tenant.next_number(edef.name, start, prefix=prefix)
        rec.setdefault("Status", "Active")
        rec.setdefault("CurrencyID", "USD")

    def _doc_header(self, entity: str, rec: dict, errors: dict) -> None:
        label = normalize_type(entity, rec.get("Type") or next(iter(DOC_TYPES[entity])))
        if label is None:
            errors["Type"] = f"'{rec.get('Type')}' is not a valid value for 'Type'."
        else:
            rec["Type"] = label
        today = self.today()
        if rec.get("Date") is None and "Date" in ENTITIES[entity].fields:
            rec["Date"] = today
        if "PostPeriod" in ENTITIES[entity].fields and rec.get("Date") and not rec.get("PostPeriod"):
            rec["PostPeriod"] = period_id(rec["Date"].astimezone(self.zone).date())
        if "DueDate" in ENTITIES[entity].fields and rec.get("DueDate") is None and rec.get("Date"):
            rec["DueDate"] = rec["Date"] + timedelta(days=30)
        if rec.get("Hold") is None:
            rec["Hold"] = bool(self.setting("hold_on_entry", True))
        rec["Status"] = "On Hold" if rec["Hold"] else "Balanced"
        if "CurrencyID" in ENTITIES[entity].fields:
            rec.setdefault("CurrencyID", "USD")

    def _check_period(self, entity: str, rec: dict, errors: dict) -> None:
        """A document dated in a financial period closed for its module is refused (periods.py)."""
        if rec.get("Status") not in OPEN_STATUSES:
            return
        where = "PostPeriod" if "PostPeriod" in ENTITIES[entity].fields else "ApplicationDate"
        day = rec.get("Date") if where == "PostPeriod" else rec.get("ApplicationDate")
        pid = rec.get("PostPeriod") if where == "PostPeriod" else None
        if not pid and day is not None:
            pid = period_id(day.astimezone(self.zone).date())
        if not pid:
            return
        company = self.tenant.contractor.key.split("-")[0].upper()
        why = refusal(self.tenant.records["FinancialPeriod"], pid, "AP" if entity == "Bill" else "AR", company)
        if why and where not in errors:
            errors[where] = why

    def _lines(self, ddef: EntityDef, rows: list[dict], errors: dict, dname: str, price: str, extended: str,
               default_branch: str | None) -> Decimal:
        t = self.tenant
        total = Decimal(0)
        for i, row in enumerate(rows):
            err: dict[str, str] = {}
            for fname, entity in (("Account", "Account"), ("Subaccount", "Subaccount")):
                if row.get(fname) in (None, ""):
                    err[fname] = f"'{fname}' cannot be empty."
                elif not t.exists(entity, row[fname]):
                    err[fname] = f"'{entity}' cannot be found in the system."
            if row.get("Branch") in (None, ""):
                row["Branch"] = default_branch
            elif not t.branch_exists(row["Branch"]):
                err["Branch"] = "'Branch' cannot be found in the system."
            qty = row.get("Qty")
            if qty is None:
                qty = row["Qty"] = Decimal(1)
            unit, ext = row.get(price), row.get(extended)
            if unit is None and ext is None and row.get("Amount") is not None:
                ext = row["Amount"] + (row.get("DiscountAmount") or 0)
            if unit is not None and ext is None:
                ext = money(qty * unit)
            elif ext is not None and unit is None:
                unit = (ext / qty).quantize(Decimal("0.000001")) if qty else Decimal(0)
            elif unit is not None and ext is not None and money(qty * unit) != money(ext):
                err[extended] = (f"The extended amount {money(ext)} does not equal quantity {qty} x unit "
                                 f"amount {unit} = {money(qty * unit)}.")
            ext = money(ext)
            row[price], row[extended] = unit if unit is not None else Decimal(0), ext
            amount = ext - money(row.get("DiscountAmount"))
            if row.get("Amount") is not None and money(row["Amount"]) != amount and extended not in err:
                err["Amount"] = (f"The line amount {money(row['Amount'])} does not equal the extended amount less "
                                 f"the discount ({amount}).")
            row["Amount"] = amount
            total += amount
            if "LineNbr" in ddef.fields:
                row["LineNbr"] = i + 1
            if err:
                errors.setdefault(dname, {})[i] = err
        return total

    def _taxes(self, rec: dict, errors: dict) -> Decimal:
        total = Decimal(0)
        for i, row in enumerate(rec.get("TaxDetails") or []):
            if not row.get("TaxID"):
                errors.setdefault("TaxDetails", {})[i] = {"TaxID": "'Tax ID' cannot be empty."}
            row["TaxAmount"] = money(row.get("TaxAmount"))
            total += row["TaxAmount"]
        if rec.get("TaxTotal") is not None and money(rec["TaxTotal"]) != total and rec.get("TaxDetails"):
            errors["TaxTotal"] = f"The tax total {money(rec['TaxTotal'])} does not equal the sum of the tax lines ({total})."
        rec["TaxTotal"] = total
        return total

    def _control_total(self, rec: dict, computed: Decimal, errors: dict) -> None:
        if rec.get("Amount") is not None and money(rec["Amount"]) != computed:
            errors["Amount"] = (f"The document is out of balance: the amount {money(rec['Amount'])} does not "
                                f"equal the total of the lines and taxes ({computed}).")
            return
        rec["Amount"] = computed
        rec["Balance"] = computed

    def _prepare_invoice(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        t = self.tenant
        self._doc_header("Invoice", rec, errors)
        if not rec.get("Customer"):
            errors["Customer"] = "'Customer' cannot be empty."
        elif not t.exists("Customer", rec["Customer"]):
            errors["Customer"] = "'Customer' cannot be found in the system."
        if rec.get("LinkBranch") in (None, ""):
            rec["LinkBranch"] = t.branches[0]["BranchID"]
        elif not t.branch_exists(rec["LinkBranch"]):
            errors["LinkBranch"] = "'Branch' cannot be found in the system."
        if rec.get("LinkARAccount") in (None, ""):
            rec["LinkARAccount"] = "12000"
        elif not t.exists("Account", rec["LinkARAccount"]):
            errors["LinkARAccount"] = "'AR Account' cannot be found in the system."
        rec.setdefault("LocationID", "MAIN")
        rec.setdefault("Terms", "30D")
        self._check_period("Invoice", rec, errors)
        lines = self._lines(INVOICE_DETAIL, rec.get("Details") or [], errors, "Details", "UnitPrice",
                            "ExtendedPrice", rec.get("LinkBranch"))
        self._control_total(rec, lines + self._taxes(rec, errors), errors)
        if existing is None:
            rec["ReferenceNbr"] = None

    def _prepare_bill(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        t = self.tenant
        self._doc_header("Bill", rec, errors)
        if not rec.get("Vendor"):
            errors["Vendor"] = "'Vendor' cannot be empty."
        elif not t.exists("Vendor", rec["Vendor"]):
            errors["Vendor"] = "'Vendor' cannot be found in the system."
        if rec.get("BranchID") in (None, ""):
            rec["BranchID"] = t.branches[0]["BranchID"]
        elif not t.branch_exists(rec["BranchID"]):
            errors["BranchID"] = "'Branch' cannot be found in the system."
        if not rec.get("VendorRef") and self.setting("require_vendor_ref", True) and rec.get("Type") == "Bill":
            errors["VendorRef"] = "'Vendor Ref.' cannot be empty."
        rec.setdefault("LocationID", "MAIN")
        rec.setdefault("Terms", "30D")
        self._check_period("Bill", rec, errors)
        lines = self._lines(BILL_DETAIL, rec.get("Details") or [], errors, "Details", "UnitCost", "ExtendedCost",
                            rec.get("BranchID"))
        self._control_total(rec, lines + self._taxes(rec, errors), errors)
        if existing is None:
            rec["ReferenceNbr"] = None
        if (not errors and rec.get("VendorRef") and self.setting("duplicate_vendor_ref_error", True)):
            for other in t.records["Bill"].values():
                if (other["id"] != rec["id"] and other.get("Vendor", "").casefold() == str(rec["Vendor"]).casefold()
                        and (other.get("VendorRef") or "").casefold() == rec["VendorRef"].casefold()):
                    raise px_error(
                        f"Inserting 'AP Invoice' record raised at least one error. Please review the errors. "
                        f"Vendor Ref.: The document with the same vendor reference number ('{rec['VendorRef']}') "
                        f"already exists: {other['Type']} {other['ReferenceNbr']}.",
                        "PX.Api.ContractBased.OutcomeEntityHasErrorsException")

    def _prepare_payment(self, edef: EntityDef, rec: dict, errors: dict, existing: dict | None) -> None:
        t = self.tenant
        self._doc_header("Payment", rec, errors)
        if rec.get("ApplicationDate") is None:
            rec["ApplicationDate"] = self.today()
        self._check_period("Payment", rec, errors)
        customer = rec.get("CustomerID")
        if not customer:
            errors["CustomerID"] = "'Customer' cannot be empty."
        elif not t.exists("Customer", customer):
            errors["CustomerID"] = "'Customer' cannot be found in the system."
        branch = rec.get("Branch") or rec.get("BranchID") or t.branches[0]["BranchID"]
        if not t.branch_exists(branch):
            errors["Branch" if rec.get("Branch") else "BranchID"] = "'Branch' cannot be found in the system."
        rec["Branch"] = rec["BranchID"] = branch
        method = t.by_keys("PaymentMethod", [rec["PaymentMethod"]]) if rec.get("PaymentMethod") else None
        if not rec.get("PaymentMethod"):
            errors["PaymentMethod"] = "'Payment Method' cannot be empty."
        elif method is None:
            errors["PaymentMethod"] = "'Payment Method' cannot be found in the system."
        allowed = [c["CashAccount"] for c in (method or {}).get("AllowedCashAccounts") or []]
        if rec.get("CashAccount") in (None, "") and allowed:
            rec["CashAccount"] = allowed[0]
        elif rec.get("CashAccount") in (None, ""):
            errors["CashAccount"] = "'Cash Account' cannot be empty."
        elif not t.cash_account_exists(rec["CashAccount"]):
            errors["CashAccount"] = "'Cash Account' cannot be found in the system."
        elif method is not None and rec["CashAccount"] not in allowed:
            errors["CashAccount"] = (f"The cash account '{rec['CashAccount']}' is not allowed for the payment "
                                     f"method '{rec['PaymentMethod']}'.")
        applied = Decimal(0)
        for i, row in enumerate(rec.get("DocumentsToApply") or []):
            err: dict[str, str] = {}
            doc_type = normalize_type("Invoice", row.get("DocType") or "Invoice")
            invoice = t.by_keys("Invoice", [doc_type or "", row.get("ReferenceNbr") or ""]) if doc_type else None
            if doc_type is None:
                err["DocType"] = f"'{row.get('DocType')}' is not a valid value for 'Doc. Type'."
            elif not row.get("ReferenceNbr"):
                err["ReferenceNbr"] = "'Reference Nbr.' cannot be empty."
            elif invoice is None:
                err["ReferenceNbr"] = "'Reference Nbr.' cannot be found in the system."
            elif customer and invoice["Customer"].casefold() != str(customer).casefold():
                err["ReferenceNbr"] = (f"The document {row['ReferenceNbr']} belongs to customer {invoice['Customer']}, "
                                       f"not to {customer}.")
            elif invoice["Status"] in OPEN_STATUSES:
                err["ReferenceNbr"] = f"The document {row['ReferenceNbr']} is not released and cannot be applied."
            if invoice is not None and not err:
                row["DocType"] = doc_type
                row["CustomerOrder"] = invoice.get("CustomerOrder")
                if row.get("AmountPaid") is None:
                    row["AmountPaid"] = invoice["Balance"]
                row["AmountPaid"] = money(row["AmountPaid"])
                if row["AmountPaid"] > invoice["Balance"]:
                    err["AmountPaid"] = (f"The amount paid {row['AmountPaid']} exceeds the balance of document "
                                         f"{invoice['ReferenceNbr']} ({invoice['Balance']}).")
                elif row["AmountPaid"] <= 0:
                    err["AmountPaid"] = "The amount paid must be greater than zero."
                applied += row["AmountPaid"]
            if err:
                errors.setdefault("DocumentsToApply", {})[i] = err
        if rec.get("PaymentAmount") is None:
            rec["PaymentAmount"] = applied
        rec["PaymentAmount"] = money(rec["PaymentAmount"])
        if applied > rec["PaymentAmount"]:
            errors["PaymentAmount"] = (f"The documents to apply total {applied}, more than the payment amount "
                                       f"{rec['PaymentAmount']}.")
        if rec["PaymentAmount"] <= 0 and "PaymentAmount" not in errors:
            errors["PaymentAmount"] = "'Payment Amount' must be greater than zero."
        rec["AppliedToDocuments"] = applied
        rec["AvailableBalance"] = rec["PaymentAmount"] - applied
        if existing is None:
            rec["ReferenceNbr"] = None

    # --- after validation: numbering -------------------------------------------------------
    def number(self, entity: str, rec: dict) -> None:
        if entity in DOC_TYPES and not rec.get("ReferenceNbr"):
            start = {"Invoice": 10000, "Payment": 20000, "Bill": 30000}[entity]
            rec["ReferenceNbr"] = self.tenant.next_number(f"{entity}:{rec['Type']}", start)

    # --- DELETE -------------------------------------------------------------------------------
    def delete(self, entity: str, record: dict) -> None:
        with self.tenant.lock:
            if entity in DOC_TYPES and record.get("Status") not in OPEN_STATUSES:
                raise px_error(f"The document {record['ReferenceNbr']} cannot be deleted because it has been released.")
            self.tenant.records[entity].pop(record["id"], None)

    def remove(self, entity: str, record: dict) -> None:
        """Takes a document out of the tenant whatever its status. Not an API operation: the
        /_sim/delete control endpoint uses it to stand for a document that disappeared outside
        fieldledger (deleted by a person before release, or lost to a restored backup)."""
        with self.tenant.lock:
            self.tenant.records[entity].pop(record["id"], None)

    # --- voiding ------------------------------------------------------------------------------
    def void(self, entity: str, record: dict) -> dict:
        """Voids a released document, as a person does on its screen (Void on AR301000 /
        AP301000; the API's VoidPayment for payments). An invoice or bill with payments applied
        cannot be voided (the payments are voided first). Simplified: the document itself turns
        Voided; no separate Voided Payment document is created."""
        with self.tenant.lock:
            self.settle()
            return self._void(entity, record["id"])

    def _void(self, entity: str, record_id: str) -> dict:
        t = self.tenant
        rec = t.by_id(entity, record_id)
        if rec is None:
            raise not_found()
        if rec["Status"] in OPEN_STATUSES:
            raise px_error(f"The document {rec['ReferenceNbr']} is not released: delete it instead of voiding it.")
        if rec["Status"] == "Voided":
            raise px_error(f"The document {rec['ReferenceNbr']} has already been voided.")
        now = self.now()
        if entity == "Payment":
            for row in rec.get("DocumentsToApply") or []:
                inv = t.by_keys("Invoice", [row["DocType"], row["ReferenceNbr"]])
                if inv is None:
                    continue
                inv["Balance"] = money(inv["Balance"] + row["AmountPaid"])
                inv["Status"] = "Closed" if inv["Balance"] == 0 else "Open"
                for application in inv.get("ApplicationsDefault") or []:
                    if application.get("ReferenceNbr") == rec["ReferenceNbr"]:
                        application["Status"] = "Voided"
                inv["LastModifiedDateTime"] = now
            rec["AvailableBalance"] = Decimal(0)
        else:
            if money(rec.get("Balance")) != money(rec.get("Amount")):
                raise px_error(f"The document {rec['ReferenceNbr']} cannot be voided because payments are applied "
                               "to it. Void the payments first.")
            rec["Balance"] = Decimal(0)
        rec["Status"] = "Voided"
        rec["LastModifiedDateTime"] = now
        return rec

    # --- actions ------------------------------------------------------------------------------
    def start_action(self, entity: str, action: str, record: dict, seconds: float) -> Operation:
        op = Operation(str(uuid.uuid4()), entity, action, record["id"], self.now() + timedelta(seconds=seconds))
        with self.tenant.lock:
            self.operations[op.id] = op
        return op

    def settle(self) -> None:
        """Completes every background operation whose time has come."""
        now = self.now()
        with self.tenant.lock:
            for op in self.operations.values():
                if not op.applied and now >= op.done_at:
                    op.applied = True
                    try:
                        if op.action == "VoidPayment":
                            self._void(op.entity, op.record_id)
                        else:
                            self._release(op.entity, op.record_id)
                    except ApiError as exc:
                        op.error = exc.body.get("exceptionMessage") or exc.body["message"]

    def _release(self, entity: str, record_id: str) -> None:
        t = self.tenant
        rec = t.by_id(entity, record_id)
        if rec is None:
            raise not_found()
        if rec["Status"] == "On Hold":
            raise px_error(f"The document {rec['ReferenceNbr']} is on hold and cannot be released.")
        if rec["Status"] != "Balanced":
            raise px_error(f"The document {rec['ReferenceNbr']} has already been released.")
        now = self.now()
        if entity == "Payment":
            invoices = []
            for row in rec.get("DocumentsToApply") or []:
                inv = t.by_keys("Invoice", [row["DocType"], row["ReferenceNbr"]])
                if inv is None or row["AmountPaid"] > inv["Balance"]:
                    raise px_error(f"The amount paid exceeds the balance of document {row['ReferenceNbr']}.")
                invoices.append((inv, row))
            for inv, row in invoices:
                inv["Balance"] = money(inv["Balance"] - row["AmountPaid"])
                inv["Status"] = "Closed" if inv["Balance"] == 0 else "Open"
                inv.setdefault("ApplicationsDefault", []).append({
                    "id": str(uuid.uuid4()), "AmountPaid": row["AmountPaid"], "Balance": rec["AvailableBalance"],
                    "DocType": rec["Type"], "PaymentDate": rec.get("ApplicationDate"),
                    "ReferenceNbr": rec["ReferenceNbr"], "Status": "Closed"})
                inv["LastModifiedDateTime"] = now
            rec["Status"] = "Closed" if rec["AvailableBalance"] == 0 else "Open"
        else:
            rec["Status"] = "Closed" if rec["Balance"] == 0 else "Open"
        rec["LastModifiedDateTime"] = now


INVOICE_DETAIL = ENTITIES["Invoice"].details["Details"]
BILL_DETAIL = ENTITIES["Bill"].details["Details"]
