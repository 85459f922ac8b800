"""The webhook-inbox sensor: turns stored ServiceTitan webhook events into run requests for the
affected (connection, day) partitions, batched. An event is a hint (pipelines/servicetitan/hints.py):
the day is its record's, read by id from ServiceTitan. An event's state is the dedupe (each one read
is marked); the days it names are recorded as wanted first (store.want_sync), so a tick whose run
requests never reach the queue loses nothing: the retry sensor asks for those days again. Run keys
include the last event id so a later replay of the same partition is never blocked."""


from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from pipelines.jobs import sync_job
from pipelines.partitions import CONNECTION_NAMES
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan.hints import inbox_hint, run_requests


@dg.sensor(job=sync_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a sync run for each (connection, day) a stored webhook event touches.")
def webhook_inbox_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    store = fieldledger.store
    # every event still pending, not only those after the cursor: inbox ids are taken at insert,
    # so an event whose transaction committed after a later one's was read would be skipped for
    # ever (the cursor only shows how far the sensor has read)
    events = store.pending_inbox_events(limit=500)
    if not events:
        return dg.SkipReason("no new webhook events")
    hints = [inbox_hint(e) for e in events]
    # an event of a connection the code location has no partitions for would make an invalid run
    # request and fail the whole tick: it fails alone, kept with the reason
    for why, ids in _by_reason([(h.inbox_id, no_partition(h.connection)) for h in hints
                                if h.connection not in CONNECTION_NAMES]).items():
        store.mark_inbox(ids, "failed", why)
    requests, plan = run_requests(fieldledger, [h for h in hints if h.connection in CONNECTION_NAMES],
                                  datetime.now(UTC).date(), context.instance)
    for why, ids in _by_reason(plan.ignored).items():
        store.mark_inbox(ids, "ignored", why)
    _mark_caught_up(store, plan, {h.inbox_id: h.connection for h in hints})
    store.mark_inbox(plan.handled, "processed", "run requested")
    return dg.SensorResult(run_requests=requests, cursor=str(max([int(context.cursor or 0)] + [e.id for e in events])))


def _mark_caught_up(store, plan, connection_of: dict[int, str]) -> None:
    """Events left to their connection's catch-up are processed only when it was requested; when
    it was not (no usable file, paused, ServiceTitan unreachable) they fail with the reason."""
    processed, failed = [], []
    for inbox_id, why in plan.caught_up:
        not_requested = plan.catch_up_failed.get(connection_of[inbox_id])
        (failed if not_requested else processed).append((inbox_id, not_requested or why))
    for state, marks in (("failed", failed), ("processed", processed)):
        for why, ids in _by_reason(marks).items():
            store.mark_inbox(ids, state, why)


def no_partition(connection: str) -> str:
    return (f"connection {connection!r} has no partitions in the running Dagster code location (its connection "
            "file was added after the code location loaded, or is missing): reload the code location (Dagster UI, "
            f"Deployment, Reload), then sync the days it missed with `fieldledger sync --connection {connection}`")


def _by_reason(marks: list[tuple[int, str]]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = defaultdict(list)
    for event_id, why in marks:
        grouped[why].append(event_id)
    return grouped


def queued_partitions(instance) -> set[str]:
    """Partitions with a sync run that has not begun executing (queued, or its process still
    starting): it extracts after the event's document exists in ServiceTitan, so a new event for
    them needs no new run. Counting STARTING runs matters: a run process takes seconds to start,
    and an event that arrived meanwhile otherwise waited for that run and a whole second one."""
    return partitions_with_runs(instance, [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                           dg.DagsterRunStatus.STARTING])


def partitions_with_runs(instance, statuses) -> set[str]:
    """Partitions with a sync run in one of ``statuses``."""
    if instance is None:
        return set()
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="sync", statuses=list(statuses)), limit=500)
    return {r.tags.get("dagster/partition") for r in runs if r.tags.get("dagster/partition")}
