"""What the brief leaves open, answered each way by the simulator, and the client coping with every
answer without being told (connection settings default to "auto"): which size parameters PSALedger
and DataEntry lists honour, whether invoice numbers are zero-padded on save (and to which width),
and whether "Use Files to Group Transactions" is on. (PostTransFile's 200 + retList 0 vs HTTP 400
is in test_vp_faults.py and test_vp_transactions.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

from resources.http import TransientError
from resources.vantagepoint import InvoiceLine, TransactionFile, batch_id
from tests.vantagepoint.days import OPEN_DAY, period_of

PROJECT = "2026-DEN-HVC"


def invoice(number: str, amount: str = "10.00", batch: str | None = None, refno: int = 12) -> TransactionFile:
    tf = TransactionFile("IN", batch or batch_id("IN", number, "unknowns"), period_of(OPEN_DAY), refno_length=refno)
    tf.add_invoice(number, PROJECT, OPEN_DAY, [InvoiceLine("40100", Decimal(amount))])
    return tf


@pytest.mark.parametrize("paging", ["pagesize", "maxrows", "unpaged", "documented"])
def test_ledger_and_dataentry_reads_return_every_row_once_in_every_paging_mode(make_vp, paging):
    vp = make_vp(ledger_paging=paging)
    client = vp.client()
    for n in range(7):
        assert client.submit(invoice(f"5100{n}")).outcome == "posted"
    for n in range(4):
        client.create_file(invoice(f"5200{n}"))  # saved, not posted: DataEntry landing rows
    before = vp.stats()["requests"]

    rows = client.ledger("IN", page_size=3)  # 14 rows: a revenue line and the AR row per invoice
    assert len(rows) == 14 and len({(r.Batch, r.PKey, r.SubType) for r in rows}) == 14
    assert len(client.unposted_files("IN")) == 4
    assert client.ledger_paging == ("page_size" if paging in ("pagesize", "documented") else "unpaged")
    requests = vp.stats()["requests"] - before
    assert requests <= {"pagesize": 7, "documented": 7, "maxrows": 3, "unpaged": 3}[paging], requests


def test_a_client_told_to_page_fails_loudly_where_the_tenant_refuses_page_size(make_vp):
    vp = make_vp(ledger_paging="maxrows")
    told = vp.client(ledger_paging="page_size")
    with pytest.raises(TransientError, match="500"):
        told.ledger("IN")
    assert vp.client(ledger_paging="unpaged").ledger("IN") == []


@pytest.mark.parametrize(("padding", "width"), [("zero_pad", 12), ("as_given", 12), ("zero_pad", 10),
                                                ("as_given", 10)])
def test_invoices_are_found_whether_the_tenant_pads_them_and_whatever_its_refno_length(make_vp, padding, width):
    vp = make_vp(invoice_padding=padding, refno_length=width)
    client = vp.client()
    assert client.refno_length == width  # read from KeyCvt/CFGFormat
    posted = client.submit(invoice("61001", refno=client.refno_length))
    assert posted.outcome == "posted"
    assert {r.Invoice for r in client.find_posted_invoice("61001")} == {"61001".zfill(width)}
    # the same document again under another batch: found by its number, never posted twice
    again = client.submit(invoice("61001", batch="OTHERBATCH61001", refno=client.refno_length))
    assert again.outcome == "found_existing"

    # an invoice keyed by hand as typed (a tenant that keeps numbers as given stores "4711")
    raw = vp.raw()
    body = {"Batch": "HAND1", "Period": period_of(OPEN_DAY), "Total": 25,
            "inMaster": [{"Invoice": "4711", "WBS1": PROJECT, "TransDate": OPEN_DAY.isoformat()}],
            "inDetail": [{"Invoice": "4711", "PKey": "HANDK1", "Account": "40100", "Amount": 25}]}
    assert raw.post("DataEntry/inControl", json=body).status_code == 201
    raw.put("DataEntry/PostTransFile", json={"parms": {"batch": "HAND1", "transtype": "IN",
                                                       "period": str(period_of(OPEN_DAY))}})
    stored = "4711" if padding == "as_given" else "4711".zfill(width)
    assert {r.Invoice for r in client.find_posted_invoice("4711")} == {stored}
    assert client.submit(invoice("4711", amount="25.00", refno=client.refno_length)).outcome == "found_existing"
    assert vp.stats()["posted_files"]["IN"] == 2


def test_without_file_grouping_the_client_creates_documents_through_masters(make_vp):
    vp = make_vp(use_files_to_group_transactions=False)
    client = vp.client()
    tf = invoice("71001")
    tf.add_invoice("71002", PROJECT, OPEN_DAY, [InvoiceLine("40100", Decimal("5.00")), InvoiceLine("41000",
                                                                                                   Decimal("2.50"))])
    assert client.submit(tf).outcome == "posted" and client.file_grouping == "ungrouped"
    rows = client.ledger_by_batch("IN", tf.batch)
    assert sorted((r.Invoice, r.Amount) for r in rows if r.SubType == "A") == [
        ("000000071001", Decimal("10.00")), ("000000071002", Decimal("7.50"))]

    # a lost answer on a document's create: not resent; the file is read back (it holds the document) and posted once
    vp.control("PUT", "faults", json={"drop_responses": {"match": "inMaster", "method": "POST", "count": 1,
                                                         "status": 504}})
    assert client.submit(invoice("71003")).outcome == "posted"
    stats = vp.stats()
    assert stats["faults_injected"] == {"lost_response_504": 1} and stats["posted_files"]["IN"] == 2
    # one refused grouped create, then masters only: 71001, 71002, 71003 (never resent)
    assert stats["by_kind"].get("dataentry_post", 0) == 4


def test_hub_creates_answered_as_an_object_and_401s_without_a_body(make_vp):
    """Two more shapes the brief leaves open: a hub POST answering the record bare instead of in an
    array, and a 401 with an empty body and a WWW-Authenticate challenge."""
    vp = make_vp(hub_post_shape="object", unauthorized_body="empty")
    raw = vp.raw()
    answer = raw.post("firm", json={"Name": "Shape Probe LLC", "ClientInd": "Y"})
    assert answer.status_code == 201 and isinstance(answer.json(), dict)
    client = vp.client()
    firm = client.upsert_firm("Object Answer LLC", client=True)
    assert firm.action == "created" and len(firm.firm.ClientID) == 32
    project = client.upsert_project("2026-DEN-OBJ", "Object answers", "01:DEN", firm.firm.ClientID)
    assert project.WBS1 == "2026-DEN-OBJ" and client.create_account("49990", "Object revenue", 4).Account == "49990"

    vp.control("POST", "revoke_tokens", json={"refresh_tokens": True})
    refused = raw.get("firm")
    assert refused.status_code == 401 and refused.content == b"" and "Bearer" in refused.headers["WWW-Authenticate"]
    assert client.get_project("2026-DEN-OBJ") is not None  # signed in again after the bare 401
    assert vp.stats()["tokens"]["password_grants"] >= 2
