"""Mapping rules: a ServiceTitan record (as the API returns it) -> a canonical document, or a
MappingError that says why not and what to fix. Pure functions: no I/O, no guessing.

Every line lands on an account chosen by the connection's rules and on the business unit's
branch/subaccount or project/organization; anything the rules cannot place is refused, never
posted to a default that merely looks plausible.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from mappings.canonical import CENT, APBill, Application, ARInvoice, CashReceipt, Coding, Line, Party
from mappings.connection import BusinessUnitMapping, Connection

ZERO = Decimal("0.00")


class MappingError(ValueError):
    """A record that cannot be mapped; quarantined with class 'mapping' until the fix is made."""

    error_class = "mapping"

    def __init__(self, source_type: str, source_id: str, reason: str, fix: str):
        self.source_type = source_type
        self.source_id = str(source_id)
        self.reason = reason
        self.fix = fix
        super().__init__(f"{source_type} {source_id}: {reason}. Fix: {fix}")


class ZeroAmountDocument(Exception):
    """Nothing to post: every amount is zero. Recorded as skipped, not as a failure."""


# --- small parsing helpers ---------------------------------------------------------------------


def exact(value, source_type: str, source_id, field: str, default: str = "0") -> Decimal:
    """A decimal exactly as ServiceTitan sent it (a unit price or cost may carry fractions of a cent)."""
    if value is None or value == "":
        return Decimal(default)
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        parsed = None
    if parsed is None or not parsed.is_finite():
        raise MappingError(source_type, source_id, f"{field} is not a number ({value!r})",
                           "correct the amount in ServiceTitan") from None
    return parsed


def money(value, source_type: str, source_id, field: str) -> Decimal:
    """An amount of money as ServiceTitan sent it, to the cent. One with fractions of a cent is
    refused rather than rounded: rounding here would post an amount ServiceTitan never showed."""
    amount = exact(value, source_type, source_id, field)
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise MappingError(source_type, source_id, f"{field} {value} has fractions of a cent",
                           "correct the amount in ServiceTitan (amounts are whole cents), then replay")
    return amount.quantize(CENT)


def quantity(value) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else "1"))
    except InvalidOperation:
        return Decimal("1")


def line_amount(qty: Decimal, unit: Decimal) -> Decimal:
    """Quantity x unit cost to the cent, halves rounded up (away from zero), as ServiceTitan
    rounds a line; the document's own total is still the judge (see map_bill)."""
    return (qty * unit).quantize(CENT, rounding=ROUND_HALF_UP)


def business_date(value, source_type: str, source_id, field: str) -> date:
    """ServiceTitan sends business dates as midnight UTC ('2026-11-03T00:00:00Z'): take the date."""
    if not value:
        raise MappingError(source_type, source_id, f"{field} is empty", f"set the {field} in ServiceTitan")
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise MappingError(source_type, source_id, f"{field} is not a date ({value!r})",
                               f"correct the {field} in ServiceTitan") from None


def _ref(obj, key: str = "id"):
    return obj.get(key) if isinstance(obj, dict) else None


def _text(value) -> str:
    return " ".join(str(value or "").split())


def _fix_file(conn: Connection) -> str:
    return f"connections/{conn.name}.yaml"


def unit_mapping(conn: Connection, source_type: str, source_id, unit: dict | None) -> tuple[int, BusinessUnitMapping]:
    unit_id = _ref(unit)
    if unit_id is None:
        raise MappingError(source_type, source_id, "has no business unit",
                           "assign a business unit to it in ServiceTitan, then replay")
    mapped = conn.mapping.business_units.get(int(unit_id))
    if mapped is None:
        name = _ref(unit, "name") or "?"
        raise MappingError(
            source_type, source_id, f"business unit {unit_id} ({name}) has no mapping",
            f"add mapping.business_units.{unit_id} to {_fix_file(conn)}, then "
            f"`fieldledger replay --connection {conn.name} --failed`",
        )
    return int(unit_id), mapped


