"""Every Vantagepoint response shape fieldledger reads, over real sockets, validated against the
schemas written from the reconstructed brief (tests/vantagepoint/schemas.py). The brief must be
there: under CI a missing reference fails the run (tests/reference_docs.py)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import pytest
from jsonschema import Draft202012Validator

from resources.vantagepoint import InvoiceLine, ReceiptLine, TransactionFile, VoucherLine, batch_id
from tests.reference_docs import REFERENCE_DIR, require_reference
from tests.vantagepoint.days import OPEN_DAY, period_of
from tests.vantagepoint.schemas import SCHEMAS, brief_names, rows

PROJECT = "2026-DEN-HVC"


@pytest.fixture(scope="module")
def brief() -> str:
    return require_reference(REFERENCE_DIR / "deltek-vantagepoint-api.md", "The Vantagepoint brief").read_text()


def check(name: str, instance, many: bool = False) -> None:
    schema = rows(SCHEMAS[name]) if many else SCHEMAS[name]
    errors = sorted(Draft202012Validator(schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{'/'.join(map(str, e.path))}: {e.message[:160]}" for e in errors[:5])
    if many:
        assert instance, f"{name}: no rows to check"


def test_every_schema_field_is_named_in_the_brief(brief):
    missing = sorted({n for n in brief_names() if not re.search(rf"\b{re.escape(n)}\b", brief)})
    assert missing == []


def test_the_shapes_fieldledger_reads_match_the_brief(brief, vp):
    client = vp.client()
    period = period_of(OPEN_DAY)
    invoice = TransactionFile("IN", batch_id("IN", "shape-1", "shapes"), period)
    invoice.add_invoice("31001", PROJECT, OPEN_DAY, [InvoiceLine("40100", Decimal("120.00"))])
    client.submit(invoice)
    receipt = TransactionFile("CR", batch_id("CR", "shape-2", "shapes"), period, default_bank="10100")
    receipt.add_receipt("R31001", OPEN_DAY, [ReceiptLine(Decimal("120.00"), "12000", wbs1=PROJECT, invoice="31001")])
    client.submit(receipt)
    vendor = client.find_firms_by_name("Ferguson Enterprises")[0].Vendor
    voucher = TransactionFile("AP", batch_id("AP", "shape-3", "shapes"), period)
    voucher.add_voucher(vendor, "FE-1", OPEN_DAY, [VoucherLine("13000", Decimal("10.00"))])
    client.submit(voucher)
    unposted = TransactionFile("IN", "SHAPEUNPOSTED", period)
    unposted.add_invoice("31002", PROJECT, OPEN_DAY, [InvoiceLine("40100", Decimal("5.00"))])

    token = httpx.post(f"{vp.info['base_url']}/token", data={
        "grant_type": "password", "username": vp.info["username"], "password": vp.info["password"],
        "client_id": vp.info["client_id"], "client_secret": vp.info["client_secret"],
        "database": vp.info["database"]})
    check("token", token.json())
    refused = httpx.post(f"{vp.info['base_url']}/token", data={"grant_type": "password", "username": "x",
                                                               "password": "y", "client_id": vp.info["client_id"],
                                                               "client_secret": vp.info["client_secret"],
                                                               "database": vp.info["database"]})
    assert refused.status_code == 400
    check("oauth_error", refused.json())
    denied = httpx.get(f"{vp.info['base_url']}/firm", headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401
    check("denied", denied.json())

    raw = vp.raw()
    check("firm", raw.get("firm").json(), many=True)
    first = raw.get("firm").json()[0]["ClientID"]
    check("firm", raw.get(f"firm/{first}").json(), many=True)
    check("project", raw.get("project").json(), many=True)
    check("project", raw.get(f"project/{PROJECT}").json(), many=True)
    check("organization", raw.get("organization").json(), many=True)
    check("key_formats", raw.get("KeyCvt/CFGFormat").json(), many=True)
    check("account", raw.get("Accounts").json(), many=True)
    check("bank", raw.get("BankCode/CFGBANKS").json(), many=True)
    check("period", raw.get("Settings/Period").json(), many=True)
    created = raw.post("DataEntry/inControl", content=json.dumps(unposted.body(), default=str),
                       headers={"Content-Type": "application/json"})
    assert created.status_code == 201
    check("control", created.json(), many=True)
    check("master", raw.get("DataEntry/inMaster/SHAPEUNPOSTED").json(), many=True)
    check("landing", raw.get("DataEntry/inLanding").json(), many=True)
    for trans_type in ("IN", "CR", "AP"):
        check("ledger", raw.get(f"PSALedger/{trans_type}").json(), many=True)
    bad = raw.post("DataEntry/inControl", json={"Batch": "SHAPEUNPOSTED", "Period": period, "Total": 0})
    assert bad.status_code == 400
    check("error", bad.json())
    posted = raw.put("DataEntry/PostTransFile", json={"parms": [{"batch": "SHAPEUNPOSTED", "transtype": "IN",
                                                                 "period": str(period)}]})
    inner = posted.json()
    assert isinstance(inner, str)  # a JSON string holding JSON (brief 6.11)
    check("post_result", json.loads(inner))


def test_the_schemas_catch_drift():
    ledger = Draft202012Validator(SCHEMAS["ledger"])
    good = {"TransType": "IN", "SubType": "A", "Batch": "B", "Period": 202606, "PostSeq": 101, "PKey": "K",
            "WBS1": "P", "WBS2": " ", "WBS3": " ", "Account": "12000", "Org": "01:DEN", "RefNo": "1",
            "Invoice": "000000000001", "Vendor": "", "Voucher": "", "BankCode": "", "Amount": 12.5,
            "TransDate": "2026-06-15T00:00:00.000", "PostDate": "2026-06-15T10:11:12.345"}
    assert ledger.is_valid(good)
    assert not ledger.is_valid({**good, "Amount": "12.50"})  # money as a JSON number
    assert not ledger.is_valid({**good, "PostDate": "2026-06-15T10:11:12Z"})  # naive dates, no zone
    assert not ledger.is_valid({k: v for k, v in good.items() if k != "PostSeq"})
