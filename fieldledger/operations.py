"""Operations the CLI offers on top of the pipeline: run partitions through Dagster on the same
instance the UI shows, replay failed records, summarise open failures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from mappings.connection import Connection
from mappings.intake import remap_quarantined
from resources.store import OPEN_FAILURE_STATUSES, Record, SyncStore


@dataclass
class RunOutcome:
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    open_failures: list = field(default_factory=list)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class NoDaemon(RuntimeError):
    """Nobody dequeues the instance's run queue: submitted runs would wait for ever."""


def check_daemon(instance) -> None:
    """Refuse before submitting when the queue's daemon has no recent heartbeat."""
    from dagster._daemon.controller import get_daemon_statuses

    status = get_daemon_statuses(instance, [QUEUE_DAEMON], ignore_errors=True)[QUEUE_DAEMON]
    if status.required and not status.healthy:
        raise NoDaemon("no Dagster daemon is dequeuing runs on this instance, so nothing would run; start one "
                       "(`make demo`, or `dagster-daemon run -w workspace.yaml` with the environment `fieldledger` "
                       "sets: DAGSTER_HOME) and try again")


def submit_partitions(connection: str, days: Iterable[date], reason: str, tags: dict[str, str] | None = None,
                      submitted: list[tuple[date, str]] | None = None) -> list[tuple[date, str]]:
    """Put one sync run per (connection, day) in the instance's run queue, tagged with the
    partition and ``tags`` (default fieldledger's: connection, reason, priority); the daemon starts
    them, one per connection at a time. Returns (day, run id) in submission order, appended to
    ``submitted`` as each run is queued (a caller interrupted half-way knows what is queued)."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    from fieldledger.instance import LOCATION_NAME, PROJECT_ROOT, ensure_pools, get_instance
    from pipelines.jobs import run_tags
    from pipelines.partitions import connection_day, partition_key

    instance = get_instance()
    check_daemon(instance)
    ensure_pools(instance)
    # the same location name as workspace.yaml: the daemon launches each run from its own copy
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name="pipelines.definitions", attribute="defs",
                             working_directory=str(PROJECT_ROOT)), location_name=LOCATION_NAME)
    submitted = [] if submitted is None else submitted
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        workspace = context.create_request_context()
        location = workspace.get_code_location(LOCATION_NAME)
        repo = next(iter(location.get_repositories().values()))
        remote_job = repo.get_full_job("sync")
        plan = location.get_execution_plan(remote_job, {}, step_keys_to_execute=None, known_state=None,
                                           instance=instance).execution_plan_snapshot
        for day in days:
            key = partition_key(connection, day)
            run = instance.create_run(
                job_name="sync", run_id=None, run_config={}, resolved_op_selection=None,
                step_keys_to_execute=plan.step_keys_to_execute, op_selection=None, status=None,
                root_run_id=None, parent_run_id=None,
                tags={**connection_day.get_tags_for_partition_key(key),
                      **(run_tags(connection, reason) if tags is None else tags)},
                job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan,
                parent_job_snapshot=remote_job.parent_job_snapshot,
                remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
                asset_selection=None, asset_check_selection=None, asset_graph=repo.asset_graph)
            instance.submit_run(run.run_id, workspace)
            submitted.append((day, run.run_id))
    return submitted


def follow_runs(runs: list[tuple[date, str]], connection: str,
                on_done: Callable[[date, bool], None] | None = None, poll_seconds: float = 1.0) -> RunOutcome:
    """Wait until every submitted run has finished, calling ``on_done`` as each does (any order)."""
    from fieldledger.instance import get_instance

    instance = get_instance()
    outcome = RunOutcome()
    waiting = dict((run_id, day) for day, run_id in runs)
    while waiting:
        for run_id, day in list(waiting.items()):
            run = instance.get_run_by_id(run_id)
            if run is None or run.status.value not in FINISHED:
                continue
            del waiting[run_id]
            outcome.runs += 1
            ok = run.status.value == "SUCCESS"
            if not ok:
                outcome.failed_runs.append(f"{connection} {day} (run {run_id}, {run.status.value.lower()})")
            if on_done:
                on_done(day, ok)
        if waiting:
            time.sleep(poll_seconds)
    return outcome


def unfinished(run_ids: Iterable[str]) -> list[str]:
    """The runs among ``run_ids`` still queued or in progress."""
    from fieldledger.instance import get_instance

    instance = get_instance()
    return [r for r in run_ids if (run := instance.get_run_by_id(r)) and run.status.value not in FINISHED]


def run_partitions(connection: str, days: Iterable[date], reason: str,
                   on_done: Callable[[date, bool], None] | None = None) -> RunOutcome:
    """Submit the days' runs to the queue and follow them to the end."""
    return follow_runs(submit_partitions(connection, days, reason), connection, on_done)


