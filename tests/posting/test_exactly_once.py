"""Exactly once under the conditions a real ERP creates (issue 22), over real sockets to the ERP
simulators with a real sync store: answers to writes lost after the ERP committed them, a slow
ERP with two runs of one connection racing under a short lease, a claim that lapsed, and an edit
in ServiceTitan while a run posts the document. The ERP is read back through its own API."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import closing

import pytest
from cryptography.fernet import Fernet

from posting.protocol import Poster
from posting.registry import open_adapter
from resources.acumatica import AcumaticaClient
from resources.vantagepoint import VantagepointClient
from resources.vault import Vault
from tests.acumatica.test_adapter_acumatica import (
    CUSTOMERS,
    PAYMENTS,
    connection_for,
    intake,
    item,
    st_invoice,
    vault_for,
)
from tests.vantagepoint import test_vp_adapter as vp_cases

# Six invoices of one customer on one day: enough posts that a run takes seconds on a slow ERP.
INVOICES = [st_invoice(7001, 9001, 1101, [item(1, "AC repair", "1", "324.60", "324.60", "40100")]),
            st_invoice(7002, 9002, 1104, [item(1, "Tune-up", "1", "100.00", "100.00", "40100")]),
            *[st_invoice(7100 + n, 9001, 1101, [item(1, f"Visit {n}", "1", f"{100 + n}.00", f"{100 + n}.00", "40100")])
              for n in range(4)]]


def read_back(sim) -> tuple[Counter, Counter, dict]:
    """External reference -> number of documents, for invoices and payments, as an accountant reads
    them; and each invoice's status."""
    i = sim.info
    with AcumaticaClient(i["base_url"], i["tenant"], i["client_id"], i["client_secret"], i["username"],
                         i["password"]) as acu:
        invoices = acu.list("Invoice", select="CustomerOrder,Status,Amount")
        payments = acu.list("Payment", select="PaymentRef,Status")
    return (Counter(r["CustomerOrder"] for r in invoices), Counter(r["PaymentRef"] for r in payments),
            {r["CustomerOrder"]: r["Status"] for r in invoices})


def run_posting(store, conn, vault, name: str, lease: float = 300.0):
    """What erp_postings does for one run: claim the connection's open records as this worker and
    post them through the protocol, the claims renewed by a heartbeat meanwhile."""
    worker = store.worker_id(name)
    with closing(open_adapter(conn, vault)) as adapter, store.heartbeat(worker, lease):
        records = store.claim(conn.name, worker, limit=1000, lease_seconds=lease, statuses=("pending", "failed"))
        return Poster(store, adapter, conn.name, name).post(records)


def lapse(store, holder_prefix: str) -> None:
    """A lease that ran out (a stalled worker), without waiting for it."""
    with store.transaction() as c:
        c.execute("UPDATE records SET claimed_until = now() - interval '1 second' WHERE claimed_by LIKE %s",
                  (holder_prefix + "%",))
        if c.execute("SELECT to_regclass('document_claims') AS t").fetchone()["t"]:
            c.execute("UPDATE document_claims SET claimed_until = now() - interval '1 second' "
                      "WHERE claimed_by LIKE %s", (holder_prefix + "%",))


@pytest.fixture
def acu(store, acumatica):
    conn = connection_for(acumatica)
    return conn, vault_for(store, conn, acumatica)


# --- break 1: a lost answer to a write --------------------------------------------------------------

def test_lost_answers_to_acumatica_writes_never_make_a_second_document(store, acumatica, acu):
    """Every write's answer is lost after Acumatica committed it (customer, invoice PUTs): the
    HTTP layer used to resend the PUT and Acumatica, which has no idempotency key, made another
    invoice each time. Now nothing is resent; the next attempt asks Acumatica first and finishes
    the saved invoice instead of creating one."""
    conn, vault = acu
    intake(store, conn, CUSTOMERS, (), INVOICES, PAYMENTS)
    acumatica.faults("lost_answer_rate=1.0")
    first = run_posting(store, conn, vault, "run-1")
    lost = acumatica.injected("lost_answer")
    acumatica.faults("none")
    assert lost > 0 and first.counts["failed"] > 0
    invoices, payments, _ = read_back(acumatica)
    assert set(invoices.values()) == {1}, invoices  # saved once each, though no answer came back
    store.requeue(conn.name, statuses=("failed",))  # the retry sensor's job, without its backoff
    second = run_posting(store, conn, vault, "run-2")
    assert second.failures == []
    invoices, payments, status = read_back(acumatica)
    assert invoices == Counter({f"INV-{i['id']}": 1 for i in INVOICES})
    assert payments == Counter({"PMT-8001": 1, "PMT-8002": 1})
    assert set(status.values()) <= {"Open", "Closed"}  # released: nothing left Balanced for a bulk release
    assert {r.status for r in store.records(conn.name)} == {"posted"}


