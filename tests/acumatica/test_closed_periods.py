"""Financial periods (issue 17): the simulator serves FinancialPeriod / FinancialYear of the
Default 24.200.001 contract and refuses, as Acumatica does, a document dated in a period closed
for its module (AR: invoices and payments; AP: bills); fieldledger reads the closed periods and
quarantines such a document as erp_validation with the fix before sending anything.

Days are chosen relative to the simulator's start (the 15th two months back, open in the seeded
calendar; the 15th thirty months back, closed), never a calendar position with luck."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from mappings.intake import register
from posting.registry import open_adapter
from tests.acumatica.test_adapter_acumatica import (
    connection_for,
    item,
    post,
    st_bill,
    st_customer,
    st_invoice,
    vault_for,
)

BASE = "/entity/Default/24.200.001"


def fifteenth(months_back: int) -> date:
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 15)


OPEN_DAY, CLOSED_DAY = fifteenth(2), fifteenth(30)


def mmyyyy(day: date) -> str:
    return f"{day.month:02d}{day.year}"


@pytest.fixture
def sim(make_sim):
    return make_sim(tier="trial", release_seconds=0)


def auth(sim) -> dict:
    return {"Authorization": f"Bearer {sim.token()['access_token']}"}


def invoice_body(day: date, ref: str) -> dict:
    return {"Customer": {"value": "C000101"}, "CustomerOrder": {"value": ref}, "Hold": {"value": False},
            "Date": {"value": day.isoformat()},
            "Details": [{"Account": {"value": "40100"}, "Subaccount": {"value": "SEA-HVC"},
                         "Branch": {"value": "SEATTLE"}, "ExtendedPrice": {"value": 10}}]}


def bill_body(day: date, ref: str) -> dict:
    return {"Vendor": {"value": "FERGUSON"}, "VendorRef": {"value": ref}, "Hold": {"value": False},
            "Date": {"value": day.isoformat()},
            "Details": [{"Account": {"value": "50000"}, "Subaccount": {"value": "SEA-HVC"},
                         "Branch": {"value": "SEATTLE"}, "ExtendedCost": {"value": 10}}]}


def test_financial_periods_are_served_with_module_flags(sim):
    h = auth(sim)
    years = sim.http.get(f"{BASE}/FinancialPeriod", headers=h, params={"$expand": "Details"})
    assert years.status_code == 200, years.text
    rows = {d["FinancialPeriodID"]["value"]: d for y in years.json() for d in y["Details"]}
    assert rows[mmyyyy(OPEN_DAY)]["Status"]["value"] == "Open"
    assert rows[mmyyyy(OPEN_DAY)]["ClosedInAR"]["value"] is False
    closed = rows[mmyyyy(CLOSED_DAY)]
    assert (closed["Status"]["value"], closed["ClosedInAR"]["value"], closed["ClosedInAP"]["value"]) == (
        "Closed", True, True)
    one = sim.http.get(f"{BASE}/FinancialPeriod/{OPEN_DAY.year}", headers=h, params={"$expand": "Details"})
    assert one.status_code == 200 and len(one.json()["Details"]) == 12
    setup = sim.http.get(f"{BASE}/FinancialYear", headers=h)
    assert setup.status_code == 200 and setup.json()[0]["NbrOfFinancialPeriods"]["value"] == 12


def test_documents_in_a_closed_period_are_refused_per_module(sim):
    h = auth(sim)
    refused = sim.http.put(f"{BASE}/Invoice", headers=h, json=invoice_body(CLOSED_DAY, "OLD-1"))
    assert refused.status_code == 422
    assert refused.json()["PostPeriod"]["error"] == (
        f"The {CLOSED_DAY:%m-%Y} financial period is closed in the CASCADE company.")
    assert refused.json()["error"].startswith("Inserting 'AR Invoice' record raised at least one error.")
    # closed in AR only: invoices and payments refused, bills accepted
    closing = sim.http.put("/_sim/period", json={"period": mmyyyy(OPEN_DAY), "AR": True})
    assert closing.json()["ClosedInAR"] is True
    invoice = sim.http.put(f"{BASE}/Invoice", headers=h, json=invoice_body(OPEN_DAY, "AR-1"))
    assert invoice.status_code == 422
    assert invoice.json()["PostPeriod"]["error"] == (
        f"The {OPEN_DAY:%m-%Y} financial period of the CASCADE company is closed in Accounts Receivable.")
    payment = sim.http.put(f"{BASE}/Payment", headers=h, json={
        "CustomerID": {"value": "C000101"}, "PaymentMethod": {"value": "CHECK"}, "PaymentAmount": {"value": 5},
        "ApplicationDate": {"value": OPEN_DAY.isoformat()}})
    assert payment.status_code == 422 and "closed in Accounts Receivable" in payment.json()["ApplicationDate"]["error"]
    bill = sim.http.put(f"{BASE}/Bill", headers=h, json=bill_body(OPEN_DAY, "AP-1"))
    assert bill.status_code == 200, bill.text
    assert bill.json()["PostPeriod"]["value"] == mmyyyy(OPEN_DAY)
    sim.http.put("/_sim/period", json={"period": mmyyyy(OPEN_DAY), "AR": False, "AP": True})
    assert sim.http.put(f"{BASE}/Invoice", headers=h, json=invoice_body(OPEN_DAY, "AR-2")).status_code == 200
    bill = sim.http.put(f"{BASE}/Bill", headers=h, json=bill_body(OPEN_DAY, "AP-2"))
    assert bill.status_code == 422 and "closed in Accounts Payable" in bill.json()["PostPeriod"]["error"]


def test_fieldledger_quarantines_a_document_of_a_closed_period_before_posting(store, sim):
    conn = connection_for(sim)
    vault = vault_for(store, conn, sim)
    sim.http.put("/_sim/period", json={"period": mmyyyy(OPEN_DAY), "AR": True}).raise_for_status()
    stamp = f"{OPEN_DAY.isoformat()}T00:00:00Z"
    invoice = dict(st_invoice(7301, 9001, 1101, [item(1, "Repair", "1", "10.00", "10.00", "40100")]),
                   invoiceDate=stamp)
    bill = dict(st_bill(6301, 5101, 1101, [("Coil", "1", "10.00")]), billDate=stamp)
    summary = register(store, conn, "customer", [st_customer(9001, "Pike Place Property Management")], OPEN_DAY)
    register(store, conn, "vendor", [st_customer(5101, "Ferguson Enterprises")], OPEN_DAY, summary=summary)
    register(store, conn, "invoice", [invoice], OPEN_DAY, summary=summary)
    register(store, conn, "bill", [bill], OPEN_DAY, summary=summary)
    adapter = open_adapter(conn, vault)
    try:
        assert f"{OPEN_DAY:%Y%m}" in adapter.reference_data().closed_periods
        before = sim.stats()["by_status"].get("422", 0)
        result = post(store, conn, adapter)
    finally:
        adapter.close()
    failure = next(f for f in result.failures if f["record"] == "invoice 7301")
    assert failure["class"] == "erp_validation"
    assert f"financial period {OPEN_DAY:%m-%Y} (holding {OPEN_DAY}) is closed in Acumatica (Accounts Receivable)" \
        in failure["message"]
    assert "reopen it for Accounts Receivable" in failure["message"] and "nothing was posted" in failure["message"]
    assert sim.stats()["by_status"].get("422", 0) == before  # refused before anything was sent
    record = store.records(conn.name, source_type="invoice")[-1]
    assert (record.status, record.error_class) == ("failed", "erp_validation")
    acu = sim.client()
    try:
        assert acu.find_by_external_ref("Invoice", ["INV-7301"]) == {}
        bills = acu.find_by_external_ref("Bill", ["B-6301"])["B-6301"]  # AP is open that month
        assert len(bills) == 1 and bills[0]["Amount"] == Decimal("10")
    finally:
        acu.close()
