"""Sample documents for the Acumatica tests."""

from __future__ import annotations

from decimal import Decimal


def invoice(customer: str = "C000101", ref: str = "ST-1", amount: str = "100.00", **extra) -> dict:
    record = {"Customer": customer, "Hold": False, "CustomerOrder": ref, "Description": f"ServiceTitan invoice {ref}",
              "Details": [{"Account": "40100", "Subaccount": "SEA-HVC", "Branch": "SEATTLE", "Qty": Decimal(1),
                           "UnitPrice": Decimal(amount), "TransactionDescription": "Service call"}]}
    record.update(extra)
    return record
