"""The catch-up schedule and the retry sensor under uneven connections (issue 22, break 7), over
real sockets to the ServiceTitan simulator and a real PostgreSQL:

- one connection whose ServiceTitan credentials are refused does not fail the tick for the other,
  and keeps its export tokens, so its changes are requested once it can be read again;
- a tick evaluated again (its runs were never submitted) requests the same days again;
- one connection with many due retry days does not starve another.

Every day asserted on is the one ServiceTitan dates the changed document on, read back from the
simulator: nothing here assumes a calendar position."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import httpx
import pytest

from fieldledger.instance import get_instance
from pipelines.erp.sensors import retry_failed_records_sensor
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan import extract
from pipelines.servicetitan.extract import EXPORT_STREAMS
from pipelines.servicetitan.schedules import servicetitan_catch_up
from resources.vault import Vault
from tests.pipeline.source import day_counts, st_client

CASCADE, SUMMIT = "cascade-hvac", "summit-mechanical"
TOKENS = [f"st_export_{stream}" for stream in EXPORT_STREAMS.values()]


def resource() -> FieldledgerResource:
    return FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])


def evaluate(at: datetime):
    """The schedule's evaluation for a tick scheduled at ``at``, as the daemon runs it."""
    with dg.build_schedule_context(instance=get_instance(), scheduled_execution_time=at,
                                   resources={"fieldledger": resource()}) as ctx:
        return servicetitan_catch_up(ctx)


def requested(result) -> dict[str, set[date]]:
    out: dict[str, set[date]] = {}
    for r in result if isinstance(result, list) else []:
        conn, day = str(r.partition_key).split("|")
        out.setdefault(conn, set()).add(date.fromisoformat(day))
    return out


def run_keys(result) -> set[str]:
    return {r.run_key for r in result} if isinstance(result, list) else set()


@pytest.fixture(scope="module")
def sim(stack):
    with httpx.Client(base_url=stack.info["servicetitan"]["base_url"], timeout=30) as client:
        yield client


def tenant(stack, name: str) -> int:
    return int(stack.info["servicetitan"]["tenants"][name]["tenant"])


def touch_invoice(stack, sim, name: str, named: dict[str, set[date]]) -> date:
    """Change one of a tenant's existing invoices (as an office edit would) on a day the catch-up
    does not name already (``named``: what a tick just requested); that day."""
    counts = day_counts(stack.info, name)
    day = next((d for d, n in counts.most_common() if n and d not in named.get(name, set())), None)
    assert day is not None, f"every day holding {name} invoices is already named: {dict(counts)} {named}"
    with st_client(stack.info, name) as client:
        invoice = extract.day_records(client, "invoice", day)[0]
    sim.post(f"/_sim/records/{tenant(stack, name)}/invoices/{invoice['id']}/touch", json={}).raise_for_status()
    return day


def tokens(stack, name: str) -> dict[str, str | None]:
    return {t: stack.store.get_cursor(name, t) for t in TOKENS}


