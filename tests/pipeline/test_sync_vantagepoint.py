"""Days (twelve; FL_TEST_DAYS=30 for a month) of Summit Mechanical synced through Dagster into Vantagepoint, then checked in the
Vantagepoint simulator's ledger through its API."""

from __future__ import annotations

import os
import time
from contextlib import closing
from decimal import Decimal

import pytest

from mappings.connection import load_connection
from posting.reconcile import reconcile
from posting.registry import open_adapter
from resources.vantagepoint import VantagepointClient
from resources.vault import Vault
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import last_days, source_documents
from tests.vantagepoint.ledger_checks import assert_synced_once

pytestmark = pytest.mark.slow
CONNECTION = "summit-mechanical"
DAYS = int(os.environ.get("FL_TEST_DAYS", "12"))  # FL_TEST_DAYS=30 for a whole month (about 2.5x as long)


def vantagepoint(stack) -> VantagepointClient:
    v = stack.info["vantagepoint"]
    return VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                              v["password"], rate_per_second=200)


def test_a_backfill_of_days_lands_in_vantagepoint_exactly_once_and_reconcile(stack):
    days = last_days(DAYS)
    started = time.monotonic()
    outcome = run_partitions(CONNECTION, days, "test")
    print(f"\n{DAYS}-day backfill to Vantagepoint: {outcome.runs} runs in {time.monotonic() - started:.1f} s")
    assert outcome.failed_runs == []
    statuses = stack.store.status_counts(CONNECTION)
    assert statuses.get("failed", 0) == 0 and statuses.get("quarantined", 0) == 0, statuses

    expected = source_documents(stack.info, CONNECTION, days)
    assert len(expected["invoice"]) > 5 * DAYS and len(expected["payment"]) > 3 * DAYS  # a real backfill, whatever the days
    conn = load_connection(CONNECTION)
    with vantagepoint(stack) as vp:
        before = assert_synced_once(vp, expected, conn, lambda vendor: stack.store.lookup(CONNECTION, "vendor", vendor))

    # reconciliation to the cent, every day
    with closing(open_adapter(conn, Vault(stack.store))) as adapter:
        off = [(day, r) for day in days for r in reconcile(stack.store, CONNECTION, day, adapter)
               if r.difference != Decimal("0")]
    assert off == []

    # replaying days posts nothing new
    assert run_partitions(CONNECTION, days[-3:], "test-replay").failed_runs == []
    with vantagepoint(stack) as vp:
        assert len(vp.ledger("IN")) == before
