"""The catch-up schedule: every few minutes, read ServiceTitan's export feeds from the stored
continuation tokens and request a sync of every (connection, day) that changed — whatever the
webhooks missed (dropped, delayed, or received while fieldledger was down).

Each connection is caught up on its own: one that fails (ServiceTitan unreachable, credentials
refused) is named in the tick's log and keeps its tokens, the others go on. A connection's tokens
move only after the run requests for the days they cover are built, and a tick evaluated again
(Dagster re-does a tick that failed or was interrupted: ``max_tick_retries`` in dagster.yaml)
re-reads the same window, so a window is never skipped because its runs were not submitted."""


from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg

from mappings.connection import load_each
from pipelines.jobs import run_tags, sync_job
from pipelines.partitions import CONNECTION_NAMES, START_DATE, partition_key
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan.extract import EXPORT_STREAMS, changed_days
from pipelines.servicetitan.sensors import queued_partitions

CATCH_UP_CRON = "*/5 * * * *"
WINDOWS_CURSOR = "st_export_windows"  # {tick: tokens it started from}, for the ticks evaluated lately
KEPT_WINDOWS = 20

log = logging.getLogger(__name__)


@dataclass
class CatchUp:
    requests: list[dg.RunRequest] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # connection -> what went wrong (no secrets)


def catch_up(fieldledger: FieldledgerResource, now: datetime, instance=None) -> CatchUp:
    """Run requests for every (connection, day) changed since the stored export tokens, except
    partitions that already have a run waiting in the queue (it will read the change too); and
    the connections that could not be read. The first tick starts an hour back: history is the
    backfill's job, not the catch-up's."""
    result = CatchUp()
    waiting = queued_partitions(instance)
    loaded, unusable = load_each()
    connections = [c for c in loaded if c.name in CONNECTION_NAMES and not c.paused]
    for name, why in unusable.items():  # that connection alone waits for its file to be fixed
        result.failed[name] = f"its connection file cannot be used: {why}"
        log.warning("catch-up of connection %s skipped: %s", name, result.failed[name])
    tick = f"catchup-{now.strftime('%Y%m%dT%H%M')}"
    for conn in connections:
        try:
            result.requests += connection_catch_up(fieldledger, conn, now, waiting, tick)
        except Exception as exc:  # noqa: BLE001 - one connection's failure never touches another
            result.failed[conn.name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            log.warning("catch-up of connection %s failed, its export tokens stay where they were (%s); "
                        "the next tick reads the same window", conn.name, result.failed[conn.name])
    return result


def catch_up_requests(fieldledger: FieldledgerResource, now: datetime, instance=None) -> list[dg.RunRequest]:
    """The run requests of ``catch_up`` (a connection that failed is logged and left for the next tick)."""
    return catch_up(fieldledger, now, instance).requests


def connection_catch_up(fieldledger: FieldledgerResource, conn, now: datetime, waiting: set[str],
                        run_key_prefix: str) -> list[dg.RunRequest]:
    """One connection's catch-up (also asked for by the webhook sensor when an event names no record).
    ``run_key_prefix`` names the tick: evaluated again, it reads again from where it first started
    and requests the same days under the same run keys (Dagster creates no run twice for a key).
    The tokens are committed, all streams at once, after the requests are built; an error before
    that leaves them untouched."""
    store = fieldledger.store
    first_from = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = datetime.fromisoformat(START_DATE).date()
    windows = json.loads(store.get_cursor(conn.name, WINDOWS_CURSOR) or "{}")
    begun = windows.get(run_key_prefix) or {
        f"st_export_{stream}": store.get_cursor(conn.name, f"st_export_{stream}") or first_from
        for stream in EXPORT_STREAMS.values()}
    tokens = dict(begun)
    days: set = set()
    with fieldledger.servicetitan(conn) as client:
        for source_type in EXPORT_STREAMS:
            days |= changed_days(client, store, conn.name, source_type, first_from, tokens=tokens)
    changed = sorted(d for d in days if start <= d <= now.date() + timedelta(days=1))
    store.want_sync(conn.name, changed)  # wanted until a run reads them, whatever becomes of these requests
    requests = [dg.RunRequest(partition_key=partition_key(conn.name, day), run_key=f"{run_key_prefix}-{conn.name}-{day}",
                              tags=run_tags(conn.name, "catch-up"))
                for day in changed if str(partition_key(conn.name, day)) not in waiting]
    windows[run_key_prefix] = begun
    kept = dict(list(windows.items())[-KEPT_WINDOWS:])
    store.set_cursors(conn.name, {**tokens, WINDOWS_CURSOR: json.dumps(kept)})
    return requests


@dg.schedule(job=sync_job, cron_schedule=CATCH_UP_CRON, default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Reads ServiceTitan export feeds and syncs every day that changed since the last tick.")
def servicetitan_catch_up(context: dg.ScheduleEvaluationContext, fieldledger: FieldledgerResource):
    result = catch_up(fieldledger, context.scheduled_execution_time or datetime.now(UTC), context.instance)
    for name, why in sorted(result.failed.items()):
        context.log.error(f"catch-up of connection {name!r} failed and is retried next tick "
                          f"(its export tokens did not move): {why}")
    if result.requests:
        return result.requests
    failed = "; ".join(f"{name} failed ({why})" for name, why in sorted(result.failed.items()))
    return dg.SkipReason(failed or "nothing changed in ServiceTitan since the last catch-up")
