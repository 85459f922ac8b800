"""The Acumatica entities the simulator serves (a subset of the Default 24.200.001 contract: names
and value types as in the OpenAPI document) and the value-object wire format: every field is
``{"value": ...}`` both ways, null is ``{}``; system fields ``id``/``rowNumber``/``note``/``custom``/
``_links`` are not wrapped. Records are held internally as plain Python values (Decimal money,
aware datetimes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

S, D, B, I, DT, G = "string", "decimal", "boolean", "int", "datetime", "guid"  # noqa: E741


@dataclass(frozen=True)
class EntityDef:
    name: str
    fields: dict[str, str]
    keys: tuple[str, ...] = ()
    details: dict[str, EntityDef] = field(default_factory=dict)
    linked: dict[str, EntityDef] = field(default_factory=dict)
    files_view: str = ""  # graph/view for the files:put link
    actions: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()  # computed by the server; input ignored

    def display(self, name: str) -> str:
        return DISPLAY_NAMES.get(name, name)


# Display names used in Acumatica's field messages ("'Customer' cannot be empty.").
DISPLAY_NAMES = {
    "CustomerID": "Customer ID", "CustomerName": "Account Name", "VendorName": "Account Name",
    "CustomerOrder": "Customer Order Nbr.", "VendorRef": "Vendor Ref.", "PaymentRef": "Payment Ref.",
    "TransactionDescription": "Transaction Descr.", "LinkBranch": "Branch", "BranchID": "Branch",
    "Subaccount": "Subaccount", "CashAccount": "Cash Account", "PaymentMethod": "Payment Method",
    "AccountCD": "Account", "SubaccountCD": "Subaccount",
}

ADDRESS = EntityDef("Address", {
    "AddressLine1": S, "AddressLine2": S, "City": S, "Country": S, "PostalCode": S, "State": S,
})
CONTACT = EntityDef(
    "Contact",
    {"DisplayName": S, "CompanyName": S, "Email": S, "Phone1": S, "FirstName": S, "LastName": S,
     "Attention": S},
    linked={"Address": ADDRESS},
)

CUSTOMER = EntityDef(
    "Customer",
    {"AccountRef": S, "BAccountID": I, "CreatedDateTime": DT, "CreditLimit": D, "CurrencyID": S,
     "CustomerClass": S, "CustomerID": S, "CustomerName": S, "Email": S, "LastModifiedDateTime": DT,
     "NoteID": G, "Status": S, "TaxZone": S, "Terms": S},
    keys=("CustomerID",),
    linked={"MainContact": CONTACT},
    files_view="PX.Objects.AR.CustomerMaint/BAccount",
    read_only=("BAccountID", "CreatedDateTime", "LastModifiedDateTime", "NoteID"),
)

VENDOR = EntityDef(
    "Vendor",
    {"AccountRef": S, "APAccount": S, "APSubaccount": S, "CashAccount": S, "CreatedDateTime": DT,
     "CurrencyID": S, "LastModifiedDateTime": DT, "LegalName": S, "PaymentMethod": S, "Status": S,
     "TaxZone": S, "Terms": S, "VendorClass": S, "VendorID": S, "VendorName": S},
    keys=("VendorID",),
    linked={"MainContact": CONTACT},
    files_view="PX.Objects.AP.VendorMaint/BAccount",
    read_only=("CreatedDateTime", "LastModifiedDateTime"),
)

INVOICE_DETAIL = EntityDef("InvoiceDetail", {
    "Account": S, "Amount": D, "Branch": S, "DiscountAmount": D, "ExtendedPrice": D, "InventoryID": S,
    "LastModifiedDateTime": DT, "LineNbr": I, "Qty": D, "Subaccount": S, "TaxCategory": S,
    "TransactionDescription": S, "UnitPrice": D, "UOM": S,
}, files_view="PX.Objects.AR.ARInvoiceEntry/Transactions")
TAX_DETAIL = EntityDef("InvoiceTaxDetail", {"TaxableAmount": D, "TaxAmount": D, "TaxID": S, "TaxRate": D})
INVOICE_APPLICATION = EntityDef("InvoiceApplicationsDefault", {
    "AmountPaid": D, "Balance": D, "DocType": S, "PaymentDate": DT, "ReferenceNbr": S, "Status": S,
})

INVOICE = EntityDef(
    "Invoice",
    {"Amount": D, "Balance": D, "CreatedDateTime": DT, "Customer": S, "CustomerOrder": S, "Date": DT,
     "Description": S, "DueDate": DT, "Hold": B, "IsTaxValid": B, "LastModifiedDateTime": DT,
     "LinkARAccount": S, "LinkBranch": S, "LocationID": S, "PostPeriod": S, "Project": S,
     "ReferenceNbr": S, "Status": S, "TaxTotal": D, "Terms": S, "Type": S},
    keys=("Type", "ReferenceNbr"),
    details={"Details": INVOICE_DETAIL, "TaxDetails": TAX_DETAIL, "ApplicationsDefault": INVOICE_APPLICATION},
    files_view="PX.Objects.AR.ARInvoiceEntry/Document",
    actions=("ReleaseInvoice",),
    read_only=("Balance", "CreatedDateTime", "LastModifiedDateTime", "Status"),
)

PAYMENT_DETAIL = EntityDef("PaymentDetail", {
    "AmountPaid": D, "CustomerOrder": S, "Description": S, "DocLineNbr": I, "DocType": S, "ReferenceNbr": S,
}, files_view="PX.Objects.AR.ARPaymentEntry/Adjustments")

PAYMENT = EntityDef(
    "Payment",
    {"ApplicationDate": DT, "AppliedToDocuments": D, "AvailableBalance": D, "Branch": S, "BranchID": S,
     "CashAccount": S, "CurrencyID": S, "CustomerID": S, "Description": S, "ExternalRef": S, "Hold": B,
     "LastModifiedDateTime": DT, "NoteID": G, "PaymentAmount": D, "PaymentMethod": S, "PaymentRef": S,
     "ReferenceNbr": S, "Status": S, "Type": S},
    keys=("Type", "ReferenceNbr"),
    details={"DocumentsToApply": PAYMENT_DETAIL},
    files_view="PX.Objects.AR.ARPaymentEntry/Document",
    actions=("ReleasePayment", "VoidPayment"),
    read_only=("AppliedToDocuments", "AvailableBalance", "LastModifiedDateTime", "NoteID", "Status"),
)

BILL_DETAIL = EntityDef("BillDetail", {
    "Account": S, "Amount": D, "Branch": S, "Description": S, "ExtendedCost": D, "InventoryID": S,
    "POOrderNbr": S, "POReceiptNbr": S, "Project": S, "Qty": D, "Subaccount": S, "TaxCategory": S,
    "TransactionDescription": S, "UnitCost": D, "UOM": S,
}, files_view="PX.Objects.AP.APInvoiceEntry/Transactions")
BILL_TAX_DETAIL = EntityDef("BillTaxDetail", {"TaxableAmount": D, "TaxAmount": D, "TaxID": S, "TaxRate": D})

BILL = EntityDef(
    "Bill",
    {"Amount": D, "ApprovedForPayment": B, "Balance": D, "BranchID": S, "CashAccount": S, "CurrencyID": S,
     "Date": DT, "Description": S, "DueDate": DT, "Hold": B, "IsTaxValid": B, "LastModifiedDateTime": DT,
     "LocationID": S, "PostPeriod": S, "Project": S, "ReferenceNbr": S, "Status": S, "TaxTotal": D,
     "Terms": S, "Type": S, "Vendor": S, "VendorRef": S},
    keys=("Type", "ReferenceNbr"),
    details={"Details": BILL_DETAIL, "TaxDetails": BILL_TAX_DETAIL},
    files_view="PX.Objects.AP.APInvoiceEntry/Document",
    actions=("ReleaseBill",),
    read_only=("Balance", "LastModifiedDateTime", "Status"),
)

ACCOUNT = EntityDef(
    "Account",
    {"AccountCD": S, "AccountClass": S, "AccountGroup": S, "AccountID": I, "Active": B, "CashAccount": B,
     "CreatedDateTime": DT, "CurrencyID": S, "Description": S, "LastModifiedDateTime": DT, "PostOption": S,
     "Type": S, "UseDefaultSubaccount": B},
    keys=("AccountCD",),
    files_view="PX.Objects.GL.AccountMaint/AccountRecords",
    read_only=("AccountID", "CreatedDateTime", "LastModifiedDateTime"),
)

SUBACCOUNT = EntityDef(
    "Subaccount",
    {"Active": B, "Description": S, "Secured": B, "SubaccountCD": S, "SubaccountID": I},
    keys=("SubaccountCD",),
    files_view="PX.Objects.GL.SubAccountMaint/SubRecords",
    read_only=("SubaccountID",),
)

ALLOWED_CASH_ACCOUNT = EntityDef("PaymentMethodAllowedCashAccountDetail", {
    "APDefault": B, "ARDefault": B, "Branch": S, "CashAccount": S, "Description": S, "PaymentMethod": S,
    "UseInAP": B, "UseInAR": B,
})
PAYMENT_METHOD = EntityDef(
    "PaymentMethod",
    {"Active": B, "CreatedDateTime": DT, "Description": S, "LastModifiedDateTime": DT, "MeansOfPayment": S,
     "PaymentMethodID": S, "UseInAP": B, "UseInAR": B},
    keys=("PaymentMethodID",),
    details={"AllowedCashAccounts": ALLOWED_CASH_ACCOUNT},
    files_view="PX.Objects.CA.PaymentMethodMaint/PaymentMethod",
)

BRANCH_ROW = EntityDef("CompaniesStructureDetail", {
    "BaseCurrencyID": S, "BranchCountry": S, "BranchID": S, "BranchName": S, "BranchStatus": B,
    "CompanyID": S, "CompanyName": S, "CompanyStatus": B, "CompanyType": S,
})
COMPANIES_STRUCTURE = EntityDef(
    "CompaniesStructure", {}, details={"Results": BRANCH_ROW},
    files_view="PX.Objects.CS.CompaniesStructureInq/Filter",
)

LEDGER_BRANCH = EntityDef("LedgerBranches", {"Active": B, "BranchID": S, "BranchName": S, "CompanyName": S})
LEDGER = EntityDef(
    "Ledger",
    {"Currency": S, "Description": S, "LastModifiedDateTime": DT, "LedgerID": S, "Type": S},
    keys=("LedgerID",),
    details={"Branches": LEDGER_BRANCH},
    files_view="PX.Objects.GL.GeneralLedgerMaint/LedgerRecords",
)

ENTITIES: dict[str, EntityDef] = {
    e.name: e
    for e in (CUSTOMER, VENDOR, INVOICE, PAYMENT, BILL, ACCOUNT, SUBACCOUNT, PAYMENT_METHOD,
              COMPANIES_STRUCTURE, LEDGER)
}
SYSTEM_FIELDS = {"id", "rowNumber", "note", "custom", "_links", "error", "files", "delete"}


class WireError(ValueError):
    """A body the model binder cannot read (400 'The request is invalid.'); ``key`` names the
    modelState entry."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# --- value conversion -----------------------------------------------------------------------

