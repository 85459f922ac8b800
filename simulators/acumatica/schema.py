"""The Acumatica entities the simulator serves, with every field of their Default 24.200.001 contract
(names and value kinds in contract.py, written once from the public OpenAPI document) and the value-object wire format: every field is
``{"value": ...}`` both ways, null is ``{}``; system fields ``id``/``rowNumber``/``note``/``custom``/
``_links`` are not wrapped. Records are held internally as plain Python values (Decimal money,
aware datetimes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from simulators.acumatica.contract import TYPES

S, D, B, I, DT, G = "S", "D", "B", "I", "DT", "G"  # noqa: E741  (contract.py kind codes)


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

# What the simulator adds to the contract (contract.py): key fields in URL order, the graph/view
# of the files:put link, the actions it runs, and the fields the server computes (input ignored).
BEHAVIOUR: dict[str, dict[str, Any]] = {
    "Customer": {"keys": ("CustomerID",), "files_view": "PX.Objects.AR.CustomerMaint/BAccount",
                 "read_only": ("BAccountID", "CreatedDateTime", "LastModifiedDateTime", "NoteID")},
    "Vendor": {"keys": ("VendorID",), "files_view": "PX.Objects.AP.VendorMaint/BAccount",
               "read_only": ("CreatedDateTime", "LastModifiedDateTime", "NoteID")},
    "Invoice": {"keys": ("Type", "ReferenceNbr"), "files_view": "PX.Objects.AR.ARInvoiceEntry/Document",
                "actions": ("ReleaseInvoice",),
                "read_only": ("Balance", "CreatedDateTime", "LastModifiedDateTime", "Status")},
    "InvoiceDetail": {"files_view": "PX.Objects.AR.ARInvoiceEntry/Transactions"},
    "Payment": {"keys": ("Type", "ReferenceNbr"), "files_view": "PX.Objects.AR.ARPaymentEntry/Document",
                "actions": ("ReleasePayment", "VoidPayment"),
                "read_only": ("AppliedToDocuments", "AvailableBalance", "LastModifiedDateTime", "NoteID",
                              "Status")},
    "PaymentDetail": {"files_view": "PX.Objects.AR.ARPaymentEntry/Adjustments"},
    "Bill": {"keys": ("Type", "ReferenceNbr"), "files_view": "PX.Objects.AP.APInvoiceEntry/Document",
             "actions": ("ReleaseBill",), "read_only": ("Balance", "LastModifiedDateTime", "Status")},
    "BillDetail": {"files_view": "PX.Objects.AP.APInvoiceEntry/Transactions"},
    "Account": {"keys": ("AccountCD",), "files_view": "PX.Objects.GL.AccountMaint/AccountRecords",
                "read_only": ("AccountID", "CreatedDateTime", "LastModifiedDateTime")},
    "Subaccount": {"keys": ("SubaccountCD",), "files_view": "PX.Objects.GL.SubAccountMaint/SubRecords",
                   "read_only": ("SubaccountID",)},
    "PaymentMethod": {"keys": ("PaymentMethodID",), "files_view": "PX.Objects.CA.PaymentMethodMaint/PaymentMethod"},
    "CompaniesStructure": {"files_view": "PX.Objects.CS.CompaniesStructureInq/Filter"},
    "Ledger": {"keys": ("LedgerID",), "files_view": "PX.Objects.GL.GeneralLedgerMaint/LedgerRecords"},
    "FinancialYear": {"files_view": "PX.Objects.GL.FiscalYearSetupMaint/FiscalYearSetup",
                      "read_only": ("CreatedDateTime", "LastModifiedDateTime")},
    "FinancialPeriod": {"keys": ("FinancialYear",), "files_view": "PX.Objects.GL.FinPeriods.MasterFinPeriodMaint/FiscalYear",
                        "read_only": ("CreatedDateTime", "LastModifiedDateTime")},
}
SERVED = ("Customer", "Vendor", "Invoice", "Payment", "Bill", "Account", "Subaccount", "PaymentMethod",
          "CompaniesStructure", "Ledger", "FinancialPeriod", "FinancialYear")


def _build(name: str, built: dict[str, EntityDef]) -> EntityDef:
    """The EntityDef of one contract type, its linked and detail types built once each (the
    contract's type graph has cycles, e.g. Contact -> ... -> Contact)."""
    if name in built:
        return built[name]
    extra = BEHAVIOUR.get(name, {})
    edef = EntityDef(name, {}, keys=extra.get("keys", ()), files_view=extra.get("files_view", ""),
                     actions=extra.get("actions", ()), read_only=extra.get("read_only", ()))
    built[name] = edef
    for token in TYPES[name].split():
        field_name, kind = token.split(":", 1)
        if kind.startswith(">"):
            edef.linked[field_name] = _build(kind[1:], built)
        elif kind.startswith("*"):
            edef.details[field_name] = _build(kind[1:], built)
        else:
            edef.fields[field_name] = kind
    return edef


_BUILT: dict[str, EntityDef] = {}
ENTITIES: dict[str, EntityDef] = {name: _build(name, _BUILT) for name in SERVED}
SYSTEM_FIELDS = {"id", "rowNumber", "note", "custom", "_links", "error", "files", "delete"}


class WireError(ValueError):
    """A body the model binder cannot read (400 'The request is invalid.'); ``key`` names the
    modelState entry."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


# --- value conversion -----------------------------------------------------------------------

def parse_datetime(text: str, zone: tzinfo = UTC, date_only: bool = False) -> datetime:
    """ISO date or date-time, or MM/DD/YYYY as Acumatica also accepts. A value without an offset is
    in the user's time zone ``zone``; a date-only field keeps the user's calendar day of the
    instant given, at midnight (so '2026-11-03T00:00:00+00:00' is 2 Nov for a user in Los Angeles)."""
    text = text.strip()
    if len(text) == 10 and text[2] == "/" and text[5] == "/":
        value = datetime.strptime(text, "%m/%d/%Y").replace(tzinfo=zone)
    else:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    value = value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    if date_only:
        value = local_midnight(value.date(), zone)
    return value


def local_midnight(day: date, zone: tzinfo = UTC) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def is_date_only(name: str) -> bool:
    """Date fields of the contract (Date, DueDate, ApplicationDate, StartDate…) as opposed to
    time stamps (CreatedDateTime, LastModifiedDateTime)."""
    return not name.endswith("DateTime")


def to_python(kind: str, raw: Any, zone: tzinfo = UTC, date_only: bool = False) -> Any:
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
        return parse_datetime(str(raw), zone, date_only)
    if kind == G:
        return str(uuid.UUID(str(raw)))
    raise ValueError(f"unknown kind {kind}")


def to_json(kind: str, value: Any, zone: tzinfo = UTC) -> Any:
    """A stored value on the wire; date-times carry the user's time zone offset, as Acumatica
    answers them."""
    if value is None:
        return None
    if kind == D:
        # Acumatica answers money as JSON numbers; two-decimal values round-trip exactly through
        # float repr, so a client parsing with Decimal gets the stored value back.
        return float(value)
    if kind == DT:
        if isinstance(value, date) and not isinstance(value, datetime):
            value = local_midnight(value, zone)
        text = value.astimezone(zone).isoformat(timespec="milliseconds")
        return text.replace(".000+", "+").replace(".000-", "-")
    return value


def unwrap_entity(edef: EntityDef, body: Any, path: str = "entity", strict_unknown: bool = True,
                  zone: tzinfo = UTC) -> dict:
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
                unwrap_entity(edef.details[name], row, f"{where}[{i}]", strict_unknown, zone)
                for i, row in enumerate(raw)
            ]
            continue
        if name in edef.linked:
            out[name] = unwrap_entity(edef.linked[name], raw, where, strict_unknown, zone)
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
            out[name] = to_python(kind, raw.get("value"), zone, kind == DT and is_date_only(name))
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