def minute(offset: int) -> datetime:
    """Distinct tick times (the run keys carry the minute); only their difference matters."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=offset)


def test_a_failing_connection_keeps_its_window_and_spares_the_others(stack, sim, caplog):
    named = requested(evaluate(minute(-30)))  # the system has been running: the export tokens start now
    cascade_day = touch_invoice(stack, sim, CASCADE, named)
    summit_day = touch_invoice(stack, sim, SUMMIT, named)

    vault = Vault(stack.store)
    secret = resource().connection(SUMMIT).servicetitan.secrets["client_secret"]
    good = vault.get(SUMMIT, secret)
    summit_before = tokens(stack, SUMMIT)
    vault.set(SUMMIT, secret, "refused-" + good[:4])  # ServiceTitan refuses Summit's token requests
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.servicetitan.schedules"):
            first = evaluate(minute(-29))  # before the fix: the tick raised, Cascade's tokens had moved
    finally:
        vault.set(SUMMIT, secret, good)

    got = requested(first)
    assert cascade_day in got.get(CASCADE, set()), (cascade_day, got)
    assert SUMMIT not in got
    assert tokens(stack, SUMMIT) == summit_before  # the failed connection's window is kept
    assert any(SUMMIT in r.getMessage() for r in caplog.records), "the failure names the connection"
    assert good not in caplog.text

    second = requested(evaluate(minute(-28)))  # Summit readable again: its changes are not lost
    assert summit_day in second.get(SUMMIT, set()), (summit_day, second)


def test_a_broken_connection_file_sets_aside_its_connection_alone(stack, sim, caplog):
    """A typo in Summit's file (issue 18, problem 3) used to make every reader see "no
    connections": the catch-up requested nothing for anyone and `fieldledger status` failed for
    all. Now Cascade's change is still requested, the tick names Summit's file and what is wrong,
    and status lists Cascade as usual beside Summit marked invalid."""
    from fieldledger.settings import connections_dir
    from tests.operator.conftest import run_cli

    named = requested(evaluate(minute(-40)))
    cascade_day = touch_invoice(stack, sim, CASCADE, named)
    path = connections_dir() / f"{SUMMIT}.yaml"
    text = path.read_text()
    path.write_text(text.replace("erp:", "erp_typo:", 1))
    try:
        with caplog.at_level(logging.WARNING, logger="pipelines.servicetitan.schedules"):
            result = evaluate(minute(-39))
        got = requested(result)
        assert cascade_day in got.get(CASCADE, set()), (cascade_day, got)
        assert SUMMIT not in got
        shown = run_cli("status")
        assert shown.exit_code == 1, shown.output
        assert CASCADE in shown.stdout and f"{SUMMIT}" in shown.stdout and "file invalid" in shown.stdout
        assert f"{SUMMIT}.yaml" in shown.stderr and "erp_typo" in shown.stderr, shown.stderr
    finally:
        path.write_text(text)
    assert any(SUMMIT in r.getMessage() and "connection file" in r.getMessage() for r in caplog.records), caplog.text


def test_a_tick_evaluated_again_requests_the_same_days(stack, sim):
    day = touch_invoice(stack, sim, CASCADE, requested(evaluate(minute(-20))))
    # past ServiceTitan's export lag (900 s): a read moves its continuation token beyond the change
    # (a change younger than that is served again by every read, whatever the token)
    sim.post("/_sim/clock", json={"advance_seconds": 1000}).raise_for_status()
    at = minute(-19)
    first = evaluate(at)
    assert day in requested(first).get(CASCADE, set())
    # the daemon did not get to submit those runs (the tick failed after the evaluation): it re-does
    # the tick for the same scheduled time, which must name the same days under the same run keys
    again = evaluate(at)
    assert day in requested(again).get(CASCADE, set()), "the re-done tick lost the window"
    assert {k for k in run_keys(first) if CASCADE in k} <= run_keys(again)


def _due(stack, connection: str, day: date, n: int) -> None:
    """A failed record of ``connection`` on ``day`` whose retry is due now."""
    record, _ = stack.store.upsert_version(connection, "invoice", f"fair-{day}-{n}", f"h-{connection}-{day}-{n}",
                                           day, {"source": {"id": n}})
    stack.store.record_outcome(record.id, "failed", step="posted", outcome="failed", error_class="transient",
                               error_message="ERP answered 503", retry_in_seconds=0)


def test_the_retry_sensor_is_fair_across_connections(stack):
    start = date(2025, 11, 3)  # inside both connections' partitions; the days are only labels here
    busy = [start + timedelta(days=i) for i in range(130)]  # more due days than one sensor tick takes
    for i, day in enumerate(busy):
        _due(stack, CASCADE, day, i)
    quiet = [busy[-1], busy[-2]]  # Summit's due days sort after all of Cascade's
    for i, day in enumerate(quiet):
        _due(stack, SUMMIT, day, i)
    try:
        due = stack.store.due_retry_partitions()
        assert {(SUMMIT, d) for d in quiet} <= set(due), "one connection's backlog starved another"
        assert len(due) == 100

        with dg.build_sensor_context(instance=get_instance(), resources={"fieldledger": resource()}) as ctx:
            result = retry_failed_records_sensor(ctx)
        keys = {str(r.partition_key) for r in result.run_requests}
        assert {f"{SUMMIT}|{d}" for d in quiet} <= keys
        assert sum(k.startswith(CASCADE) for k in keys) >= 90  # the busy one still gets the rest
    finally:
        with stack.store.transaction() as conn:
            conn.execute("DELETE FROM records WHERE source_id LIKE 'fair-%'")
