"""Benchmark: backfill a whole year of one Acumatica connection (Cascade HVAC, the demo seed) through
Dagster, as an operator does from the UI: one asset backfill over the connection's days, whose runs
the daemon queues and launches (one run per connection at a time, dagster.yaml).

Figures: wall time from submitting the backfill to the last run finishing vs the ERP-bound minimum
(documents posted / the license tier's requests per minute, in wall time: the simulator's clock runs
TIME_FACTOR times faster, so the tier's per-minute budget is spent TIME_FACTOR times faster too), runs
launched, and the peak RSS of the largest process of the stack (every descendant of this process and
PostgreSQL, sampled twice a second with psutil).

Also: license-counted requests against the floor of Acumatica's workflow (a PUT per party, a PUT and
a release action per invoice, payment and bill), and a projection of the wall time at the real clock
(the ERP's share x TIME_FACTOR + the measured time not spent on the license), marked as a projection.

A day-run costs ~7 s here (~2.5 s launching its process, ~1.5 s of step overhead, ~3 s of ERP
requests), one run at a time per connection, so the whole year takes ~45 minutes: full mode
backfills the most recent FL_BENCH_BACKFILL_DAYS days (default 30) and extrapolates the year;
FL_BENCH_BACKFILL_DAYS=365 runs the whole year.

    python -m bench.backfill_year [--quick] [--json PATH]
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from bench.fullstack import FullStack
from bench.report import figure, rss_figure, scenario, standalone
from bench.rss import RssSampler

CONNECTION = "cascade-hvac"
TIER = "large"
TIME_FACTOR = 20.0


def submit_backfill(instance, connection: str, days: list) -> str:
    """One asset backfill of the sync assets over the connection's days: what the UI's
    'Materialize selected' over a partition range submits."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from pipelines.definitions import defs
    from pipelines.jobs import SYNC_SELECTION, run_tags
    from pipelines.partitions import partition_key

    graph = defs.resolve_asset_graph()
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id, asset_graph=graph, partition_names=[str(partition_key(connection, d)) for d in days],
        asset_selection=sorted(SYNC_SELECTION.resolve(graph)), backfill_timestamp=time.time(),
        tags=run_tags(connection, "cli-sync"), dynamic_partitions_store=instance, all_partitions=False,
        title=f"bench: {len(days)} days of {connection}", description=None, run_config=None)
    instance.add_backfill(backfill)
    return backfill_id


def wait_for_backfill(instance, backfill_id: str, timeout: float) -> tuple[list, float]:
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backfill = instance.get_backfill(backfill_id)
        if backfill.status not in (BulkActionStatus.REQUESTED,):
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            if all(r.is_finished for r in runs):
                return runs, time.monotonic()
        time.sleep(1.0)
    raise TimeoutError(f"backfill {backfill_id} not done after {timeout:.0f} s")


def run_timeline(instance, run_ids: list[str]) -> dict:
    """Median seconds per run: waiting in the queue, launching its process, executing."""
    from dagster import DagsterEventType

    from bench.report import percentile

    queued, launch, execute = [], [], []
    for run_id in run_ids:
        record = instance.get_run_record_by_id(run_id)
        events = {}
        for kind in (DagsterEventType.RUN_STARTING, DagsterEventType.RUN_START):
            logs = instance.all_logs(run_id, of_type=kind)
            if logs:
                events[kind] = logs[0].timestamp
        created = record.create_timestamp.timestamp()
        dequeued, started = events.get(DagsterEventType.RUN_STARTING), events.get(DagsterEventType.RUN_START)
        if dequeued and started and record.end_time:
            queued.append(dequeued - created)
            launch.append(started - dequeued)
            execute.append(record.end_time - started)
    return {"run_queued_seconds_p50": percentile(queued, 50), "run_launch_seconds_p50": percentile(launch, 50),
            "run_execute_seconds_p50": percentile(execute, 50), "run_execute_seconds_max": max(execute, default=None)}


