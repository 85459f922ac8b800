"""A sync run killed with SIGKILL in the middle of posting, then replayed: every document of the
days is in the ERP exactly once (check-before-post by external reference finds what the killed
run posted but never recorded), and the audit trail shows the recovery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from fieldledger.operations import open_failures
from pipelines.jobs import run_tags
from pipelines.partitions import partition_key
from resources.vantagepoint import VantagepointClient, pad_document_number
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import days_holding, source_documents

pytestmark = pytest.mark.slow
CONNECTION = "summit-mechanical"


def posted_count(store) -> int:
    with store.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM records WHERE connection = %s AND status = 'posted' "
                            "AND source_type = 'invoice'", (CONNECTION,)).fetchone()["n"]


def test_sigkill_mid_posting_then_replay_posts_nothing_twice(stack):
    days = days_holding(stack.info, CONNECTION, 2, minimum=20)  # enough invoices to be killed mid-posting
    # a run worker of its own (the in-process runner in a child process): SIGKILL takes it mid-posting
    # the way a dead Dagster run worker is taken; the product's queue path is covered in test_run_queue.py
    items = [[str(partition_key(CONNECTION, day)), dict(run_tags(CONNECTION, "killed"))] for day in days]
    cmd = [sys.executable, "-m", "bench.fullstack", "execute", json.dumps(items)]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while posted_count(stack.store) < 5:  # let it get well into posting, then kill it mid-flight
        assert proc.poll() is None, "the sync finished before it could be killed; the test needs more work"
        assert time.monotonic() < deadline, "posting never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    killed_at = posted_count(stack.store)

    outcome = run_partitions(CONNECTION, days, "replay-after-crash")
    assert outcome.failed_runs == []
    assert open_failures(stack.store, CONNECTION) == []
    assert posted_count(stack.store) > killed_at

    expected = source_documents(stack.info, CONNECTION, days)
    v = stack.info["vantagepoint"]
    with VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                            v["password"], rate_per_second=200) as vp:
        ar_rows = Counter(pad_document_number(r.Invoice) for r in vp.ledger("IN") if r.SubType == "A")
        receipts = Counter(r.RefNo for r in vp.ledger("CR") if r.SubType == "A")
    for doc in expected["invoice"].values():
        assert ar_rows[pad_document_number(doc.number)] == 1, doc.number
    assert all(n == 1 for n in receipts.values()), [k for k, n in receipts.items() if n > 1]
    assert len(receipts) >= len(expected["payment"])