def parse_datetime(text: str) -> datetime:
    """ISO date or date-time; naive values are taken as UTC; also MM/DD/YYYY as Acumatica accepts."""
    text = text.strip()
    if len(text) == 10 and text[2] == "/" and text[5] == "/":
        return datetime.strptime(text, "%m/%d/%Y").replace(tzinfo=UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_python(kind: str, raw: Any) -> Any:
    """Converts one unwrapped JSON value to the field's Python type; raises ValueError."""
    if raw is None:
        return None
    if kind == S:
        if isinstance(raw, (dict, list)):
            raise ValueError("a string is expected")
        return str(raw)
    if kind == D:
        if isinstance(raw, bool) or isinstance(raw, (dict, list)):
            raise ValueError("a number is expected")
        try:
            return Decimal(str(raw))
        except InvalidOperation as exc:
            raise ValueError(f"'{raw}' is not a number") from exc
    if kind == B:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError("a boolean is expected")
    if kind == I:
        if isinstance(raw, bool):
            raise ValueError("an integer is expected")
        return int(str(raw))
    if kind == DT:
        if isinstance(raw, datetime):
            return raw
        return parse_datetime(str(raw))
    if kind == G:
        return str(uuid.UUID(str(raw)))
    raise ValueError(f"unknown kind {kind}")


def to_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == D:
        # Acumatica answers money as JSON numbers; two-decimal values round-trip exactly through
        # float repr, so a client parsing with Decimal gets the stored value back.
        return float(value)
    if kind == DT:
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        text = value.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace(".000+", "+")
    return value


def unwrap_entity(edef: EntityDef, body: Any, path: str = "entity", strict_unknown: bool = True) -> dict:
    """Wire object -> {field: python value}; details -> list of dicts; linked -> dict.
    System fields ``id`` and ``delete`` are kept. Raises WireError for unreadable input."""
    if not isinstance(body, dict):
        raise WireError(path, f"Cannot deserialize the current JSON value into type '{edef.name}'.")
    out: dict[str, Any] = {}
    for name, raw in body.items():
        where = f"{path}.{name}"
        if name in SYSTEM_FIELDS:
            if name == "id" and raw is not None:
                try:
                    out["id"] = str(uuid.UUID(str(raw)))
                except ValueError as exc:
                    raise WireError(where, f"Error converting value \"{raw}\" to type 'System.Guid'.") from exc
            elif name == "delete":
                out["delete"] = bool(raw)
            continue
        if name in edef.details:
            if not isinstance(raw, list):
                raise WireError(where, f"Cannot deserialize the current JSON object into type "
                                       f"'List<{edef.details[name].name}>' because the type requires a JSON array.")
            out[name] = [
                unwrap_entity(edef.details[name], row, f"{where}[{i}]", strict_unknown)
                for i, row in enumerate(raw)
            ]
            continue
        if name in edef.linked:
            out[name] = unwrap_entity(edef.linked[name], raw, where, strict_unknown)
            continue
        kind = edef.fields.get(name)
        if kind is None:
            if strict_unknown:
                raise WireError(where, f"Could not find member '{name}' on object of type '{edef.name}'.")
            continue
        if not isinstance(raw, dict) or not (set(raw) <= {"value", "error"}):
            raise WireError(where, f"Error converting value {_short(raw)} to type "
                                   f"'PX.Api.ContractBased.Models.{_value_type(kind)}'.")
        try:
            out[name] = to_python(kind, raw.get("value"))
        except (ValueError, TypeError) as exc:
            raise WireError(where, f"Error converting value {_short(raw.get('value'))} to type "
                                   f"'{_value_type(kind)}': {exc}") from exc
    return out


def _short(raw: Any) -> str:
    text = repr(raw) if not isinstance(raw, str) else f'"{raw}"'
    return text[:60]


def _value_type(kind: str) -> str:
    return {S: "StringValue", D: "DecimalValue", B: "BooleanValue", I: "IntValue", DT: "DateTimeValue",
            G: "GuidValue"}[kind]