def run(quick: bool) -> dict:
    from simulators.acumatica.license import tier_from_options

    tier = tier_from_options({"tier": TIER})
    n_days = 3 if quick else int(os.environ.get("FL_BENCH_BACKFILL_DAYS", "30"))
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n_days - 1 - i) for i in range(n_days)]
    stack = FullStack(time_factor=TIME_FACTOR, sim_options=(f"tier={TIER}", f"seats={tier.seats}"))
    sampler = RssSampler(stack.pgdata)
    stack.start(daemon=True)
    try:
        sampler.start()
        instance = stack.instance()
        started = time.monotonic()
        backfill_id = submit_backfill(instance, CONNECTION, days)
        runs, finished = wait_for_backfill(instance, backfill_id, timeout=max(1500, n_days * 60))
        wall = finished - started
        with stack.store.transaction() as conn:
            posted = {r["source_type"]: r["n"] for r in conn.execute(
                "SELECT source_type, count(*) AS n FROM records WHERE connection = %s AND status = 'posted' "
                "GROUP BY 1", (CONNECTION,))}
            statuses = {r["status"]: r["n"] for r in conn.execute(
                "SELECT status, count(*) AS n FROM records WHERE connection = %s GROUP BY 1", (CONNECTION,))}
        acu = stack.sim_stats("acumatica")
        timeline = run_timeline(instance, [r.run_id for r in runs])
        other_runs = len(instance.get_run_records()) - len(runs)
    finally:
        try:
            peak_rss, peak_cmd = sampler.stop()
        finally:
            stack.stop()
    documents = sum(posted.values())
    erp_bound_seconds = documents / (tier.per_minute * TIME_FACTOR) * 60
    # what the license really meters: every /entity request (look-ups, PUTs, release actions and polls)
    entity_requests = acu.get("license", {}).get("processed", 0)
    request_bound_seconds = entity_requests / (tier.per_minute * TIME_FACTOR) * 60
    failed_runs = [r.run_id for r in runs if r.status.value != "SUCCESS"]
    # The floor of Acumatica's workflow: a party is one PUT; an invoice, payment or bill is a PUT plus
    # its release action (documents reach the ledger only when released; no other call releases them).
    parties = posted.get("customer", 0) + posted.get("vendor", 0)
    floor_requests = parties + 2 * (documents - parties)
    # Dagster's per-run cost (queue, process start, steps) is wall time; the ERP's share shrinks with
    # the simulator's clock. At the real clock the ERP's share is TIME_FACTOR times longer:
    overhead_seconds = max(0.0, wall - request_bound_seconds)
    projected_real = request_bound_seconds * TIME_FACTOR + overhead_seconds
    figures = [
        figure("wall time vs ERP-bound minimum", round(wall, 1), "s", limit=round(erp_bound_seconds, 1),
               target=("<=", 1.2), note=f"{documents} documents / {tier.per_minute} req/min x {TIME_FACTOR:g}"),
        figure("wall time vs ERP requests / tier rate", round(wall, 1), "s", limit=round(request_bound_seconds, 1),
               note=f"{entity_requests} license-counted requests: {entity_requests / max(1, documents):.2f} per document"),
        figure("license-counted requests vs the workflow's floor", entity_requests, "req", limit=floor_requests,
               note=f"floor: 1 per party, 2 per released document (PUT + release) = {floor_requests}"),
        figure("projected wall at the real clock vs ERP-bound minimum", round(projected_real), "s",
               limit=round(erp_bound_seconds * TIME_FACTOR),
               note=f"projection, not measured: ERP time x {TIME_FACTOR:g} + the measured {overhead_seconds:.0f} s "
                    "not spent waiting on the license"),
        figure("runs launched", len(runs), "runs", limit=n_days, note="one per day partition"),
        figure("seconds per day-run (wall / days)", round(wall / n_days, 1), "s", limit=round(erp_bound_seconds / n_days, 1),
               note=f"a year: ~{wall / n_days * 365 / 60:.0f} min extrapolated"),
        figure("failed runs", len(failed_runs), "runs", target=("<=", 0)),
        figure("documents posted", documents, "doc", note=", ".join(f"{n} {t}" for t, n in sorted(posted.items()))),
        rss_figure("largest process peak RSS", peak_rss),
    ]
    details = {"days": n_days, "first_day": str(days[0]), "tier": TIER, "per_minute": tier.per_minute,
               "time_factor": TIME_FACTOR, "posted": posted, "record_statuses": statuses,
               "largest_process": peak_cmd, "acumatica_requests": acu.get("requests"),
               "acumatica_429": acu.get("throttled_429"), "acumatica_delayed": acu.get("license", {}).get("delayed"),
               "acumatica_entity_requests": acu.get("license", {}).get("processed"),
               "entity_requests_per_document": round(acu.get("license", {}).get("processed", 0) / max(1, documents), 2),
               "floor_requests": floor_requests, "overhead_seconds": round(overhead_seconds, 1),
               "projected_real_clock_seconds": round(projected_real),
               "seconds_per_day": round(wall / n_days, 1), "year_wall_seconds_extrapolated": round(wall / n_days * 365),
               "year_erp_bound_seconds_extrapolated": round(erp_bound_seconds / n_days * 365),
               "runs_launched_by_others": other_runs, **timeline, "failed_runs": failed_runs[:10]}
    return scenario(f"6 Backfill ({n_days} days, Acumatica {TIER} tier)", figures, details)


if __name__ == "__main__":
    standalone(run, __doc__)