def unit_coding(unit: BusinessUnitMapping, account: str) -> Coding:
    return Coding(account=account, branch=unit.branch, subaccount=unit.subaccount, project=unit.project,
                  task=unit.task, organization=unit.organization)


# --- parties -----------------------------------------------------------------------------------


def map_party(record: dict, source_type: str, conn: Connection) -> Party:
    source_id = str(record.get("id"))
    name = _text(record.get("name"))
    if not name:
        raise MappingError(source_type, source_id, f"the {source_type} has no name",
                           f"give the {source_type} a name in ServiceTitan, then replay")
    rule = conn.mapping.customers if source_type == "customer" else conn.mapping.vendors
    address = record.get("address") or {}
    email = None
    contact = record.get("contactInfo") or {}
    if isinstance(contact, dict):
        email = contact.get("email")
    return Party(
        source_type=source_type,
        source_id=source_id,
        name=name,
        erp_id=f"{rule.prefix}{source_id}",
        match_by_name=rule.key == "match_by_name",
        address_line=_text(" ".join(filter(None, [address.get("street"), address.get("unit")]))) or None,
        city=address.get("city"),
        state=address.get("state"),
        postal_code=address.get("zip"),
        country=address.get("country"),
        email=email,
        active=bool(record.get("active", True)),
    )


# --- AR invoices -------------------------------------------------------------------------------


def revenue_account(conn: Connection, unit: BusinessUnitMapping, item: dict, invoice_id: str) -> str:
    rules = conn.mapping.accounts
    gl = item.get("generalLedgerAccount") or {}
    number = str(gl.get("number") or "")
    if rules.use_item_gl_account and number and number in rules.revenue_by_gl_account:
        return rules.revenue_by_gl_account[number]
    item_type = str(item.get("type") or "")
    if item_type in rules.revenue_by_item_type:
        return rules.revenue_by_item_type[item_type]
    account = unit.revenue_account or rules.default_revenue
    if account:
        return account
    raise MappingError(
        "invoice", invoice_id,
        f"no revenue account for item {item.get('skuName') or item.get('id')} (type {item_type or '?'}, "
        f"ServiceTitan GL {number or 'none'})",
        f"add it to mapping.accounts.revenue_by_gl_account or revenue_by_item_type in {_fix_file(conn)}",
    )


def map_invoice(record: dict, conn: Connection) -> ARInvoice:
    source_id = str(record.get("id"))
    unit_id, unit = unit_mapping(conn, "invoice", source_id, record.get("businessUnit"))
    customer_id = _ref(record.get("customer"))
    if customer_id is None:
        raise MappingError("invoice", source_id, "has no customer", "set the invoice's customer in ServiceTitan")
    number = _text(record.get("referenceNumber")) or source_id
    total = money(record.get("total"), "invoice", source_id, "total")
    tax = money(record.get("salesTax"), "invoice", source_id, "salesTax")
    rules = conn.mapping.accounts
    lines: list[Line] = []
    for item in sorted(record.get("items") or [], key=lambda i: (i.get("order") or 0, i.get("id") or 0)):
        amount = money(item.get("total"), "invoice", source_id, "items.total")
        if amount == ZERO:
            continue
        lines.append(Line(
            description=_text(item.get("description") or item.get("skuName") or item.get("displayName")) or "Item",
            quantity=quantity(item.get("quantity")),
            unit_amount=exact(item.get("price"), "invoice", source_id, "items.price"),
            amount=amount,
            coding=unit_coding(unit, revenue_account(conn, unit, item, source_id)),
        ))
    if tax != ZERO:
        lines.append(Line(description="Sales tax", quantity=Decimal("1"), unit_amount=tax, amount=tax,
                          coding=unit_coding(unit, rules.tax), kind="tax"))
    if not lines:
        if total == ZERO:
            raise ZeroAmountDocument(f"invoice {number} totals 0.00")
        raise MappingError("invoice", source_id, f"invoice {number} totals {total} but has no lines",
                           "add the invoice's items in ServiceTitan, then replay")
    line_sum = sum((line.amount for line in lines), ZERO)
    if line_sum != total:
        raise MappingError("invoice", source_id,
                           f"invoice {number}: lines and tax add up to {line_sum}, the total is {total}",
                           "correct the invoice in ServiceTitan so its items and tax match its total")
    return ARInvoice(
        source_id=source_id,
        number=number,
        customer_id=str(customer_id),
        date=business_date(record.get("invoiceDate"), "invoice", source_id, "invoiceDate"),
        due_date=business_date(record["dueDate"], "invoice", source_id, "dueDate") if record.get("dueDate") else None,
        description=_text((record.get("job") or {}).get("number") and f"Job {record['job']['number']}") or
        f"ServiceTitan invoice {number}",
        business_unit_id=unit_id,
        header=unit_coding(unit, rules.ar),
        lines=tuple(lines),
        tax_total=tax,
        total=total,
    )


