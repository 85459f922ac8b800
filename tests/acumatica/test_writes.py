"""Writes through the client against the simulator: upsert, 422 field errors, release workflow,
payments, bills, not-found, versions, $filter escaping and lookups by external reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from resources.acumatica import EndpointVersionError, odata_string
from resources.http import ConflictError, NotFoundError, ValidationError
from tests.acumatica.documents import invoice


def test_invoice_put_release_and_read_back(acu):
    saved = acu.put("Invoice", invoice(ref="ST-100", amount="250.10",
                                       TaxDetails=[{"TaxID": "WASALES", "TaxAmount": Decimal("25.01")}]),
                    expand="Details,TaxDetails")
    assert saved["Status"] == "Balanced"
    assert saved["Amount"] == Decimal("275.11") and isinstance(saved["Amount"], Decimal)
    assert saved["TaxTotal"] == Decimal("25.01")
    assert saved["Details"][0]["ExtendedPrice"] == Decimal("250.1")
    assert acu.release("Invoice", saved["id"]) is None  # the action's 204 confirms; no read-back
    released = acu.get("Invoice", saved["id"])
    assert released["Status"] == "Open"
    assert released["Balance"] == Decimal("275.11")
    again = acu.get("Invoice", ["Invoice", saved["ReferenceNbr"]], expand="Details")
    assert again["id"] == saved["id"] and len(again["Details"]) == 1


def test_422_names_each_bad_field(acu):
    bad = invoice(customer="NOSUCH", Description="x" * 300)
    bad["Details"] = [
        {"Account": "99999", "Subaccount": "SEA-HVC", "Branch": "SEATTLE", "UnitPrice": Decimal("10")},
        {"Account": "40100", "Subaccount": "ZZZ-ZZZ", "Branch": "NOWHERE", "Qty": Decimal(2),
         "UnitPrice": Decimal("10"), "ExtendedPrice": Decimal("25")},
        {"Subaccount": "SEA-HVC", "UnitPrice": Decimal("1")},
    ]
    with pytest.raises(ValidationError) as err:
        acu.put("Invoice", bad)
    text = str(err.value)
    assert err.value.status == 422 and err.value.error_class == "validation"
    assert "Customer (NOSUCH): 'Customer' cannot be found in the system." in text
    assert "Description" in text and "exceeds the maximum of 256 characters" in text
    assert "Details[1].Account (99999): 'Account' cannot be found in the system." in text
    assert "Details[2].Subaccount (ZZZ-ZZZ): 'Subaccount' cannot be found in the system." in text
    assert "Details[2].Branch (NOWHERE): 'Branch' cannot be found in the system." in text
    assert "Details[2].ExtendedPrice" in text and "does not equal quantity" in text
    assert "Details[3].Account (empty): 'Account' cannot be empty." in text


def test_header_amount_must_match_lines(acu):
    with pytest.raises(ValidationError, match=r"Amount \(.*100.5.*\): The document is out of balance"):
        acu.put("Invoice", invoice(amount="100.00", Amount=Decimal("100.50")))


def test_customer_name_required_and_length_limited(acu):
    with pytest.raises(ValidationError, match=r"CustomerName \(empty\): 'Account Name' cannot be empty"):
        acu.put("Customer", {"CustomerID": "NEW01", "CustomerClass": "DEFAULT"})
    with pytest.raises(ValidationError, match=r"CustomerName .*exceeds the maximum of 255 characters"):
        acu.put("Customer", {"CustomerID": "NEW01", "CustomerName": "N" * 256})


def test_customer_upsert_by_key_and_autonumber(acu, sim):
    first = acu.put("Customer", {"CustomerID": "ST9001", "CustomerName": "Alder Street Dental"})
    second = acu.put("Customer", {"CustomerID": "ST9001", "CustomerName": "Alder Street Dental LLC"})
    assert first["id"] == second["id"] and second["CustomerName"] == "Alder Street Dental LLC"
    assert second["LastModifiedDateTime"] >= first["LastModifiedDateTime"]
    numbered = acu.put("Customer", {"CustomerName": "Walk-in"})
    assert numbered["CustomerID"].startswith("C") and len(numbered["CustomerID"]) == 7
    with pytest.raises(Exception) as err:
        acu.put("Customer", {"CustomerID": "ST9001", "CustomerName": "dup"}, create_only=True)
    assert isinstance(err.value, ConflictError) and err.value.status == 412


def test_unwrapped_and_unknown_fields_refused(sim):
    token = sim.token()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = "/entity/Default/24.200.001/Customer"
    r = sim.http.put(url, headers=headers, json={"CustomerID": "RAW1", "CustomerName": "Raw Value"})
    assert r.status_code == 400
    assert r.json()["message"] == "The request is invalid."
    assert "entity.CustomerID" in r.json()["modelState"]
    r = sim.http.put(url, headers=headers, json={"CustomerID": {"value": "RAW1"}, "CustomerName": {"value": "A"},
                                                  "Nickname": {"value": "x"}})
    assert r.status_code == 400 and "entity.Nickname" in r.json()["modelState"]
    r = sim.http.put(url, headers=headers, content=b"")
    assert r.status_code == 400
    assert r.json()["modelState"] == {"": ["The request body should not be empty."]}


def test_released_invoice_cannot_be_edited_or_deleted(acu):
    saved = acu.put("Invoice", invoice(ref="ST-200"))
    acu.release("Invoice", saved["id"])
    with pytest.raises(ValidationError, match=r"Description .*cannot be edited"):
        acu.put("Invoice", {"id": saved["id"], "Description": "changed after release"})
    with pytest.raises(ValidationError, match="cannot be deleted because it has been released"):
        acu.delete("Invoice", saved["id"])
    assert acu.get("Invoice", saved["id"])["Description"] == "ServiceTitan invoice ST-200"


def test_unreleased_invoice_can_be_edited_and_deleted(acu):
    saved = acu.put("Invoice", invoice(ref="ST-201", Hold=True))
    assert saved["Status"] == "On Hold"
    edited = acu.put("Invoice", {"id": saved["id"], "Description": "edited"})
    assert edited["Description"] == "edited" and edited["ReferenceNbr"] == saved["ReferenceNbr"]
    acu.delete("Invoice", saved["id"])
    with pytest.raises(NotFoundError):
        acu.get("Invoice", saved["id"])


def test_release_on_hold_fails_with_the_business_message(acu):
    saved = acu.put("Invoice", invoice(ref="ST-202", Hold=True))
    with pytest.raises(ValidationError, match="is on hold and cannot be released"):
        acu.release("Invoice", saved["id"])


def test_payment_applies_to_released_invoice_and_closes_it(acu):
    inv = acu.put("Invoice", invoice(ref="ST-300", amount="80.00"))
    with pytest.raises(ValidationError, match="is not released and cannot be applied"):
        acu.put("Payment", {"CustomerID": "C000101", "PaymentMethod": "CHECK", "PaymentRef": "P-300", "Hold": False,
                            "DocumentsToApply": [{"DocType": "INV", "ReferenceNbr": inv["ReferenceNbr"]}]})
    acu.release("Invoice", inv["id"])
    with pytest.raises(ValidationError, match=r"PaymentAmount .*more than the payment amount"):
        acu.put("Payment", {"CustomerID": "C000101", "PaymentMethod": "CHECK", "PaymentRef": "P-300", "Hold": False,
                            "PaymentAmount": Decimal("50.00"),
                            "DocumentsToApply": [{"DocType": "Invoice", "ReferenceNbr": inv["ReferenceNbr"],
                                                  "AmountPaid": Decimal("80.00")}]})
    pay = acu.put("Payment", {"CustomerID": "C000101", "PaymentMethod": "CHECK", "PaymentRef": "P-300",
                              "Hold": False, "DocumentsToApply": [{"DocType": "INV", "ReferenceNbr": inv["ReferenceNbr"],
                                                                   "AmountPaid": Decimal("80.00")}]},
                  expand="DocumentsToApply")
    assert pay["PaymentAmount"] == Decimal("80") and pay["CashAccount"] == "10300"
    assert pay["DocumentsToApply"][0]["DocType"] == "Invoice"
    acu.release("Payment", pay["id"])
    closed = acu.get("Invoice", inv["id"], expand="ApplicationsDefault")
    assert closed["Status"] == "Closed" and closed["Balance"] == Decimal("0")
    assert closed["ApplicationsDefault"][0]["ReferenceNbr"] == pay["ReferenceNbr"]
    assert acu.find_by_external_ref("Payment", ["P-300"])["P-300"][0]["Status"] == "Closed"


def test_payment_cash_account_must_suit_the_method(acu):
    inv = acu.put("Invoice", invoice(ref="ST-301"))
    acu.release("Invoice", inv["id"])
    with pytest.raises(ValidationError, match="not allowed for the payment method 'ACH'"):
        acu.put("Payment", {"CustomerID": "C000101", "PaymentMethod": "ACH", "CashAccount": "10300",
                            "PaymentAmount": Decimal("1.00")})


def test_bill_requires_vendor_and_unique_vendor_ref(acu):
    line = {"Account": "50000", "Subaccount": "SEA-HVC", "Qty": Decimal(3), "UnitCost": Decimal("12.50")}
    with pytest.raises(ValidationError) as err:
        acu.put("Bill", {"Vendor": "WINSUPPLY", "Hold": False, "Details": [line]})
    assert "Vendor (WINSUPPLY): 'Vendor' cannot be found in the system." in str(err.value)
    assert "VendorRef (empty): 'Vendor Ref.' cannot be empty." in str(err.value)
    bill = acu.put("Bill", {"Vendor": "FERGUSON", "VendorRef": "PO-77", "Hold": False, "Details": [line]},
                   expand="Details")
    assert bill["Amount"] == Decimal("37.5") and bill["Details"][0]["ExtendedCost"] == Decimal("37.5")
    with pytest.raises(ConflictError, match="same vendor reference number"):
        acu.put("Bill", {"Vendor": "FERGUSON", "VendorRef": "PO-77", "Hold": False, "Details": [line]})
    acu.release("Bill", bill["id"])
    assert acu.get("Bill", bill["id"])["Status"] == "Open"


def test_missing_record_by_key_is_not_found(acu, sim):
    with pytest.raises(NotFoundError):
        acu.get("Customer", "NOBODY")
    token = sim.token()["access_token"]
    r = sim.http.get("/entity/Default/24.200.001/Customer/NOBODY", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500
    assert r.json()["exceptionType"] == "PX.Api.ContractBased.NoEntitySatisfiesTheConditionException"


def test_wrong_version_fails_fast_naming_both(sim):
    client = sim.client(version="25.200.001")
    try:
        with pytest.raises(EndpointVersionError) as err:
            client.list("Customer")
        assert "Default/25.200.001" in str(err.value) and "Default/24.200.001" in str(err.value)
        assert sim.seats()["sign_ins"] == 0  # refused before signing in: no seat taken
    finally:
        client.close()
    r = sim.http.get("/entity/Default/25.200.001/Customer")
    assert r.status_code == 404


def test_older_served_version_works(sim):
    with sim.client(version="23.200.001") as client:
        assert len(client.list("Account", filter="CashAccount eq true")) == 3


def test_filter_escaping_cannot_widen_a_query(acu):
    acu.put("Invoice", invoice(ref="O'Brien-1"))
    acu.put("Invoice", invoice(ref="ST-400"))
    hostile = "O'Brien) or (1 eq 1"
    assert acu.list("Invoice", filter=f"CustomerOrder eq {odata_string(hostile)}") == []
    assert acu.find_by_external_ref("Invoice", [hostile]) == {}
    found = acu.find_by_external_ref("Invoice", ["O'Brien-1", "ST-400", "ST-404"])
    assert set(found) == {"O'Brien-1", "ST-400"}
    customers = acu.list("Customer", filter=f"CustomerName eq {odata_string(chr(79) + chr(39) + 'Brien Family Dental')}")
    assert [c["CustomerID"] for c in customers] == ["C000108"]


def test_lookup_by_external_ref_is_batched(acu, sim):
    refs = [f"ST-5{i:03d}" for i in range(60)]
    for ref in refs[:30]:
        acu.put("Invoice", invoice(ref=ref))
    before = sim.stats()["by_status"].get("200", 0)
    found = acu.find_by_external_ref("Invoice", refs, chunk_size=25)
    after = sim.stats()["by_status"].get("200", 0)
    assert set(found) == set(refs[:30])
    assert after - before == 3  # 60 refs in 3 requests


def test_filters_dates_paging_and_last_modified(acu):
    start = datetime.now(UTC) - timedelta(seconds=5)
    created = [acu.put("Invoice", invoice(ref=f"ST-6{i:02d}")) for i in range(5)]
    flt = f"LastModifiedDateTime gt datetimeoffset'{start.isoformat()}' and startswith(CustomerOrder,'ST-6')"
    rows = acu.list("Invoice", filter=flt, select="CustomerOrder,ReferenceNbr")
    assert sorted(r["CustomerOrder"] for r in rows) == [f"ST-6{i:02d}" for i in range(5)]
    assert "Amount" not in rows[0]
    paged = list(acu.iter_all("Invoice", filter="substringof('ST-6', CustomerOrder)", page_size=2))
    assert len(paged) == 5
    assert acu.list("Invoice", filter=flt, top=2, skip=4)[0]["id"] == created[4]["id"]
    later = acu.put("Invoice", {"id": created[0]["id"], "Description": "touched"})
    assert later["LastModifiedDateTime"] > created[0]["LastModifiedDateTime"]


def test_reference_data_is_seeded_from_the_contractor(acu):
    from simulators.contractor import CASCADE, GL_ACCOUNTS, acumatica_subaccount

    assert [b.BranchID for b in acu.list_branches()] == [b.code for b in CASCADE.branches]
    assert {a.AccountCD for a in acu.list_accounts()} == {a.number for a in GL_ACCOUNTS}
    subs = {s.SubaccountCD for s in acu.list_subaccounts()}
    assert acumatica_subaccount(CASCADE.branches[1], CASCADE.trades[0]) in subs and "000-000" in subs
    vendors = {v["VendorName"]: v["VendorID"] for v in acu.list("Vendor")}
    assert vendors["Ferguson Enterprises"] == "FERGUSON" and "Winsupply of Everett" not in vendors
    assert vendors["Lumière Électrique SARL"] == "LUMIERE"
    assert {c.PaymentMethod for c in acu.list_cash_accounts()} == {"CASH", "CHECK", "CREDITCARD", "ACH"}
