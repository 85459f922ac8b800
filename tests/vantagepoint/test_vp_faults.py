"""Vantagepoint under faults: 5xx and lost answers survived without duplicates (a post or a create
whose answer was lost is found again by batch id), HTML 503 pages and 429s handled, and error
bodies of every shape turned into readable messages."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from resources.http import RetryPolicy, TransientError
from resources.vantagepoint import (
    InvoiceLine,
    ReceiptLine,
    TransactionFile,
    VantagepointClient,
    batch_id,
    error_text,
)
from tests.vantagepoint.days import OPEN_DAY as DAY

PROJECT = "2026-BOU-PLM"


def _invoice(client: VantagepointClient, number: str) -> TransactionFile:
    tf = TransactionFile("IN", batch_id("IN", number, "faults"), client.period_for(DAY))
    tf.add_invoice(number, PROJECT, DAY, [InvoiceLine("40200", Decimal("125.25"))])
    return tf


def _receipt(client: VantagepointClient, number: str) -> TransactionFile:
    tf = TransactionFile("CR", batch_id("CR", number, "faults"), client.period_for(DAY), default_bank="10100")
    tf.add_receipt(f"R{number}", DAY, [ReceiptLine(Decimal("125.25"), "12000", wbs1=PROJECT, invoice=number)])
    return tf


def _postings(vp) -> dict:
    raw = vp.raw()
    rows = raw.get("PSALedger/IN", params={"pageSize": 1000}).json() + raw.get(
        "PSALedger/CR", params={"pageSize": 1000}).json()
    seqs: dict[str, set] = {}
    for row in rows:
        seqs.setdefault(row["Batch"], set()).add(row["PostSeq"])
    return seqs


def test_flaky_server_posts_every_document_exactly_once(make_vp):
    vp = make_vp(profile="error_rate=0.25")
    client = vp.client(retry=RetryPolicy(max_attempts=10, base_delay=0.005, max_delay=0.02))
    numbers = [f"7{n:04d}" for n in range(15)]
    periods = client.list_periods()
    outcomes = []
    for number in numbers:
        client.period_for(DAY, periods)
        outcomes.append(client.submit(_invoice(client, number)).outcome)
        outcomes.append(client.submit(_receipt(client, number)).outcome)
    assert set(outcomes) <= {"posted", "already_posted"}
    stats = vp.stats()
    assert stats["faults_injected"].get("http_503", 0) > 5
    vp.control("PUT", "faults", json={"profile": ""})  # the check reads raw, without retries
    postings = _postings(vp)
    assert len(postings) == 30 and all(len(seqs) == 1 for seqs in postings.values())
    assert stats["posted_files"]["IN"] == 15 and stats["posted_files"]["CR"] == 15


def test_lost_post_answer_is_found_again_by_batch_id(vp):
    once = vp.client(retry=RetryPolicy(max_attempts=1))
    tf = _invoice(once, "81001")
    vp.control("PUT", "faults", json={"drop_responses": {"match": "PostTransFile", "count": 1, "status": 502}})
    # posted on the server, the answer never arrived: submit asks the ledger instead of posting again
    assert once.submit(tf).outcome == "already_posted"
    assert vp.stats()["posted_files"]["IN"] == 1
    assert vp.stats()["by_kind"]["post"] == 1  # one PostTransFile request: never resent

    replay = vp.client()
    result = replay.submit(_invoice(replay, "81001"))
    assert result.outcome == "already_posted"
    assert len(_postings(vp)) == 1


@pytest.mark.parametrize("http_400", [False, True], ids=["retlist0", "http400"])
def test_lost_answers_retried_inside_one_submit(make_vp, http_400):
    """Both answers lost after Vantagepoint acted: submit reads the file back instead of creating it
    again and asks the ledger instead of posting again, whether the tenant answers a failed post
    with 200 + retList 0 or with an HTTP 400 (the reference leaves open which)."""
    vp = make_vp(post_failure_http_400=http_400)
    client = vp.client()
    vp.control("PUT", "faults", json={"drop_responses": [
        {"match": "DataEntry/inControl", "method": "POST", "count": 1, "status": 504},
        {"match": "PostTransFile", "count": 1, "status": 502},
    ]})
    result = client.submit(_invoice(client, "82001"))
    # Neither write was resent: the file was read back (same content), the post found in the ledger.
    assert result.outcome in ("posted", "already_posted")
    stats = vp.stats()
    assert stats["faults_injected"] == {"lost_response_504": 1, "lost_response_502": 1}
    assert stats["files"]["IN"] == 1 and stats["posted_files"]["IN"] == 1
    assert stats["by_kind"]["post"] == 1
    assert len(_postings(vp)) == 1


def test_lost_firm_create_answer_does_not_duplicate_the_firm(vp):
    client = vp.client()
    vp.control("PUT", "faults", json={"drop_responses": {"match": "/firm", "method": "POST", "count": 1}})
    result = client.upsert_firm("Flatirons Dental Group", client=True)
    assert result.action == "created"
    assert len(client.find_firms_by_name("Flatirons Dental Group")) == 1
    assert vp.stats()["counts"]["firms_created"] == 1


def test_maintenance_503_html_page_becomes_a_readable_transient_error(vp):
    client = vp.client(retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    client.authenticate()
    vp.control("PUT", "maintenance", json={"on": True})
    with pytest.raises(TransientError) as caught:
        client.list_accounts()
    assert caught.value.status == 503 and "503 Service Temporarily Unavailable" in caught.value.body_excerpt
    vp.control("PUT", "maintenance", json={"on": False})
    assert len(client.list_accounts()) > 10


def test_optional_rate_limit_answers_429_and_is_survived(make_vp):
    vp = make_vp(rate_limit_per_minute=600, rate_limit_burst=3)
    client = vp.client(retry=RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05))
    for _ in range(8):
        assert len(client.list_organizations()) == 3
    stats = vp.stats()
    assert stats["throttled"] > 0 and stats["by_status"].get("429", 0) == stats["throttled"]


@pytest.mark.parametrize(("body", "expected"), [
    ('{"message": "Field X does not exist.", "detail": "Field X does not exist."}', "Field X does not exist."),
    ('{"Message": "An error has occurred.", "ExceptionMessage": "Cannot insert NULL into Company column"}',
     "An error has occurred.; Cannot insert NULL into Company column"),
    ('{"error": "invalid_grant", "error_description": "bad"}', "bad; invalid_grant"),
    ('"Firm Number already exists: C00131.<BR/>Vendor Number already exists: 000056."',
     "Firm Number already exists: C00131.; Vendor Number already exists: 000056."),
    ("<html><head><title>502 Bad Gateway</title></head></html>", "502 Bad Gateway"),
    ("plain text failure", "plain text failure"),
    ("", "(empty response)"),
])
def test_error_bodies_of_every_shape_are_read(body, expected):
    assert error_text(body) == expected


def test_classify_hook_maps_duplicates_to_conflict():
    from resources.http import ConflictError, HttpClient, ValidationError
    from resources.vantagepoint import classify_vantagepoint

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("dup"):
            return httpx.Response(400, json={"message": "Record B1 already exists and cannot be added."})
        return httpx.Response(400, json={"message": "Period 202401 is closed."})

    http = HttpClient("vantagepoint", "http://vp.test/api/", classify=classify_vantagepoint,
                      transport=httpx.MockTransport(handler))
    with pytest.raises(ConflictError):
        http.post("dup")
    with pytest.raises(ValidationError):
        http.post("closed")