# --- cash receipts -----------------------------------------------------------------------------


def map_payment(record: dict, conn: Connection) -> CashReceipt:
    source_id = str(record.get("id"))
    rules = conn.mapping.accounts
    customer_id = _ref(record.get("customer"))
    if customer_id is None:
        raise MappingError("payment", source_id, "has no customer", "set the payment's customer in ServiceTitan")
    amount = money(record.get("total"), "payment", source_id, "total")
    payment_type = _text(record.get("type")) or "Unknown"
    cash_account = rules.cash_by_payment_type.get(payment_type) or rules.default_cash
    if not cash_account:
        raise MappingError("payment", source_id, f"no cash account for payment type {payment_type!r}",
                           f"add it to mapping.accounts.cash_by_payment_type in {_fix_file(conn)}")
    unit = None
    if record.get("businessUnit"):
        _, unit = unit_mapping(conn, "payment", source_id, record.get("businessUnit"))
    applications = []
    for applied in record.get("appliedTo") or []:
        applied_amount = money(applied.get("appliedAmount"), "payment", source_id, "appliedTo.appliedAmount")
        if applied_amount == ZERO:
            continue
        applications.append(Application(
            invoice_id=str(applied.get("appliedTo")),
            invoice_number=_text(applied.get("appliedToReferenceNumber")) or str(applied.get("appliedTo")),
            amount=applied_amount,
        ))
    if amount == ZERO and not applications:
        raise ZeroAmountDocument(f"payment {source_id} totals 0.00")
    applied_total = sum((a.amount for a in applications), ZERO)
    if applied_total > amount > ZERO:
        raise MappingError("payment", source_id, f"applies {applied_total} but only {amount} was paid",
                           "correct the payment's applications in ServiceTitan")
    reference = _text(record.get("referenceNumber")) or f"ST{source_id}"
    return CashReceipt(
        source_id=source_id,
        reference=reference,
        customer_id=str(customer_id),
        date=business_date(record.get("date") or record.get("createdOn"), "payment", source_id, "date"),
        amount=amount,
        payment_type=payment_type,
        cash=Coding(account=cash_account, branch=unit.branch if unit else None,
                    organization=unit.organization if unit else None),
        ar=Coding(account=rules.ar, branch=unit.branch if unit else None,
                  organization=unit.organization if unit else None),
        applications=tuple(applications),
        memo=_text(record.get("memo"))[:200],
    )


# --- AP bills ----------------------------------------------------------------------------------


