"""Every response shape the client uses validates against ServiceTitan's OpenAPI schemas."""

from __future__ import annotations

import pytest

from tests.servicetitan.openapi import assert_valid

T = 1000001
LISTS = [
    ("settings", "business-units", "settings", "PaginatedResponse_Of_TenantSettings.V2.BusinessUnitResponse"),
    ("accounting", "gl-accounts", "accounting", "PaginatedResponse_Of_Accounting.V2.GlAccountExtendedResponse"),
    ("accounting", "payment-types", "accounting", "PaginatedResponse_Of_Accounting.V2.PaymentTypeResponse"),
    ("crm", "customers", "crm", "PaginatedResponse_Of_Crm.V2.Customers.CustomerResponse"),
    ("crm", "locations", "crm", "PaginatedResponse_Of_Crm.V2.Locations.LocationResponse"),
    ("inventory", "vendors", "inventory", "PaginatedResponse_Of_Inventory.V2.VendorResponse"),
    ("inventory", "purchase-orders", "inventory", "PaginatedResponse_Of_Inventory.V2.PurchaseOrderResponse"),
    ("inventory", "receipts", "inventory", "PaginatedResponse_Of_Inventory.V2.InventoryReceiptResponse"),
    ("accounting", "invoices", "accounting", "PaginatedResponse_Of_Accounting.V2.InvoiceResponse"),
    ("accounting", "payments", "accounting", "PaginatedResponse_Of_Accounting.V2.DetailedPaymentResponse"),
    ("accounting", "inventory-bills/paginated", "accounting",
     "PaginatedResponse_Of_Accounting.V2.InventoryBillResponse"),
]
EXPORTS = [
    ("settings", "business-units", "settings", "ExportResponse_Of_TenantSettings.V2.ExportBusinessUnitResponse"),
    ("crm", "customers", "crm", "ExportResponse_Of_Crm.V2.ExportCustomerResponse"),
    ("crm", "locations", "crm", "ExportResponse_Of_Crm.V2.ExportLocationsResponse"),
    ("inventory", "purchase-orders", "inventory", "ExportResponse_Of_Inventory.V2.ExportPurchaseOrdersResponse"),
    ("accounting", "invoices", "accounting", "ExportResponse_Of_Accounting.V2.ExportInvoiceResponse"),
    ("accounting", "payments", "accounting", "ExportResponse_Of_Accounting.V2.ExportPaymentResponse"),
    ("accounting", "inventory-bills", "accounting", "ExportResponse_Of_Accounting.V2.ExportInventoryBillResponse"),
]


@pytest.mark.parametrize(("ns", "path", "spec", "schema"), LISTS, ids=[x[1] for x in LISTS])
def test_list_pages_match_the_spec(st, ns, path, spec, schema):
    with st.raw() as http:
        body = http.get(f"/{ns}/v2/tenant/{T}/{path}", params={"pageSize": 400, "includeTotal": "true",
                                                                "active": "Any", "activeState": "All"}).json()
    assert body["data"], f"{path} returned no rows to check"
    assert_valid(spec, schema, body)


@pytest.mark.parametrize(("ns", "path", "spec", "schema"), EXPORTS, ids=[x[1] for x in EXPORTS])
def test_export_pages_match_the_spec(st, ns, path, spec, schema):
    with st.raw() as http:
        body = http.get(f"/{ns}/v2/tenant/{T}/export/{path}", params={"includeRecentChanges": "true"}).json()
    assert body["data"] and body["continueFrom"]
    assert_valid(spec, schema, body)


def test_inventory_bills_plain_list_is_a_bare_array(st):
    with st.raw() as http:
        body = http.get(f"/accounting/v2/tenant/{T}/inventory-bills", params={"pageSize": 25}).json()
    assert isinstance(body, list) and len(body) == 25
    assert_valid("accounting", "Accounting.V2.InventoryBillResponse", body, array=True)


@pytest.mark.parametrize(("ns", "path", "spec", "schema"), [
    ("crm", "customers", "crm", "Crm.V2.Customers.CustomerResponse"),
    ("crm", "locations", "crm", "Crm.V2.Locations.LocationResponse"),
    ("inventory", "vendors", "inventory", "Inventory.V2.VendorResponse"),
    ("inventory", "purchase-orders", "inventory", "Inventory.V2.PurchaseOrderResponse"),
    ("settings", "business-units", "settings", "TenantSettings.V2.BusinessUnitResponse"),
    ("accounting", "gl-accounts", "accounting", "Accounting.V2.GlAccountExtendedResponse"),
])
def test_single_records_match_the_spec(st, ns, path, spec, schema):
    with st.raw() as http:
        first = http.get(f"/{ns}/v2/tenant/{T}/{path}", params={"pageSize": 1}).json()["data"][0]
        record = http.get(f"/{ns}/v2/tenant/{T}/{path}/{first['id']}").json()
    assert record == first
    assert_valid(spec, schema, record)


def test_error_bodies_are_problem_details(st):
    with st.raw() as http:
        bodies = [
            http.get(f"/crm/v2/tenant/{T}/customers", headers={"ST-App-Key": ""}).json(),  # 401
            http.get(f"/crm/v2/tenant/{T}/customers", params={"ids": ",".join(map(str, range(51)))}).json(),  # 400
            http.get(f"/crm/v2/tenant/{T}/customers/1").json(),  # 404
            http.get(f"/crm/v2/tenant/{T}/nothing-here").json(),  # 404
        ]
    for body in bodies:
        assert_valid("crm", "ApiErrorResponse", body)


def test_money_and_time_formats(st):
    with st.raw() as http:
        invoice = http.get(f"/accounting/v2/tenant/{T}/invoices", params={"pageSize": 1}).json()["data"][0]
        po = http.get(f"/inventory/v2/tenant/{T}/purchase-orders", params={"pageSize": 1}).json()["data"][0]
    assert isinstance(invoice["total"], str) and isinstance(invoice["items"][0]["price"], str)
    assert isinstance(po["total"], (int, float))
    created = invoice["createdOn"]
    assert created.endswith("Z") and len(created.split(".")[1]) == 8  # seven digits + Z
    assert invoice["invoiceDate"].endswith("T00:00:00Z")


def test_the_schema_check_itself_catches_drift(st):
    from tests.servicetitan.openapi import validator

    with st.raw() as http:
        invoice = http.get(f"/accounting/v2/tenant/{T}/invoices", params={"pageSize": 1}).json()["data"][0]
    check = validator("accounting", "Accounting.V2.InvoiceResponse")
    assert check.is_valid(invoice)
    assert not check.is_valid({**invoice, "unexpectedField": 1})
    assert not check.is_valid({**invoice, "total": 12.5})


def test_missing_documents_fail_under_ci_and_skip_elsewhere(monkeypatch, tmp_path):
    """Schema conformance cannot pass in CI by checking nothing: without the reference documents
    a CI run (env CI set) fails; a developer's run skips with the path it looked in."""
    from tests.servicetitan import openapi

    def outcome() -> BaseException | None:
        try:
            openapi._document.__wrapped__("accounting")
        except (pytest.fail.Exception, pytest.skip.Exception) as exc:  # caught: a skip must not end this test
            return exc
        return None

    monkeypatch.setattr(openapi, "SPEC_DIR", tmp_path / "missing")
    monkeypatch.setenv("CI", "true")
    under_ci = outcome()
    assert isinstance(under_ci, pytest.fail.Exception) and "accounting-v2.json not found" in str(under_ci)
    monkeypatch.delenv("CI")
    assert isinstance(outcome(), pytest.skip.Exception)
