"""Issue 22: a day ServiceTitan said changed is synced even when the run asked for it never reads
it. The run request can be skipped (a run of the day was already waiting), its run can fail before
its extract (ServiceTitan answering 503), or the sensor tick can be lost while submitting it; the
inbox event is processed by then and the catch-up's tokens may have moved past the change. The
day's demand (resources/migrations/0003_sync_demand.sql) outlives all of that: the retry sensor
asks for the day again until a run that began reading it after the change has registered it.

Over real sockets: the ServiceTitan and ERP simulators, the embedded PostgreSQL, Dagster's
instance; runs execute in process (tests/pipeline/runs.py)."""

from __future__ import annotations

import os
from datetime import date

import dagster as dg
import httpx
import pytest

from pipelines.definitions import defs
from pipelines.erp.sensors import retry_failed_records_sensor
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan.sensors import webhook_inbox_sensor
from resources.vault import Vault
from tests.pipeline.conftest import stack  # noqa: F401 - the shared module-scoped fixture
from tests.pipeline.test_definitions import event, some_records

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"


def _resource() -> FieldledgerResource:
    return FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])


def _evaluate(sensor, cursor: str | None = None):
    from fieldledger.instance import get_instance

    with dg.build_sensor_context(instance=get_instance(), cursor=cursor,
                                 resources={"fieldledger": _resource()}) as ctx:
        return sensor(ctx)


def _execute(request):
    from fieldledger.instance import get_instance

    return defs.resolve_job_def("sync").execute_in_process(
        partition_key=request.partition_key, instance=get_instance(), tags=request.tags, raise_on_error=False)


def _open_days(store) -> set[date]:
    return {day for _, day, _ in store.open_demand(CONNECTION)}


def test_a_day_whose_run_failed_before_reading_it_is_asked_for_again(stack, monkeypatch):  # noqa: F811
    store = stack.store
    invoice = some_records(CONNECTION, "invoices", 40)[-1]
    day = date.fromisoformat(invoice["invoiceDate"][:10])
    event(store, CONNECTION, "unread-1", "invoice.created", {"id": invoice["id"]})
    [request] = _evaluate(webhook_inbox_sensor).run_requests
    assert str(request.partition_key) == f"{CONNECTION}|{day}"
    assert day in _open_days(store)

    # the run's extract fails, nothing is read (ServiceTitan refuses the app's credentials: a
    # person rotated the secret in the developer portal), and Dagster does not retry a run whose
    # step failed (dagster.yaml run_retries)
    vault = Vault(store)
    secret = vault.get(CONNECTION, "st_client_secret")
    vault.set(CONNECTION, "st_client_secret", "rotated-elsewhere")
    httpx.post(stack.info["servicetitan"]["base_url"] + "/_sim/tokens/revoke", timeout=30).raise_for_status()
    try:
        assert not _execute(request).success
    finally:
        vault.set(CONNECTION, "st_client_secret", secret)
    assert store.records(CONNECTION, source_type="invoice", source_id=str(invoice["id"])) == []
    assert not store.pending_inbox_events()  # the event is spent: only the demand is left
    assert day in _open_days(store)
    from tests.operator.conftest import run_cli

    shown = run_cli("status")
    assert "UNREAD DAYS" in shown.stdout
    [row] = [line for line in shown.stdout.splitlines() if line.startswith(CONNECTION)]
    assert row.split()[-2] == str(len(_open_days(store))), shown.stdout

    monkeypatch.setenv("FIELDLEDGER_STRANDED_AFTER_SECONDS", "0")
    unread = [r for r in _evaluate(retry_failed_records_sensor).run_requests if r.run_key.startswith("unread-")]
    assert [str(r.partition_key) for r in unread] == [f"{CONNECTION}|{day}"]
    with store.transaction() as conn:
        asked = conn.execute("SELECT requests FROM sync_demand WHERE connection = %s AND day = %s",
                             (CONNECTION, day)).fetchone()["requests"]
    assert asked == 1  # counted, so a day whose read keeps failing is asked for less and less often

    assert _execute(unread[0]).success
    [record] = store.records(CONNECTION, source_type="invoice", source_id=str(invoice["id"]))
    assert record.business_date == day
    assert day not in _open_days(store)
    again = _evaluate(retry_failed_records_sensor)
    assert f"{CONNECTION}|{day}" not in {str(r.partition_key) for r in getattr(again, "run_requests", None) or []}


def test_an_event_committed_after_a_later_one_was_read_is_still_read(stack):  # noqa: F811
    """Inbox ids are taken at insert: a delivery whose transaction commits after a later one was
    read (and the cursor moved past it) used to be skipped for ever, the cursor being the filter."""
    store = stack.store
    first, second = some_records(CONNECTION, "invoices", 60)[-2:]
    event(store, CONNECTION, "late-1", "invoice.updated", {"id": first["id"]})
    event(store, CONNECTION, "late-2", "invoice.updated", {"id": second["id"]})
    late, read = store.pending_inbox_events()[-2:]
    store.mark_inbox([read.id], "processed", "run requested")  # the tick that read only the later one
    result = _evaluate(webhook_inbox_sensor, cursor=str(read.id))
    assert [str(r.partition_key) for r in result.run_requests] == [f"{CONNECTION}|{first['invoiceDate'][:10]}"]
    assert int(result.cursor) >= read.id
    assert all(e.id != late.id for e in store.pending_inbox_events())
