"""The ERP-neutral documents fieldledger posts: parties, AR invoices, cash receipts, AP bills.

ServiceTitan records are mapped into these (mappings/rules.py); each ERP adapter renders them into
its wire format (posting/). Money is Decimal; every line already carries its GL coding, so an
adapter never decides an account.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from resources.store import content_hash

CENT = Decimal("0.01")


class Coding(BaseModel):
    """Where a line lands in the ERP: account plus branch/subaccount (Acumatica) or
    project/organization (Vantagepoint). Fields the ERP does not use stay None."""

    model_config = ConfigDict(frozen=True)

    account: str
    branch: str | None = None
    subaccount: str | None = None
    project: str | None = None  # Vantagepoint WBS1, or an Acumatica project as cost center
    task: str | None = None  # Vantagepoint WBS2 / Acumatica project task
    organization: str | None = None


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_type: str
    source_id: str  # ServiceTitan id

    def fingerprint(self) -> str:
        """Content hash: a changed hash after posting means the record was edited in ServiceTitan."""
        return content_hash(self.model_dump(mode="json"))


class Party(_Document):
    source_type: Literal["customer", "vendor"]
    name: str
    erp_id: str | None = None  # a derived key; None when matched by name in the ERP
    match_by_name: bool = False
    address_line: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    email: str | None = None
    active: bool = True


class Line(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    coding: Coding
    kind: str = "item"  # item, tax, freight


class ARInvoice(_Document):
    source_type: Literal["invoice"] = "invoice"
    number: str  # ServiceTitan invoice number: the external reference (CustomerOrder / invoice no.)
    customer_id: str  # ServiceTitan customer id (a Party)
    date: date
    due_date: date | None = None
    description: str = ""
    business_unit_id: int
    header: Coding  # branch / project / AR account for the document
    lines: tuple[Line, ...]
    tax_total: Decimal = Decimal("0.00")
    total: Decimal

    @property
    def external_ref(self) -> str:
        return self.number


class Application(BaseModel):
    model_config = ConfigDict(frozen=True)

    invoice_id: str  # ServiceTitan invoice id
    invoice_number: str
    amount: Decimal


class CashReceipt(_Document):
    source_type: Literal["payment"] = "payment"
    reference: str  # the external reference (PaymentRef / receipt reference)
    customer_id: str
    date: date
    amount: Decimal
    payment_type: str
    cash: Coding  # cash account (+ branch)
    ar: Coding
    applications: tuple[Application, ...] = Field(default_factory=tuple)
    memo: str = ""

    @property
    def external_ref(self) -> str:
        return self.reference


class APBill(_Document):
    source_type: Literal["bill"] = "bill"
    number: str  # ServiceTitan bill reference: the external reference (VendorRef / voucher no.)
    vendor_id: str  # ServiceTitan vendor id
    date: date
    due_date: date | None = None
    description: str = ""
    business_unit_id: int | None = None
    header: Coding  # AP account (+ branch / project)
    lines: tuple[Line, ...]
    total: Decimal

    @property
    def external_ref(self) -> str:
        return self.number


Document = Party | ARInvoice | CashReceipt | APBill

DOCUMENT_TYPES: dict[str, type[_Document]] = {
    "customer": Party,
    "vendor": Party,
    "invoice": ARInvoice,
    "payment": CashReceipt,
    "bill": APBill,
}


def document_from_json(source_type: str, data: dict) -> Document:
    return DOCUMENT_TYPES[source_type].model_validate(data)