def days_covered(connection: str, days: Iterable[date]) -> set[date]:
    """The days among ``days`` whose sync run of ``connection`` succeeded or still waits in the
    queue: a restarted demo backfills only the others. A run left STARTED by a stopped demo does
    not count (its worker is gone); a day run twice is harmless, the protocol skips what is posted."""
    from dagster import DagsterRunStatus, RunsFilter

    from fieldledger.instance import get_instance
    from pipelines.partitions import partition_key

    wanted = {str(partition_key(connection, d)): d for d in days}
    statuses = [DagsterRunStatus.SUCCESS, DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]
    runs = get_instance().get_runs(RunsFilter(job_name="sync", statuses=statuses,
                                              tags={"dagster/partition/connection": connection}))
    return {wanted[r.tags["dagster/partition"]] for r in runs if r.tags.get("dagster/partition") in wanted}


def open_failures(store: SyncStore, connection: str, start: date | None = None, end: date | None = None) -> list:
    rows = store.records(connection, statuses=OPEN_FAILURE_STATUSES)
    return [r for r in rows if (start is None or (r.business_date and r.business_date >= start))
            and (end is None or (r.business_date and r.business_date <= end))]


def prepare_replay(store: SyncStore, conn: Connection, *, only_failed: bool, day: date | None,
                   record: str | None, run_id: str) -> set[date]:
    """Re-map quarantined records with the current connection file and put failed ones back in
    the queue; returns the days to run again. An earlier invoice that a replayed payment applies to
    does not need its own day re-run: the payment's run posts it first. Without --failed, the
    whole day is re-run (the protocol skips what is already posted)."""
    remap_quarantined(store, conn, business_date=day, source_id=record, run_id=run_id)
    store.requeue(conn.name, business_date=day, source_id=record, run_id=run_id)
    pending = [r for r in store.records(conn.name, statuses=["pending", "failed"], business_date=day,
                                        source_id=record) if r.business_date]
    applied = {a["invoice_id"] for r in pending if r.source_type == "payment"
               for a in ((r.payload or {}).get("document") or {}).get("applications", [])}
    days = {r.business_date for r in pending if not (r.source_type == "invoice" and r.source_id in applied)}
    if not only_failed and day:
        days.add(day)
    return days


class NotReviewable(ValueError):
    """The record is not waiting for a person's review (only ``needs_review`` ones are)."""


def mark_reviewed(store: SyncStore, record_id: int, note: str, reviewer: str) -> Record:
    """Close a conflict by hand: the ServiceTitan edit of an already-released document was
    adjusted in the ERP (credit memo, reversal) by a person. The record counts as posted against
    the released document from then on, so no later run posts it again, and the audit trail
    keeps who said so and why."""
    rec = store.get_record(record_id)
    if rec is None:
        raise NotReviewable(f"no record with id {record_id}; `fieldledger errors list` shows the ids")
    if rec.status != "needs_review":
        raise NotReviewable(f"record {record_id} ({rec.source_type} {rec.source_id}) is {rec.status}, not "
                            "needs_review; only conflicts are resolved by hand, the rest are replayed")
    trail = store.audit_trail(rec.connection, rec.source_type, rec.source_id)
    previous_key = next((a["detail"].get("previous_key") for a in reversed(trail)
                         if (a.get("detail") or {}).get("previous_key")), None)
    return store.record_outcome(rec.id, "posted", step="reviewed", outcome="adjusted by hand",
                                target_key=previous_key or rec.target_key, count_attempt=False,
                                detail={"note": note, "reviewer": reviewer})


def cancel_queued(runs: list[tuple[date, str]]) -> tuple[list[date], list[date]]:
    """Take the runs not started yet out of the queue (a run in progress finishes: stopping it
    half-way would leave its day half-posted). Returns (cancelled days, days still running)."""
    from dagster import DagsterRunStatus

    from fieldledger.instance import get_instance

    instance = get_instance()
    cancelled, running = [], []
    for day, run_id in runs:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status.value in FINISHED:
            continue
        if run.status == DagsterRunStatus.QUEUED and instance.run_coordinator.cancel_run(run_id):
            cancelled.append(day)
        else:
            running.append(day)
    return cancelled, running