def test_lost_answers_to_vantagepoint_writes_are_looked_up_not_resent(store, vantagepoint):
    conn = vp_cases.connection_for(vantagepoint)
    vault = Vault(store, keys=[Fernet.generate_key()])
    for name, vault_name in conn.erp.secrets.items():
        vault.set(conn.name, vault_name, vantagepoint.info[name])
    invoices = vp_cases.INVOICES[1:2] + [vp_cases.st_invoice(7200 + n, 9001, 2101, [vp_cases.item(
        1, f"Visit {n}", "1", f"{100 + n}.00", f"{100 + n}.00", "40100")]) for n in range(3)]
    vp_cases.intake(store, conn, vp_cases.CUSTOMERS)
    run_posting(store, conn, vault, "run-0")  # the customers first, without faults
    vp_cases.intake(store, conn, (), (), invoices)
    vantagepoint.faults("lost_answer_rate=1.0")
    run_posting(store, conn, vault, "run-1")
    lost = vantagepoint.injected("lost_answer")
    vantagepoint.faults("none")
    # That Vantagepoint refuses a repeated batch id or a repeated post is only inferred, so nothing
    # is resent on that belief: each invoice's file is created once, asked for, and posted once
    # (two lost answers at most), then the ledger below holds each invoice exactly once.
    assert 0 < lost <= 2 * len(invoices), lost
    store.requeue(conn.name, statuses=("failed",))
    assert run_posting(store, conn, vault, "run-2").failures == []
    i = vantagepoint.info
    with VantagepointClient(i["base_url"], i["database"], i["client_id"], i["client_secret"], i["username"],
                            i["password"]) as client:
        rows = client.ledger("IN")
    batches = Counter((r.Invoice.lstrip("0"), r.Batch) for r in rows if r.SubType == "A")
    per_invoice = Counter(number for number, _ in batches)
    assert per_invoice == Counter({str(inv["id"]): 1 for inv in invoices}), batches
    assert {r.status for r in store.records(conn.name)} == {"posted"}


# --- break 2: claims are leases, renewed and fenced ---------------------------------------------------

def test_overlapping_runs_on_a_slow_erp_post_each_document_once(store, acumatica, acu):
    """Acumatica answers slowly and the lease is short: the first run's claims used to lapse while
    it posted, the second run re-claimed the same records and both posted them."""
    conn, vault = acu
    intake(store, conn, CUSTOMERS, (), INVOICES, PAYMENTS)
    acumatica.faults("latency_ms=400")
    lease = 1.0  # a couple of requests long: without renewal it lapses while run A posts
    worker_a = store.worker_id("run-a")
    records_a = store.claim(conn.name, worker_a, limit=1000, lease_seconds=lease)  # run A claims first

    def run_a():
        with closing(open_adapter(conn, vault)) as adapter, store.heartbeat(worker_a, lease):
            Poster(store, adapter, conn.name, "run-a").post(records_a)

    a = threading.Thread(target=run_a)
    a.start()
    while a.is_alive():  # run B keeps starting while run A posts
        run_posting(store, conn, vault, "run-b", lease)
    a.join()
    acumatica.faults("none")
    invoices, payments, _ = read_back(acumatica)
    assert set(invoices.values()) == {1} and set(payments.values()) <= {1}, (invoices, payments)
    store.requeue(conn.name, statuses=("failed",))
    run_posting(store, conn, vault, "run-c")
    invoices, payments, _ = read_back(acumatica)
    assert invoices == Counter({f"INV-{i['id']}": 1 for i in INVOICES})
    assert payments == Counter({"PMT-8001": 1, "PMT-8002": 1})


