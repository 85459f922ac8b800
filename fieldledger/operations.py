"""Operations the CLI offers on top of the pipeline: run partitions through Dagster on the same
instance the UI shows, replay failed records, summarise open failures."""

from __future__ import annotations

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


def run_partitions(connection: str, days: Iterable[date], reason: str,
                   on_done: Callable[[date, bool], None] | None = None, console_level: str = "WARNING") -> RunOutcome:
    """Materialize the sync job for each (connection, day), in this process, on the shared
    instance (runs appear in the UI like any other). ``console_level`` only quiets this process's
    terminal; every event still goes to the run's event log in the UI."""
    from fieldledger.instance import get_instance
    from pipelines.definitions import defs
    from pipelines.jobs import run_tags
    from pipelines.partitions import partition_key

    instance = get_instance()
    job = defs.resolve_job_def("sync")
    outcome = RunOutcome()
    for day in days:
        result = job.execute_in_process(partition_key=partition_key(connection, day), instance=instance,
                                        tags=run_tags(connection, reason), raise_on_error=False,
                                        run_config={"loggers": {"console": {"config": {"log_level": console_level}}}})
        outcome.runs += 1
        if not result.success:
            outcome.failed_runs.append(f"{connection} {day} (run {result.run_id})")
        if on_done:
            on_done(day, result.success)
    return outcome


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
