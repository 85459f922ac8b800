"""Mapping rules, line by line: every line on a valid account and coding, or a clear refusal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mappings.canonical import ARInvoice, document_from_json
from mappings.connection import ConnectionFileError, load_connection_file, parse_connection
from mappings.rules import MappingError, ZeroAmountDocument, map_bill, map_invoice, map_party, map_payment

DEMO = Path(__file__).resolve().parents[2] / "mappings" / "connections"


@pytest.fixture(scope="module")
def cascade():
    return load_connection_file(DEMO / "cascade-hvac.yaml")


@pytest.fixture(scope="module")
def summit():
    return load_connection_file(DEMO / "summit-mechanical.yaml")


def gl(number):
    return {"id": int(number), "name": f"GL {number}", "number": number, "type": "Income", "detailType": "Income"}


def invoice(**over):
    record = {
        "id": 5001, "referenceNumber": "INV-5001", "invoiceDate": "2026-11-03T00:00:00Z",
        "dueDate": "2026-12-03T00:00:00Z", "subTotal": "300.00", "salesTax": "24.60", "total": "324.60",
        "customer": {"id": 77, "name": "Ana Núñez"}, "businessUnit": {"id": 1102, "name": "Seattle Plumbing"},
        "job": {"id": 9, "number": "J-9", "type": "Service"},
        "items": [
            {"id": 2, "order": 2, "type": "Material", "skuName": "Valve", "description": "Ball valve",
             "quantity": "2", "price": "50.00", "total": "100.00", "generalLedgerAccount": gl("41000")},
            {"id": 1, "order": 1, "type": "Service", "skuName": "Repair", "description": "Leak <b>repair</b>",
             "quantity": "1", "price": "200.00", "total": "200.00", "generalLedgerAccount": gl("40200")},
            {"id": 3, "order": 3, "type": "Service", "skuName": "Free check", "quantity": "1", "price": "0.00",
             "total": "0.00", "generalLedgerAccount": gl("40200")},
        ],
    }
    record.update(over)
    return record


def test_invoice_lines_land_on_mapped_accounts_and_branch(cascade):
    doc = map_invoice(invoice(), cascade)
    assert isinstance(doc, ARInvoice)
    assert doc.number == "INV-5001" and doc.customer_id == "77" and str(doc.date) == "2026-11-03"
    assert [(line.description, line.amount, line.coding.account) for line in doc.lines] == [
        ("Leak <b>repair</b>", Decimal("200.00"), "40200"),
        ("Ball valve", Decimal("100.00"), "41000"),
        ("Sales tax", Decimal("24.60"), "22000"),
    ]
    assert {(line.coding.branch, line.coding.subaccount) for line in doc.lines} == {("SEATTLE", "SEA-PLM")}
    assert doc.header.account == "12000" and doc.total == Decimal("324.60")
    assert all(isinstance(line.amount, Decimal) for line in doc.lines)


def test_vantagepoint_coding_uses_project_and_organization(summit):
    doc = map_invoice(invoice(businessUnit={"id": 2105, "name": "Colorado Springs HVAC"}), summit)
    assert {(line.coding.project, line.coding.organization) for line in doc.lines} == {("2026-SPR-HVC", "01:SPR")}


def test_unmapped_business_unit_is_refused_with_the_fix(cascade):
    with pytest.raises(MappingError) as err:
        map_invoice(invoice(businessUnit={"id": 1999, "name": "Spokane HVAC"}), cascade)
    message = str(err.value)
    assert "business unit 1999 (Spokane HVAC) has no mapping" in message
    assert "mapping.business_units.1999" in message and "fieldledger replay --connection cascade-hvac" in message
    assert err.value.error_class == "mapping"


def test_falls_back_from_item_gl_to_item_type_to_unit_default(cascade):
    items = [
        {"id": 1, "type": "Service", "quantity": "1", "price": "10", "total": "10.00",
         "generalLedgerAccount": gl("47777")},  # unknown ST GL -> not in the map -> unit default
        {"id": 2, "type": "Equipment", "quantity": "1", "price": "5", "total": "5.00", "generalLedgerAccount": None},
    ]
    doc = map_invoice(invoice(items=items, salesTax="0.00", total="15.00"), cascade)
    assert [line.coding.account for line in doc.lines] == ["40200", "41000"]


def test_no_revenue_account_anywhere_is_refused():
    text = (DEMO / "cascade-hvac.yaml").read_text().replace('revenue_account: "40200"', "revenue_account: null")
    conn = parse_connection(text, Path("cascade-hvac.yaml"))
    items = [{"id": 1, "type": "Service", "quantity": "1", "price": "10", "total": "10.00",
              "generalLedgerAccount": gl("47777")}]
    with pytest.raises(MappingError, match="no revenue account for item"):
        map_invoice(invoice(items=items, salesTax="0.00", total="10.00"), conn)


def test_invoice_with_no_lines_and_zero_and_negative_totals(cascade):
    with pytest.raises(MappingError, match="has no lines"):
        map_invoice(invoice(items=[], salesTax="0.00", total="50.00"), cascade)
    with pytest.raises(ZeroAmountDocument):
        map_invoice(invoice(items=[], salesTax="0.00", total="0.00"), cascade)
    credit = map_invoice(invoice(items=[{"id": 1, "type": "Service", "quantity": "1", "price": "-40.00",
                                         "total": "-40.00", "generalLedgerAccount": gl("40200")}],
                                 salesTax="0.00", total="-40.00"), cascade)
    assert credit.total == Decimal("-40.00") and credit.lines[0].amount == Decimal("-40.00")


def test_lines_that_do_not_add_up_are_refused(cascade):
    with pytest.raises(MappingError, match="add up to 324.60, the total is 999.00"):
        map_invoice(invoice(total="999.00"), cascade)


def test_invoice_without_customer_or_unit(cascade):
    with pytest.raises(MappingError, match="has no customer"):
        map_invoice(invoice(customer=None), cascade)
    with pytest.raises(MappingError, match="has no business unit"):
        map_invoice(invoice(businessUnit=None), cascade)


def test_payment_cash_account_by_type_and_applications(cascade):
    record = {"id": 801, "referenceNumber": "PMT-801", "date": "2026-11-04T00:00:00Z", "total": "150.00",
              "type": "Credit Card", "customer": {"id": 77, "name": "Ana"},
              "businessUnit": {"id": 1102, "name": "Seattle Plumbing"},
              "appliedTo": [{"appliedTo": 5001, "appliedAmount": "100.00", "appliedToReferenceNumber": "INV-5001"},
                            {"appliedTo": 5002, "appliedAmount": "50.00", "appliedToReferenceNumber": "INV-5002"}]}
    doc = map_payment(record, cascade)
    assert doc.cash.account == "10200" and doc.cash.branch == "SEATTLE" and doc.ar.account == "12000"
    assert [(a.invoice_id, a.amount) for a in doc.applications] == [("5001", Decimal("100.00")),
                                                                    ("5002", Decimal("50.00"))]
    assert doc.reference == "PMT-801"
    with pytest.raises(MappingError, match="no cash account for payment type 'Bitcoin'"):
        map_payment({**record, "type": "Bitcoin"}, cascade)
    with pytest.raises(MappingError, match="applies 150.00 but only 20.00 was paid"):
        map_payment({**record, "total": "20.00"}, cascade)


def test_bill_lines_tax_and_freight(cascade):
    record = {"id": 3001, "referenceNumber": "B-3001", "vendorNumber": "FE-99", "billDate": "2026-11-02T00:00:00Z",
              "billAmount": "250.00", "taxAmount": "20.00", "shippingAmount": "15.00",
              "vendor": {"id": 5101, "name": "Ferguson Enterprises"}, "businessUnit": {"id": 1101, "name": "x"},
              "items": [{"id": 1, "order": 1, "name": "Coil", "quantity": "2", "cost": "125.00"}]}
    doc = map_bill(record, cascade)
    assert [(line.kind, line.amount, line.coding.account) for line in doc.lines] == [
        ("item", Decimal("250.00"), "13000"), ("tax", Decimal("20.00"), "13000"), ("freight", Decimal("15.00"), "60000")]
    assert doc.total == Decimal("285.00") and doc.header.account == "20000" and doc.vendor_id == "5101"


def test_parties(cascade):
    party = map_party({"id": 77, "name": "  O'Brien   Family Dental ", "address": {"street": "1 Main", "city": "Seattle"}},
                      "customer", cascade)
    assert party.name == "O'Brien Family Dental" and party.erp_id == "ST77" and party.match_by_name
    with pytest.raises(MappingError, match="the customer has no name"):
        map_party({"id": 78, "name": "  "}, "customer", cascade)


def test_documents_round_trip_and_hash_changes_with_content(cascade):
    doc = map_invoice(invoice(), cascade)
    again = document_from_json("invoice", doc.model_dump(mode="json"))
    assert again == doc and again.fingerprint() == doc.fingerprint()
    edited = map_invoice(invoice(total="334.60", salesTax="34.60"), cascade)
    assert edited.fingerprint() != doc.fingerprint()


def test_connection_file_errors_name_file_field_and_fix(tmp_path):
    bad = tmp_path / "cascade-hvac.yaml"
    text = (DEMO / "cascade-hvac.yaml").read_text()
    bad.write_text(text.replace("  tenant: 1000001\n", "  tennant: 1000001\n"))
    with pytest.raises(ConnectionFileError) as err:
        load_connection_file(bad)
    assert str(bad) in str(err.value)
    assert "servicetitan.tenant: required field is missing" in str(err.value)
    assert "servicetitan.tennant: unknown field" in str(err.value)
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConnectionFileError, match="not valid YAML at line"):
        load_connection_file(bad)
    bad.write_text(text.replace("      subaccount: SEA-HVC\n", "", 1))
    with pytest.raises(ConnectionFileError, match="needs 'branch' and 'subaccount'"):
        load_connection_file(bad)
    with pytest.raises(ConnectionFileError, match="fieldledger init --demo"):
        load_connection_file(tmp_path / "missing.yaml")


# --- issue 22, break 5: money as ServiceTitan states it -------------------------------------------

def half_cent_bill(**over):
    """2.50 x 1.01 = 2.525 and 0.50 x 0.01 = 0.005: ServiceTitan rounds each up (billAmount 2.54)."""
    record = {"id": 3002, "referenceNumber": "B-3002", "billDate": "2026-11-02T00:00:00Z", "billAmount": "2.54",
              "taxAmount": "0.00", "shippingAmount": "15.00", "otherAmount": "0.00",
              "vendor": {"id": 5101}, "businessUnit": {"id": 1101},
              "items": [{"id": 1, "order": 1, "name": "Fitting", "quantity": "2.50", "cost": "1.01"},
                        {"id": 2, "order": 2, "name": "Washer", "quantity": "0.50", "cost": "0.01"}]}
    record.update(over)
    return record


def test_bill_lines_are_rounded_as_servicetitan_rounds_and_none_is_dropped(cascade):
    doc = map_bill(half_cent_bill(), cascade)
    assert [(line.kind, line.amount) for line in doc.lines] == [
        ("item", Decimal("2.53")), ("item", Decimal("0.01")), ("freight", Decimal("15.00"))]
    assert doc.total == Decimal("17.54")
    assert doc.lines[0].unit_amount == Decimal("1.01") and doc.lines[0].quantity == Decimal("2.50")


def test_bill_whose_items_do_not_add_up_to_its_amount_is_quarantined_with_both_figures(cascade):
    with pytest.raises(MappingError) as err:
        map_bill(half_cent_bill(billAmount="5.67"), cascade)
    assert err.value.error_class == "mapping"
    assert "billAmount is 5.67, its items (quantity x cost, to the cent) add up to 2.54" in str(err.value)
    assert "fieldledger errors resolve" in err.value.fix


def test_bill_other_costs_are_posted_not_dropped(cascade):
    doc = map_bill(half_cent_bill(otherAmount="3.10"), cascade)
    assert [(line.kind, line.amount, line.coding.account) for line in doc.lines][-1] == ("other", Decimal("3.10"),
                                                                                          "60000")
    assert doc.total == Decimal("20.64")


def test_amounts_with_fractions_of_a_cent_are_refused_not_rounded(cascade):
    with pytest.raises(MappingError, match=r"total 324.605 has fractions of a cent"):
        map_invoice(invoice(total="324.605"), cascade)
    with pytest.raises(MappingError, match="shippingAmount 15.005 has fractions of a cent"):
        map_bill(half_cent_bill(shippingAmount="15.005"), cascade)
    with pytest.raises(MappingError, match=r"items.quantity is not a number \('two'\)"):
        map_bill(half_cent_bill(items=[{"id": 1, "name": "x", "quantity": "two", "cost": "1.00"}]), cascade)
    # a unit price may carry fractions of a cent: it is kept as sent, the line amount is ServiceTitan's
    doc = map_invoice(invoice(items=[{"id": 1, "order": 1, "type": "Service", "skuName": "Bolts", "quantity": "3",
                                      "price": "0.333", "total": "1.00", "generalLedgerAccount": gl("40200")}],
                              subTotal="1.00", salesTax="0.00", total="1.00"), cascade)
    assert doc.lines[0].unit_amount == Decimal("0.333") and doc.lines[0].amount == Decimal("1.00")