def test_a_run_whose_claim_lapsed_neither_posts_nor_records(store, acumatica, acu):
    """Run A's lease ran out (it stalled) and run B took the records over; both then post at once.
    Only the holder of the claim, B, may post them and record the outcome."""
    conn, vault = acu
    intake(store, conn, CUSTOMERS, (), INVOICES)
    worker_a = store.worker_id("run-a")
    records_a = store.claim(conn.name, worker_a, limit=1000)
    lapse(store, worker_a)
    worker_b = store.worker_id("run-b")
    records_b = store.claim(conn.name, worker_b, limit=1000)
    assert {r.id for r in records_b} == {r.id for r in records_a}
    acumatica.faults("latency_ms=100")  # both runs' look-ups come back before either posts
    summaries = {}

    def post(name, records):
        with closing(open_adapter(conn, vault)) as adapter:
            summaries[name] = Poster(store, adapter, conn.name, name).post(records)

    threads = [threading.Thread(target=post, args=("run-a", records_a)),
               threading.Thread(target=post, args=("run-b", records_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acumatica.faults("none")
    invoices, _, _ = read_back(acumatica)
    assert invoices == Counter({f"INV-{i['id']}": 1 for i in INVOICES})
    assert summaries["run-a"].counts["posted"] == 0 and summaries["run-a"].counts["claim_lost"] == len(records_a)
    posted_by = {a["run_id"] for a in store.audit_trail(conn.name) if a["step"] == "posted"}
    assert posted_by == {"run-b"}


# --- break 3: one document claimed at a time, whatever its versions ----------------------------------

def test_an_edit_while_a_run_posts_is_not_posted_by_another_run(store, acumatica, acu):
    """The invoice is edited in ServiceTitan while run A posts it: the new version supersedes the
    one A claimed, and run B used to claim the new version and post the invoice a second time."""
    conn, vault = acu
    intake(store, conn, CUSTOMERS, (), INVOICES[:1])
    acumatica.faults("latency_ms=150")
    worker_a = store.worker_id("run-a")
    records_a = store.claim(conn.name, worker_a, limit=1000)
    edited = dict(INVOICES[0], total="350.00",
                  items=[item(1, "AC repair, extra part", "1", "350.00", "350.00", "40100")])
    intake(store, conn, (), (), [edited])  # the edit arrives while A holds the invoice
    summaries = {}

    def post_a():
        with closing(open_adapter(conn, vault)) as adapter, store.heartbeat(worker_a):
            summaries["a"] = Poster(store, adapter, conn.name, "run-a").post(records_a)

    a = threading.Thread(target=post_a)
    a.start()
    claimed_by_b = run_posting(store, conn, vault, "run-b")  # starts while A posts
    a.join()
    acumatica.faults("none")
    assert sum(claimed_by_b.counts.values()) == 0  # B got nothing of A's invoice
    invoices, _, _ = read_back(acumatica)
    assert invoices == Counter({"INV-7001": 1})
    later = run_posting(store, conn, vault, "run-c")  # the edit, once A is done: an edit, not a second post
    assert later.counts["needs_review"] + later.counts["posted"] == 1
    invoices, _, _ = read_back(acumatica)
    assert invoices == Counter({"INV-7001": 1})


def test_lookup_cost_per_document(store, acumatica, acu):
    """The ERP is asked right before each small group is posted: what that costs in requests."""
    conn, vault = acu
    intake(store, conn, CUSTOMERS, (), INVOICES)
    with closing(open_adapter(conn, vault)) as adapter:
        worker = store.worker_id("run-1")
        summary = Poster(store, adapter, conn.name, "run-1").post(store.claim(conn.name, worker, limit=1000))
        requests = adapter.client.http.stats["requests"]
    assert summary.counts["posted"] == len(INVOICES) + 1
    print(f"\n  {requests} Acumatica requests for {len(INVOICES)} invoices and 1 customer")
    assert requests < 4 * (len(INVOICES) + 1) + 4  # a PUT and a release per document, a look-up per group
