"""Automatic retries: a sensor that requests the partitions holding transiently failed records
whose backoff has passed (after MAX_AUTOMATIC_ATTEMPTS a record is left for a person), and the
days said to have changed that no run has read since (resources/migrations/0003_sync_demand.sql)."""


from datetime import UTC, datetime, timedelta

import dagster as dg

from pipelines.jobs import run_tags, sync_job
from pipelines.partitions import partition_key
from pipelines.resources import FieldledgerResource
from resources.store import stranded_interval


@dg.sensor(job=sync_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Re-runs partitions whose failed records are due for another attempt.")
def retry_failed_records_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    from pipelines.servicetitan.sensors import partitions_with_runs

    # a day with a run queued or under way is left to that run: it posts the day's due records
    # itself, and a second run of the day would only wait behind it (one run per connection) and
    # sync the whole day again; if the run dies, the sweeper fails it and a later tick asks again
    waiting = partitions_with_runs(context.instance, [
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED])
    active = sorted(c.name for c in active_connections())  # a paused connection is not retried until resumed
    # dealt round robin across the active connections: one with many due days cannot starve the others
    store = fieldledger.store
    due = [(c, d) for c, d in store.due_retry_partitions(connections=active)
           if str(partition_key(c, d)) not in waiting]
    # days a webhook or the catch-up said changed that no run has read since (its request was
    # skipped for a waiting run that then failed, its step failed, or its tick was lost)
    unread = [(c, d) for c, d in store.due_demand(stranded_interval(), active)
              if str(partition_key(c, d)) not in waiting and (c, d) not in due]
    if not due and not unread:
        return dg.SkipReason("no failed records due for a retry and no changed day left unread on an active connection")
    store.demand_requested(unread)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return dg.SensorResult(run_requests=[
        dg.RunRequest(partition_key=partition_key(conn, day), run_key=f"{prefix}-{stamp}-{conn}-{day}",
                      tags=run_tags(conn, "retry"))
        for prefix, pairs in (("retry", due), ("unread", unread)) for conn, day in pairs
    ])


def active_connections():
    """The connections to poll: valid files only (a broken file sets its own connection aside)."""
    from mappings.connection import load_each
    from pipelines.partitions import CONNECTION_NAMES

    loaded, _ = load_each()
    return [c for c in loaded if c.name in CONNECTION_NAMES and not c.paused]


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Polls each ERP for changes made there: posted documents voided (held for review) and "
                       "customers/vendors created by hand (linked so they are not duplicated).")
def erp_changes_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    from posting.erp_changes import apply_erp_changes

    store = fieldledger.store
    summary = []
    for conn in active_connections():
        mark_text = store.get_cursor(conn.name, "erp_changes")
        mark = datetime.fromisoformat(mark_text) if mark_text else datetime.now(UTC) - timedelta(days=1)
        with fieldledger.erp(conn, keep=False) as adapter:
            changes, new_mark = adapter.changes_since(mark)
        counts = apply_erp_changes(store, conn.name, changes, run_id=f"erp-poll-{context.cursor or 0}")
        store.set_cursor(conn.name, "erp_changes", new_mark.isoformat())  # only after applying
        summary.append(f"{conn.name}: {dict(counts) or 'no changes'}")
    return dg.SkipReason("; ".join(summary) or "no connections")


@dg.sensor(minimum_interval_seconds=24 * 3600, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Nightly: checks that every document posted in the last 7 days still exists in the ERP "
                       "(Acumatica has no tombstones for deletions).")
def erp_existence_check_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    from posting.erp_changes import apply_erp_changes, verify_posted_exist

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=i) for i in range(7)]
    summary = []
    for conn in active_connections():
        with fieldledger.erp(conn, keep=False) as adapter:
            missing = verify_posted_exist(fieldledger.store, conn.name, adapter, days)
        counts = apply_erp_changes(fieldledger.store, conn.name, missing, run_id="erp-existence-check")
        summary.append(f"{conn.name}: {len(missing)} missing, {dict(counts)}")
    return dg.SkipReason("; ".join(summary) or "no connections")