def map_bill(record: dict, conn: Connection) -> APBill:
    """An inventory bill. ServiceTitan gives each item's quantity and unit cost but no line
    amount (InventoryBillItemResponse has none), and the bill's own amounts: billAmount, taxAmount,
    shippingAmount, otherAmount. Each line is quantity x cost rounded as ServiceTitan rounds it;
    the items must then add up to billAmount (the items' amount; tax, shipping and other costs
    are stated beside it and posted as lines of their own), else the bill is quarantined with
    both figures: its amount is never changed to make it fit, and no line is dropped.
    posting/reconcile.py reads a bill's total the same way."""
    source_id = str(record.get("id"))
    rules = conn.mapping.accounts
    vendor_id = _ref(record.get("vendor"))
    if vendor_id is None:
        raise MappingError("bill", source_id, "has no vendor", "set the purchase order's vendor in ServiceTitan")
    unit_id, unit = unit_mapping(conn, "bill", source_id, record.get("businessUnit"))
    number_ = _text(record.get("referenceNumber")) or f"ST{source_id}"
    lines: list[Line] = []
    for item in sorted(record.get("items") or [], key=lambda i: (i.get("order") or 0, i.get("id") or 0)):
        qty = exact(item.get("quantity"), "bill", source_id, "items.quantity", default="1")
        cost = exact(item.get("cost"), "bill", source_id, "items.cost")
        amount = line_amount(qty, cost)
        if qty * cost == 0:
            continue  # nothing to post; a line that merely rounds to 0.00 is kept and compared below
        lines.append(Line(description=_text(item.get("description") or item.get("name") or item.get("skuCode"))
                          or "Item", quantity=qty, unit_amount=cost, amount=amount,
                          coding=unit_coding(unit, rules.inventory)))
    items_total = sum((line.amount for line in lines), ZERO)
    extras = [("tax", "Purchase tax", money(record.get("taxAmount"), "bill", source_id, "taxAmount"), rules.inventory),
              ("freight", "Freight", money(record.get("shippingAmount"), "bill", source_id, "shippingAmount"),
               rules.freight or rules.inventory),
              ("other", "Other costs", money(record.get("otherAmount"), "bill", source_id, "otherAmount"),
               rules.freight or rules.inventory)]
    for kind, description, amount, account in extras:
        if amount != ZERO:
            lines.append(Line(description=description, quantity=Decimal("1"), unit_amount=amount, amount=amount,
                              coding=unit_coding(unit, account), kind=kind))
    total = sum((line.amount for line in lines), ZERO)
    if record.get("billAmount") not in (None, ""):
        stated = money(record.get("billAmount"), "bill", source_id, "billAmount")
        if stated != items_total:
            raise MappingError(
                "bill", source_id,
                f"bill {number_}: ServiceTitan's billAmount is {stated}, its items (quantity x cost, to the cent) "
                f"add up to {items_total}",
                "correct the received quantities or costs in ServiceTitan so they match the bill, or post this "
                "bill in the ERP by hand and `fieldledger errors resolve` it; then replay")
    if not lines:
        raise ZeroAmountDocument(f"bill {number_} totals 0.00")
    return APBill(
        source_id=source_id,
        number=number_,
        vendor_id=str(vendor_id),
        date=business_date(record.get("billDate") or record.get("createdOn"), "bill", source_id, "billDate"),
        due_date=business_date(record["dueDate"], "bill", source_id, "dueDate") if record.get("dueDate") else None,
        description=_text(f"PO bill {number_}" + (f" / {record['vendorNumber']}" if record.get("vendorNumber") else "")),
        business_unit_id=unit_id,
        header=unit_coding(unit, rules.ap),
        lines=tuple(lines),
        total=total,
    )


MAPPERS = {
    "invoice": map_invoice,
    "payment": map_payment,
    "bill": map_bill,
    "customer": lambda r, c: map_party(r, "customer", c),
    "vendor": lambda r, c: map_party(r, "vendor", c),
}


def map_record(source_type: str, record: dict, conn: Connection):
    """Dispatch by source type; raises MappingError or ZeroAmountDocument."""
    return MAPPERS[source_type](record, conn)
