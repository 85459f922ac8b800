"""The code location loads, and the webhook sensor turns inbox events into the right run requests
(real sync store, real Dagster instance on PostgreSQL)."""

from __future__ import annotations

import json
import os
from datetime import date

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.servicetitan.sensors import webhook_inbox_sensor


def test_definitions_load_with_the_lineage_servicetitan_mapping_erp():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    groups = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups["st_invoices"] == "servicetitan" and groups["mapped_documents"] == "mapping"
    assert groups["erp_postings"] == "erp" and groups["reconciliation"] == "reconciliation"
    parents = {p.to_user_string() for p in graph.get(dg.AssetKey("erp_postings")).parent_keys}
    assert parents == {"mapped_documents"}
    assert {p.to_user_string() for p in graph.get(dg.AssetKey("mapped_documents")).parent_keys} >= {
        "st_invoices", "st_payments", "st_inventory_bills", "st_customers", "st_vendors", "erp_reference_data"}
    assert defs.resolve_job_def("sync").partitions_def is not None
    assert {s.name for s in defs.sensors} == {"webhook_inbox_sensor", "retry_failed_records_sensor",
                                              "erp_changes_sensor", "erp_existence_check_sensor", "dead_run_sweeper"}


@pytest.fixture
def instance(stack):
    from fieldledger.instance import get_instance

    return get_instance()


def event(store, connection, event_id, event_type, data):
    body = json.dumps({"eventId": event_id, "eventType": event_type, "data": data}).encode()
    assert store.add_inbox_event(connection, event_id, event_type, body)


def some_records(connection: str, stream: str, n: int) -> list[dict]:
    """The first ``n`` active records of a ServiceTitan export feed dated within the synced range
    (asking the simulator what it holds)."""
    from pipelines.partitions import START_DATE
    from pipelines.resources import FieldledgerResource
    from pipelines.servicetitan.extract import DATE_FIELD, EXPORT_STREAMS

    field = DATE_FIELD[next(k for k, v in EXPORT_STREAMS.items() if v == stream)]
    resource = FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])
    with resource.servicetitan(resource.connection(connection)) as client:
        records = [r for page in client.export_pages(stream) for r in page.records
                   if r.get("active", True) and r[field][:10] >= START_DATE]
    return records[:n]


def day_of(record: dict, field: str) -> str:
    return record[field][:10]


def test_inbox_sensor_batches_partitions_by_the_records_own_days_and_advances_its_cursor(stack, instance):
    """The payload's dates are wrong on purpose: the runs are for the days ServiceTitan returns by id."""
    store = stack.store
    inv1, inv2 = some_records("cascade-hvac", "invoices", 2)
    [pay] = some_records("cascade-hvac", "payments", 1)
    [bill] = some_records("summit-mechanical", "inventory_bills", 1)
    lie = "2000-01-01T00:00:00Z"
    event(store, "cascade-hvac", "e1", "invoice.created", {"id": inv1["id"], "invoiceDate": lie})
    event(store, "cascade-hvac", "e2", "invoice.updated", {"id": inv1["id"]})
    event(store, "cascade-hvac", "e3", "payment.created", {"id": pay["id"], "date": lie})
    event(store, "summit-mechanical", "e4", "inventorybill.created", {"id": bill["id"], "billDate": lie})
    event(store, "cascade-hvac", "e5", "customer.updated", {"id": 4})
    event(store, "cascade-hvac", "e6", "technician.updated", {"id": 5})
    from pipelines.resources import FieldledgerResource

    with dg.build_sensor_context(instance=instance, resources={"fieldledger": FieldledgerResource(
            database_url=os.environ["FIELDLEDGER_DATABASE_URL"])}) as ctx:
        result = webhook_inbox_sensor(ctx)
    keys = sorted(str(r.partition_key) for r in result.run_requests)
    wanted = {f"cascade-hvac|{day_of(inv1, 'invoiceDate')}", f"cascade-hvac|{day_of(pay, 'date')}",
              f"summit-mechanical|{day_of(bill, 'billDate')}"}
    assert keys == sorted(wanted)
    assert all(r.tags["fieldledger/connection"] in r.partition_key for r in result.run_requests)
    assert len({r.run_key for r in result.run_requests}) == len(wanted)
    assert not store.pending_inbox_events()  # every event handled or ignored with a reason
    counts = store.inbox_counts()
    assert counts[("cascade-hvac", "processed")] == 3 and counts[("cascade-hvac", "ignored")] == 2
    # the next tick has nothing new; a replay of the same partition later gets a different run key
    with dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={
            "fieldledger": FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])}) as ctx2:
        assert isinstance(webhook_inbox_sensor(ctx2), dg.SkipReason)
    event(store, "cascade-hvac", "e7", "invoice.updated", {"id": inv2["id"], "invoiceDate": lie})
    with dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={
            "fieldledger": FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])}) as ctx3:
        again = webhook_inbox_sensor(ctx3)
    assert [str(r.partition_key) for r in again.run_requests] == [f"cascade-hvac|{day_of(inv2, 'invoiceDate')}"]
    assert again.run_requests[0].run_key not in {r.run_key for r in result.run_requests}


