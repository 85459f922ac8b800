"""The bad-record catalogue (tests/badinput/record_cases.py) through the pipeline into Acumatica."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest

from resources.acumatica import AcumaticaClient, odata_string
from tests.badinput.record_cases import BadRecordCases

pytestmark = pytest.mark.slow
INVOICE_SIGN = {"Invoice": 1, "Debit Memo": 1, "Credit Memo": -1}


class AcumaticaView:
    """Acumatica read through its contract-based API, as an accountant's inquiry would."""

    def __init__(self, info: dict):
        a = info["acumatica"]
        self.args = (a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"], a["password"])

    def customers_named(self, name: str) -> list[str]:
        with AcumaticaClient(*self.args) as acu:
            rows = acu.list("Customer", filter=f"CustomerName eq {odata_string(name)}", select="CustomerID,CustomerName")
        return [r["CustomerID"] for r in rows if r["CustomerName"] == name]

    def invoice(self, number: str) -> tuple[str, Decimal, list[str]] | None:
        with AcumaticaClient(*self.args) as acu:
            found = acu.find_by_external_ref("Invoice", [number], expand="Details").get(number, [])
        if not found:
            return None
        [doc] = found
        return (doc["Type"], INVOICE_SIGN[doc["Type"]] * Decimal(str(doc["Amount"])),
                [d.get("TransactionDescription") for d in doc.get("Details") or []])

    def invoices(self, numbers: Iterable[str]) -> dict[str, int]:
        with AcumaticaClient(*self.args) as acu:
            found = acu.find_by_external_ref("Invoice", list(numbers))
        return {ref: len(rows) for ref, rows in found.items()}


class TestAcumaticaBadRecords(BadRecordCases):
    connection = "cascade-hvac"
    erp_kind = "acumatica"
    credit_memo_type = "Credit Memo"
    name_limit = 255  # Customer.CustomerName nvarchar(255)
    line_limit = 256  # ARTran.TranDesc nvarchar(256)
    reference_limit = 40  # CustomerOrder

    def erp_view(self, stack) -> AcumaticaView:
        return AcumaticaView(stack.info)
