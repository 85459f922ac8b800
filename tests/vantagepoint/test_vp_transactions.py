"""Vantagepoint transaction files over real sockets: an AR invoice, its cash receipt and an AP
voucher posted and read back from the ledger; repeats detected and skipped; unbalanced,
closed-period and badly referenced files refused with clear errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from resources.http import ConflictError, ValidationError
from resources.vantagepoint import (
    InvoiceLine,
    JournalLine,
    ReceiptLine,
    TransactionFile,
    VoucherLine,
    batch_id,
    parse_post_response,
)
from tests.vantagepoint.days import CLOSED_DAY, OPEN_DAY

DAY = OPEN_DAY  # a past day of an open period, far from month ends (tests/vantagepoint/days.py)
PROJECT = "2026-DEN-HVC"


def invoice_file(client, number: str, amount: str = "250.00", period: int | None = None, day: date = DAY,
                 batch: str | None = None) -> TransactionFile:
    tf = TransactionFile("IN", batch or batch_id("IN", number, "test"), period or client.period_for(day),
                         description=f"ST invoice {number}")
    tf.add_invoice(number, PROJECT, day, [InvoiceLine("40100", Decimal(amount) - Decimal("50.00"), description="Labor"),
                                          InvoiceLine("41000", Decimal("50.00"), description="Parts")])
    return tf


def receipt_file(client, ref: str, invoice: str, amount: str) -> TransactionFile:
    tf = TransactionFile("CR", batch_id("CR", ref, "test"), client.period_for(DAY), default_bank="10300")
    tf.add_receipt(ref, DAY, [ReceiptLine(Decimal(amount), "12000", wbs1=PROJECT, invoice=invoice)])
    return tf


def test_invoice_receipt_and_voucher_are_posted_and_in_the_ledger(vp):
    client = vp.client()
    posting_started = datetime.now(UTC) - timedelta(seconds=1)
    posted = client.submit(invoice_file(client, "40017"))
    assert posted.outcome == "posted" and posted.post_seq

    rows = client.find_posted_invoice("40017")
    assert {r.Invoice for r in rows} == {"000000040017"}  # zero-padded to RefnoLength on save
    revenue = {r.Account: r.Amount for r in rows if r.SubType != "A"}
    assert revenue == {"40100": Decimal("-200.00"), "41000": Decimal("-50.00")}
    assert [(r.Account, r.Amount) for r in rows if r.SubType == "A"] == [("12000", Decimal("250.00"))]
    assert all(r.Org == "01:DEN" and r.PostDate.tzinfo is not None for r in rows)

    receipt = client.submit(receipt_file(client, "CHK-881", "40017", "250.00"))
    assert receipt.outcome == "posted" and receipt.post_seq > posted.post_seq
    cash = client.find_posted_receipt("CHK-881")
    assert sorted((r.Account, r.Amount) for r in cash) == [("10300", Decimal("250.00")), ("12000", Decimal("-250.00"))]
    balance = vp.raw().get("ARReview/ARBalance", params={"filterHash[0][name]": "Invoice",
                                                         "filterHash[0][value]": "000000040017"}).json()
    assert balance[0]["Balance"] == 0 and balance[0]["OriginalAmt"] == 250

    vendor = client.find_firms_by_name("Ferguson Enterprises")[0]
    ap = TransactionFile("AP", batch_id("AP", "bill-77", "test"), client.period_for(DAY))
    ap.add_voucher(vendor.Vendor, "FE-2231", DAY, [VoucherLine("13000", Decimal("410.10")),
                                                     VoucherLine("50000", Decimal("89.90"), wbs1=PROJECT)])
    voucher = client.submit(ap)
    assert voucher.outcome == "posted"
    ap_rows = client.find_posted_voucher(vendor.Vendor, "FE-2231")
    assert sum(r.Amount for r in ap_rows) == 0  # debits and the implicit liability credit
    assert [(r.Account, r.Amount) for r in ap_rows if r.SubType == "A"] == [("20000", Decimal("-500.00"))]

    window = client.ledger("IN", posting_started, None)
    assert {r.Batch for r in window} == {posted.batch}
    by_moddate = client.ledger("CR", window[0].PostDate, None, date_column="ModDate")
    assert {r.Batch for r in by_moddate} == {receipt.batch}
    landing = vp.raw().get("DataEntry/allLanding").json()
    assert {(r["TransType"], r["Posted"]) for r in landing} == {("IN", "Y"), ("CR", "Y"), ("AP", "Y")}


def test_second_attempt_is_detected_and_skipped(vp):
    client = vp.client()
    first = client.submit(invoice_file(client, "50001"))
    rows_before = vp.stats()["ledger_rows"]
    again = client.submit(invoice_file(client, "50001"))
    assert again.outcome == "already_posted" and again.post_seq == first.post_seq
    # Same document under another batch id (e.g. a re-keyed replay): found by invoice number.
    other = client.submit(invoice_file(client, "50001", batch="MANUAL50001"))
    assert other.outcome == "found_existing" and first.batch in other.message
    receipt = receipt_file(client, "CHK-1", "50001", "250.00")
    assert client.submit(receipt).outcome == "posted"
    assert client.submit(receipt).outcome == "already_posted"
    stats = vp.stats()
    assert stats["ledger_rows"] == rows_before + 2  # only the receipt's two rows were added
    assert stats["posted_files"] == {"IN": 1, "CR": 1, "AP": 0, "JE": 0}
    assert stats["files"]["IN"] == 1  # no file was even created for the repeats


def test_vantagepoint_itself_would_accept_a_duplicate_invoice(vp):
    """Why the look-up matters: without it a second batch posts the same invoice again."""
    client = vp.client()
    client.submit(invoice_file(client, "60001"))
    dup = invoice_file(client, "60001", batch="RAWDUP60001")
    client.create_file(dup)
    assert client.post_files([("IN", dup.batch, dup.period)])[0].posted
    assert len({r.Batch for r in client.find_posted_invoice("60001")}) == 2


def test_unbalanced_files_are_refused(vp):
    client = vp.client()
    je = TransactionFile("JE", "JEUNBAL1", client.period_for(DAY))
    je.add_journal_entry("JE1", DAY, [JournalLine("60000", debit=Decimal("100.00")),
                                        JournalLine("10100", credit=Decimal("90.00"))])
    with pytest.raises(ValidationError, match="out of balance: debits 100.00, credits 90.00"):
        client.submit(je)

    # The server checks again at post time: a control total that disagrees with the lines.
    raw = vp.raw()
    body = invoice_file(client, "70001", batch="INUNBAL1").body()
    body["Total"] = 240
    created = raw.post("DataEntry/inControl", json=json.loads(json.dumps(body, default=float)))
    assert created.status_code == 201 and created.json()[0]["DiffTotal"] == -10
    result = client.post_files([("IN", "INUNBAL1", body["Period"])])[0]
    assert not result.posted and "out of balance" in result.message
    assert client.find_posted_invoice("70001") == []

    balanced = TransactionFile("JE", "JEBAL1", client.period_for(DAY))
    balanced.add_journal_entry("JE2", DAY, [JournalLine("60000", debit=Decimal("90.00"), wbs1=""),
                                              JournalLine("10100", credit=Decimal("90.00"))])
    assert client.submit(balanced).outcome == "posted"


def test_closed_period_is_refused_with_a_clear_error(vp):
    client = vp.client()
    old_day = CLOSED_DAY
    old_period = old_day.year * 100 + old_day.month
    with pytest.raises(ValidationError, match=f"{old_period} is closed"):
        client.submit(invoice_file(client, "80001", period=old_period, day=old_day))

    tf = invoice_file(client, "80002")
    vp.control("PUT", f"periods/{tf.period}", json={"closed": True})
    with pytest.raises(ValidationError, match=f"Period {tf.period} is closed"):
        client.submit(tf)
    vp.control("PUT", f"periods/{tf.period}", json={"closed": False})
    assert client.submit(tf).outcome == "posted"


def test_references_and_lengths_are_checked(vp):
    client = vp.client()
    with pytest.raises(ValidationError, match="invoice 000000090001 has not been posted"):
        client.submit(receipt_file(client, "CHK-9", "90001", "10.00"))
    overhead = TransactionFile("IN", "INOVERHEAD", client.period_for(DAY))
    overhead.add_invoice("90002", "OH-ADMIN", DAY, [InvoiceLine("40100", Decimal("10.00"), wbs2="100")])
    with pytest.raises(ValidationError, match="not a regular project"):
        client.submit(overhead)
    wrong_account = TransactionFile("IN", "INWRONGACCT", client.period_for(DAY))
    wrong_account.add_invoice("90003", PROJECT, DAY, [InvoiceLine("50000", Decimal("10.00"))])
    with pytest.raises(ValidationError, match="not a revenue account"):
        client.submit(wrong_account)
    long_batch = invoice_file(client, "90004", batch="B" * 33)
    with pytest.raises(ValidationError, match="must be 1-32 characters"):
        client.submit(long_batch)
    raw = vp.raw()
    truncated = raw.post("DataEntry/inControl", json={"Batch": "B" * 33, "Period": vp.period(), "Total": 0})
    assert truncated.status_code == 400 and "column 'Batch'" in truncated.json()["message"]
    unknown_vendor = TransactionFile("AP", "APUNKNOWN", client.period_for(DAY))
    unknown_vendor.add_voucher("999999", "X-1", DAY, [VoucherLine("13000", Decimal("1.00"))])
    with pytest.raises(ValidationError, match="vendor 999999 does not exist"):
        client.submit(unknown_vendor)


def test_posted_files_cannot_be_changed(vp):
    client = vp.client()
    result = client.submit(invoice_file(client, "91001"))
    raw = vp.raw()
    change = raw.put(f"DataEntry/inControl/{result.batch}", json={"Description": "changed"})
    assert change.status_code == 400 and change.json()["message"] == "Posted transaction files cannot be modified."
    with pytest.raises(ConflictError):
        client.delete_file("IN", result.batch)
    repost = client.post_files([("IN", result.batch, result.period)])[0]
    assert not repost.posted and "already posted" in repost.message


@pytest.mark.parametrize("http_400", [False, True], ids=["retlist0", "http400"])
def test_a_failed_post_reads_the_same_whichever_way_the_tenant_answers(make_vp, http_400):
    """Whether PostTransFile answers a file it cannot post with 200 + retList 0 or an HTTP 400 is
    not documented: both come back as 'not posted' with Vantagepoint's reason, and submit() then
    raises one clear error (or finds the file posted by an earlier attempt)."""
    vp = make_vp(post_failure_http_400=http_400)
    client = vp.client()
    raw = vp.raw().put("DataEntry/PostTransFile", json={"parms": {"batch": "NOSUCHBATCH", "transtype": "IN",
                                                                  "period": str(vp.period())}})
    assert raw.status_code == (400 if http_400 else 200)
    (result,) = client.post_files([("IN", "NOSUCHBATCH", vp.period())])
    assert not result.posted and "not found" in result.message and result.batch == "NOSUCHBATCH"

    tf = invoice_file(client, "40444", day=DAY)
    client.create_file(tf)  # saved while the period is open; closed before the post
    period = client.period_for(DAY)
    vp.control("PUT", f"periods/{period}", json={"closed": True})
    with pytest.raises(ValidationError, match=f"did not post IN file {tf.batch}.*closed"):
        client.submit(tf)
    vp.control("PUT", f"periods/{period}", json={"closed": False})
    assert client.submit(tf).outcome == "posted"
    assert client.submit(tf).outcome == "already_posted"


def test_post_response_is_parsed_defensively():
    deltek_example = ('"{\\r\\n \\"typeList\\": \\"CR|JE\\"\\r\\n \\"batchList\\": \\"48ae|5778\\",\\r\\n '
                      '\\"retList\\": \\"1|0\\",\\r\\n \\"periodList\\": \\"201305|201305\\",\\r\\n '
                      '\\"postseqList\\": \\"194|0\\",\\r\\n \\"msg\\": \\"Cash Receipts file A; 1 of 1 records '
                      'posted; Posting sequence 194[CRLF]Journal Entries file B; failed\\"\\r\\n}"')
    parsed = parse_post_response(deltek_example)
    assert [(p["type"], p["batch"], p["ret"], p["postseq"]) for p in parsed] == [
        ("CR", "48ae", "1", "194"), ("JE", "5778", "0", "0")]
    assert parsed[1]["msg"] == "Journal Entries file B; failed"


def test_without_file_grouping_documents_are_created_through_the_master(make_vp):
    vp = make_vp(use_files_to_group_transactions=False)
    raw = vp.raw()
    grouped = raw.post("DataEntry/inControl", json={"Batch": "G1", "Period": vp.period(), "Total": 0})
    assert grouped.status_code == 400 and "Use Files to Group Transactions is off" in grouped.json()["message"]
    created = raw.post("DataEntry/inMaster/INNonBatch00001|1234", json={
        "WBS1": PROJECT, "TransDate": DAY.isoformat(),
        "inDetail": [{"Invoice": "1234", "PKey": "K1", "Account": "40100", "Amount": "75.10"}]})
    assert created.status_code == 201 and created.json()[0]["Invoice"] == "000000001234"
    posted = parse_post_response(raw.put("DataEntry/PostTransFile", json={"parms": {
        "batch": "INNonBatch00001", "transtype": "IN", "period": str(vp.period())}}).text)
    assert posted[0]["ret"] == "1"
    client = vp.client()
    assert sum(r.Amount for r in client.find_posted_invoice("1234") if r.SubType == "A") == Decimal("75.10")