def test_erp_changes_sensor_polls_both_erps_and_keeps_a_mark_per_connection(stack, instance):
    from pipelines.erp.sensors import erp_changes_sensor
    from pipelines.resources import FieldledgerResource

    with dg.build_sensor_context(instance=instance, resources={"fieldledger": FieldledgerResource(
            database_url=os.environ["FIELDLEDGER_DATABASE_URL"])}) as ctx:
        result = erp_changes_sensor(ctx)
    assert isinstance(result, dg.SkipReason)
    assert "cascade-hvac" in result.skip_message and "summit-mechanical" in result.skip_message
    for name in ("cascade-hvac", "summit-mechanical"):
        assert stack.store.get_cursor(name, "erp_changes")


def test_retry_sensor_requests_due_days_of_active_connections_only(stack, instance):
    from fieldledger import settings
    from mappings.connection import load_connection_file
    from mappings.intake import register
    from pipelines.erp.sensors import retry_failed_records_sensor
    from pipelines.resources import FieldledgerResource
    from tests.mappings.test_rules import invoice

    store = stack.store
    day = date(2026, 11, 5)
    for name in ("cascade-hvac", "summit-mechanical"):
        conn = load_connection_file(settings.connections_dir() / f"{name}.yaml")
        register(store, conn, "invoice", [invoice(id=9100, referenceNumber="INV-9100", invoiceDate="2026-11-05T00:00:00Z")],
                 day)
        with store.transaction() as c:  # its post failed transiently and the backoff has passed
            assert c.execute(
                "UPDATE records SET status = 'failed', error_class = 'transient', next_attempt_at = now() "
                "WHERE connection = %s AND source_type = 'invoice' AND source_id = '9100' AND business_date = %s",
                (name, day)).rowcount == 1

    def evaluate():
        with dg.build_sensor_context(instance=instance, resources={"fieldledger": FieldledgerResource(
                database_url=os.environ["FIELDLEDGER_DATABASE_URL"])}) as ctx:
            result = retry_failed_records_sensor(ctx)
        # the failed records' days (changed days left unread are asked for as 'unread-…', tested in test_unread_days)
        return [r for r in result.run_requests if r.run_key.startswith("retry-")]

    assert sorted(str(r.partition_key) for r in evaluate()) == [
        "cascade-hvac|2026-11-05", "summit-mechanical|2026-11-05"]
    path = settings.connections_dir() / "summit-mechanical.yaml"
    original = path.read_text()
    path.write_text(original + "\npaused: true\n")
    try:
        assert [str(r.partition_key) for r in evaluate()] == ["cascade-hvac|2026-11-05"]
    finally:
        path.write_text(original)


def test_a_run_teardown_never_closes_a_client_another_thread_is_using(stack):
    """Sensors and schedules run on several threads of the code server and share the process's
    clients; a run's teardown used to close them all, and a catch-up tick then failed with
    "Cannot send a request, as the client has been closed" (issue 18, problem 4)."""
    import threading

    from pipelines.resources import FieldledgerResource

    res = FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])
    conn = res.connection("cascade-hvac")
    inside, done, errors = threading.Event(), threading.Event(), []

    def tick():  # a schedule tick in the middle of its ServiceTitan reads
        try:
            with res.servicetitan(conn) as client:
                assert list(client.business_units())
                inside.set()
                done.wait(30)
                assert list(client.business_units())  # still open after the run's teardown
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            inside.set()

    worker = threading.Thread(target=tick)
    worker.start()
    assert inside.wait(30)
    res.teardown_after_execution(None)  # another run of this process ends meanwhile
    done.set()
    worker.join(30)
    assert errors == []
    with res.servicetitan(conn) as first:
        pass
    res.teardown_after_execution(None)  # nobody uses it now: signed out and made anew when needed
    with res.servicetitan(conn) as second:
        assert second is not first and list(second.business_units())


def test_the_nightly_reference_schedule_runs_each_connections_partition(stack, instance):
    """It launched the partitioned erp_reference job with no partition key, so the run failed
    every night at 01:15 UTC ('Cannot access partition_key for a non-partitioned run')."""
    from datetime import UTC, datetime

    from pipelines.definitions import reference_schedule

    job = defs.resolve_job_def("erp_reference")
    with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                   scheduled_execution_time=datetime(2026, 12, 8, 1, 15, tzinfo=UTC)) as ctx:
        requests = reference_schedule.evaluate_tick(ctx).run_requests
    assert sorted(r.partition_key for r in requests) == sorted(job.partitions_def.get_partition_keys())
    assert all(r.tags["fieldledger/connection"] == r.partition_key for r in requests)  # the queue's per-connection limit
    result = job.execute_in_process(partition_key=requests[0].partition_key, instance=instance, tags=requests[0].tags,
                                    raise_on_error=False)
    assert result.success
