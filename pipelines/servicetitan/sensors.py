"""The webhook-inbox sensor: turns stored ServiceTitan webhook events into run requests for the
affected (connection, day) partitions, batched. Its cursor (the last inbox id) is the dedupe;
run keys include that id so a later replay of the same partition is never blocked."""


import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from pipelines.jobs import run_tags, sync_job
from pipelines.partitions import START_DATE, partition_key
from pipelines.resources import FieldledgerResource

DATE_FIELDS = {"invoice": ("invoiceDate",), "payment": ("date", "paidOn", "createdOn"),
               "inventorybill": ("billDate", "createdOn")}
PARTY_EVENTS = ("customer", "vendor", "location")


def event_partition(event_type: str, data: dict) -> date | None | str:
    """The business day an event touches; 'party' for customer/vendor events; None if unknown."""
    entity = event_type.split(".", 1)[0].lower()
    if entity in PARTY_EVENTS:
        return "party"
    for field in DATE_FIELDS.get(entity, ()):
        value = data.get(field)
        if value:
            try:
                return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
            except ValueError:
                continue
    return None


def plan_runs(events, today: date) -> tuple[dict[tuple[str, date], int], list[tuple[int, str]], list[int]]:
    """Group inbox events into partitions. Returns ({(connection, day): max event id}, [(id, why ignored)],
    [ids handled])."""
    partitions: dict[tuple[str, date], int] = defaultdict(int)
    ignored: list[tuple[int, str]] = []
    handled: list[int] = []
    start = date.fromisoformat(START_DATE)
    for event in events:
        try:
            body = json.loads(event.body)
        except ValueError:
            ignored.append((event.id, "body is not JSON"))
            continue
        day = event_partition(event.event_type, body.get("data") or {})
        if day == "party":
            ignored.append((event.id, "customer/vendor changes are synced with the documents that use them"))
        elif day is None:
            ignored.append((event.id, f"event type {event.event_type!r} does not name a document date"))
        elif not (start <= day <= today + timedelta(days=1)):
            ignored.append((event.id, f"document date {day} is outside the synced range"))
        else:
            partitions[(event.connection, day)] = max(partitions[(event.connection, day)], event.id)
            handled.append(event.id)
    return dict(partitions), ignored, handled


@dg.sensor(job=sync_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a sync run for each (connection, day) a stored webhook event touches.")
def webhook_inbox_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    store = fieldledger.store
    after = int(context.cursor or 0)
    events = store.pending_inbox_events(after_id=after, limit=500)
    if not events:
        return dg.SkipReason("no new webhook events")
    partitions, ignored, handled = plan_runs(events, datetime.now(UTC).date())
    for event_id, why in ignored:
        store.mark_inbox([event_id], "ignored", why)
    store.mark_inbox(handled, "processed", "run requested")
    waiting = queued_partitions(context.instance)
    requests = [
        dg.RunRequest(partition_key=partition_key(conn, day), run_key=f"inbox-{last_id}-{conn}-{day}",
                      tags=run_tags(conn, "webhook"))
        for (conn, day), last_id in sorted(partitions.items())
        # a run for this partition that has not started yet will read these changes too
        if str(partition_key(conn, day)) not in waiting
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(max(e.id for e in events)))


def queued_partitions(instance) -> set[str]:
    """Partitions with a sync run that has not begun executing (queued, or its process still
    starting): it extracts after the event's document exists in ServiceTitan, so a new event for
    them needs no new run. Counting STARTING runs matters: a run process takes seconds to start,
    and an event that arrived meanwhile otherwise waited for that run and a whole second one."""
    if instance is None:
        return set()
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="sync", statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]), limit=500)
    return {r.tags.get("dagster/partition") for r in runs if r.tags.get("dagster/partition")}
