"""The catch-up schedule: every few minutes, read ServiceTitan's export feeds from the stored
continuation tokens and request a sync of every (connection, day) that changed — whatever the
webhooks missed (dropped, delayed, or received while fieldledger was down)."""


from datetime import UTC, datetime, timedelta

import dagster as dg

from mappings.connection import ConnectionFileError, load_all
from pipelines.jobs import run_tags, sync_job
from pipelines.partitions import CONNECTION_NAMES, START_DATE, partition_key
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan.extract import EXPORT_STREAMS, changed_days
from pipelines.servicetitan.sensors import queued_partitions

CATCH_UP_CRON = "*/5 * * * *"


def catch_up_requests(fieldledger: FieldledgerResource, now: datetime, instance=None) -> list[dg.RunRequest]:
    """Run requests for every (connection, day) changed since the stored export tokens, except
    partitions that already have a run waiting in the queue (it will read the change too). The
    first tick starts an hour back: history is the backfill's job, not the catch-up's."""
    requests: list[dg.RunRequest] = []
    waiting = queued_partitions(instance)
    try:
        connections = [c for c in load_all() if c.name in CONNECTION_NAMES and not c.paused]
    except ConnectionFileError:
        connections = []
    stamp = now.strftime("%Y%m%dT%H%M")
    for conn in connections:
        requests += connection_catch_up(fieldledger, conn, now, waiting, f"catchup-{stamp}")
    return requests


def connection_catch_up(fieldledger: FieldledgerResource, conn, now: datetime, waiting: set[str],
                        run_key_prefix: str) -> list[dg.RunRequest]:
    """One connection's catch-up (also asked for by the webhook sensor when an event names no record)."""
    first_from = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = datetime.fromisoformat(START_DATE).date()
    days: set = set()
    with fieldledger.servicetitan(conn) as client:
        for source_type in EXPORT_STREAMS:
            days |= changed_days(client, fieldledger.store, conn.name, source_type, first_from)
    return [dg.RunRequest(partition_key=partition_key(conn.name, day), run_key=f"{run_key_prefix}-{conn.name}-{day}",
                          tags=run_tags(conn.name, "catch-up"))
            for day in sorted(d for d in days if start <= d <= now.date() + timedelta(days=1))
            if str(partition_key(conn.name, day)) not in waiting]


@dg.schedule(job=sync_job, cron_schedule=CATCH_UP_CRON, default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Reads ServiceTitan export feeds and syncs every day that changed since the last tick.")
def servicetitan_catch_up(context: dg.ScheduleEvaluationContext, fieldledger: FieldledgerResource):
    requests = catch_up_requests(fieldledger, context.scheduled_execution_time or datetime.now(UTC),
                                 context.instance)
    return requests or dg.SkipReason("nothing changed in ServiceTitan since the last catch-up")
