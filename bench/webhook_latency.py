"""Benchmark: webhook-to-ledger latency through the full stack (bench/fullstack.py: embedded
PostgreSQL, simulators, receiver, Dagster daemon as separate processes): the ServiceTitan simulator
emits invoice.created -> signed webhook -> receiver -> inbox -> sensor -> queued run -> posting ->
the document in Acumatica (cascade-hvac) and Vantagepoint (summit-mechanical).

Before measuring, the stack is brought to where a running system is: today synced, and one catch-up
(the seed's last hour of changes touches earlier days, which a first catch-up tick inside the
measurement would otherwise sync in front of the events). Invoices are created one at a time per connection through the simulator's live endpoint; each
event's latency is split where the time goes:

- receiver: emitted -> stored in the inbox (inbox.received_at; includes the simulator's delivery)
- sensor wait: stored -> the run that posted it was created (0 when it joined a run already queued)
- run start: run created (or stored, if later) -> that run's erp_postings step started
  (details split it: queued for the connection's single run slot, then process start, extract, map)
- posting: erp_postings started -> the ERP answered the post (the audit row of the posting, written
  after the ERP committed the document: from then on it is readable through the ERP's API)

    python -m bench.webhook_latency [--quick] [--json PATH]
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import httpx

from bench.fullstack import FullStack
from bench.report import figure, percentile, rss_figure, scenario, standalone
from bench.rss import RssSampler

TARGET_P95_S = 10.0
INTERVAL_S = 0.6  # between invoices, per connection
ERPS = {"cascade-hvac": "Acumatica", "summit-mechanical": "Vantagepoint"}
SEGMENTS = ("receiver", "sensor wait", "run start", "posting")
DETAIL = ("queued", "launch", "extract+map")


class Emitter(threading.Thread):
    """Creates ``events`` invoices per connection through the ServiceTitan simulator, alternating
    connections, one pair every ``interval`` seconds; records (connection, ST invoice id) -> emit time."""

    def __init__(self, st_url: str, tenants: dict[str, int], events: int, interval: float):
        super().__init__(daemon=True, name="emitter")
        self.st_url, self.tenants, self.events, self.interval = st_url, tenants, events, interval
        self.emitted: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        with httpx.Client(base_url=self.st_url, timeout=30) as st:
            next_at = time.monotonic()
            for _ in range(self.events):
                for name, tenant in self.tenants.items():
                    at = time.time()
                    body = {"count": 1, "tenant": tenant, "eventTypes": ["invoice.created"]}
                    for e in st.post("/_sim/live/tick", json=body).json()["events"]:
                        if e["eventType"] != "invoice.created":
                            continue
                        rec = st.get(f"/_sim/records/{tenant}/invoices/{e['id']}").json()["record"]
                        if rec["total"] not in ("0.00", "-0.00"):  # zero invoices are not posted
                            self.emitted[(name, str(e["id"]))] = at
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))


def _posted(store) -> dict[tuple[str, str], tuple[float, str]]:
    """(connection, ST invoice id) -> (time the ERP answered the post, run id)."""
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT connection, source_id, min(at) AS at, (array_agg(run_id ORDER BY at))[1] AS run_id FROM audit "
            "WHERE source_type = 'invoice' AND step = 'posted' GROUP BY 1, 2").fetchall()
    return {(r["connection"], r["source_id"]): (r["at"].timestamp(), r["run_id"]) for r in rows}


def _received(store) -> dict[tuple[str, str], float]:
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT connection, convert_from(body, 'UTF8')::jsonb->'data'->>'id' AS id, min(received_at) AS at "
            "FROM inbox WHERE event_type = 'invoice.created' GROUP BY 1, 2").fetchall()
    return {(r["connection"], r["id"]): r["at"].timestamp() for r in rows}


def _run_times(instance) -> dict[str, dict]:
    """Every run of the stack: its reason, and when it was created, dequeued (its connection's slot
    came free), started (the run process was up), began posting (erp_postings step start), ended."""
    from dagster import DagsterEventType

    kinds = {DagsterEventType.RUN_STARTING: "dequeued", DagsterEventType.RUN_START: "started",
             DagsterEventType.STEP_START: "posting"}
    out = {}
    for record in instance.get_run_records():
        steps: dict[str, float] = {}
        for e in instance.all_logs(record.dagster_run.run_id, of_type={DagsterEventType.STEP_START,
                                                                       DagsterEventType.STEP_SUCCESS}):
            if e.step_key:
                sign = -1 if e.dagster_event_type == DagsterEventType.STEP_START else 1
                steps[e.step_key] = steps.get(e.step_key, 0.0) + sign * e.timestamp
        times: dict = {"created": record.create_timestamp.timestamp(), "ended": record.end_time,
                       "reason": record.dagster_run.tags.get("fieldledger/reason"),
                       "connection": record.dagster_run.tags.get("fieldledger/connection"),
                       "partition": record.dagster_run.tags.get("dagster/partition"), "steps": steps}
        for kind, name in kinds.items():
            for e in instance.all_logs(record.dagster_run.run_id, of_type=kind):
                if kind != DagsterEventType.STEP_START or e.step_key == "erp_postings":
                    times.setdefault(name, e.timestamp)
        out[record.dagster_run.run_id] = times
    return out


def measure(events: int, interval: float, timeout: float) -> dict:
    stack = FullStack(keep_home=bool(os.environ.get("FL_BENCH_KEEP_HOME")))  # keep its logs to read afterwards
    sampler = RssSampler(stack.pgdata)
    stack.start(daemon=False)
    try:
        sampler.start()
        from tests.pipeline.runs import run_partitions  # in this process: the daemon is not up yet

        for name in ERPS:  # today's baseline, as a running system has it
            run_partitions(name, [datetime.now(UTC).date()], "bench-baseline")
        # ... and caught up: the seed's last hour of changes touches earlier days too, and a first
        # catch-up tick inside the measurement would sync those whole days in front of the events
        baseline = stack.execute_requests(stack.catch_up_requests())
        stack.start_daemon()
        time.sleep(8)  # the daemon loads the code location and starts its sensors
        emitter = Emitter(stack.info["servicetitan"]["base_url"], stack.tenants(), events, interval)
        emitter.start()
        deadline = time.time() + timeout
        posted: dict = {}
        while time.time() < deadline:
            posted = _posted(stack.store)
            if not emitter.is_alive() and all(k in posted for k in emitter.emitted):
                break
            time.sleep(0.5)
        emitter.join(5)
        received = _received(stack.store)
        runs = _run_times(stack.instance())
        processes = stack.largest_rss_mib()
    finally:
        try:
            peak_rss, peak_cmd = sampler.stop()
        finally:
            stack.stop()
    per_erp = {}
    for name in ERPS:
        rows = []
        for key, emit in emitter.emitted.items():
            if key[0] != name or key not in posted or key not in received:
                continue
            done, run_id = posted[key]
            run = runs.get(run_id) or {}
            got = received[key]
            launched = max(got, run.get("created") or got)
            begin = run.get("posting") or launched
            dequeued = max(launched, run.get("dequeued") or launched)
            started = max(dequeued, run.get("started") or dequeued)
            rows.append({"run_reason": run.get("reason"), "emitted_s": emit, "total": done - emit, "receiver": got - emit, "sensor wait": launched - got,
                         "run start": begin - launched, "posting": done - begin,
                         # run start, split: waiting for the connection's run slot, process start, extract + map
                         "queued": dequeued - launched, "launch": started - dequeued, "extract+map": begin - started,
                         "created_before_receipt": (run.get("created") or got) < got})
        missing = sum(1 for k in emitter.emitted if k[0] == name and k not in posted)
        totals = [r["total"] for r in rows]
        mean_total = sum(totals) / len(totals) if totals else 0.0
        per_erp[name] = {
            "events": len(rows), "missing": missing, "runs": len({posted[k][1] for k in emitter.emitted
                                                                   if k[0] == name and k in posted}),
            "p50": percentile(totals, 50), "p95": percentile(totals, 95), "p99": percentile(totals, 99),
            "max": max(totals, default=None),
            "share": {s: round(sum(r[s] for r in rows) / len(rows) / mean_total, 3) if rows and mean_total else None
                      for s in SEGMENTS},
            "mean_seconds": {s: round(sum(r[s] for r in rows) / len(rows), 3) if rows else None
                             for s in (*SEGMENTS, *DETAIL)},
            "p95_seconds": {s: percentile([r[s] for r in rows], 95) for s in (*SEGMENTS, *DETAIL)},
            "joined_a_queued_run": sum(r["created_before_receipt"] for r in rows),
            "slowest": [{"emitted": datetime.fromtimestamp(r["emitted_s"], UTC).isoformat(timespec="seconds"),
                         "seconds": round(r["total"], 1), "run_reason": r["run_reason"]}
                        for r in sorted(rows, key=lambda r: -r["total"])[:15]],
        }
    runs_by_reason: dict[str, int] = {}
    for r in runs.values():
        key = f"{r['connection']}:{r['reason']}"
        runs_by_reason[key] = runs_by_reason.get(key, 0) + 1
    run_seconds = sorted(r["ended"] - r["started"] for r in runs.values() if r.get("ended") and r.get("started"))
    t0 = min((r["created"] for r in runs.values()), default=0.0)
    webhook_runs = [r for r in runs.values() if r["reason"] == "webhook" and r.get("ended") and r.get("started")]
    # where a webhook run holds its connection's slot: each step's median seconds, and the rest
    step_names = sorted({k for r in webhook_runs for k in r["steps"]})
    slot_seconds = {k: percentile([r["steps"][k] for r in webhook_runs if k in r["steps"]], 50) for k in step_names}
    slot_seconds["run (start to end)"] = percentile([r["ended"] - r["started"] for r in webhook_runs], 50)
    slot_seconds["launch (dequeued to start)"] = percentile(
        [r["started"] - r["dequeued"] for r in webhook_runs if r.get("dequeued")], 50)
    # every run other than the webhook runs: what it was for and when it held its connection's slot
    def at(value):
        return value and round(value - t0, 1)

    # every run: what it was for and when it held its connection's slot (seconds since the first run)
    timeline = sorted(({"connection": r["connection"], "reason": r["reason"], "partition": r["partition"],
                        "created_s": at(r["created"]), "dequeued_s": at(r.get("dequeued")),
                        "started_s": at(r.get("started")), "ended_s": at(r.get("ended"))} for r in runs.values()),
                      key=lambda r: r["created_s"])
    background = [r for r in timeline if r["reason"] != "webhook"]
    return {"events_per_connection": events, "interval_seconds": interval, "per_erp": per_erp,
            "runs_by_connection_and_reason": runs_by_reason, "background_runs": background,
            "caught_up_before_measuring": sorted(baseline), "run_timeline": timeline, "webhook_run_seconds_p50": slot_seconds,
            "run_seconds_p50": percentile(run_seconds, 50), "run_seconds_max": max(run_seconds, default=None),
            "process_rss_mib": processes, "peak_rss": peak_rss, "largest_process": peak_cmd}


def run(quick: bool) -> dict:
    r = measure(20 if quick else 300, INTERVAL_S, 240 if quick else 900)
    figures = []
    for name, erp in ERPS.items():
        e = r["per_erp"][name]
        share = ", ".join(f"{s} {e['share'][s]:.0%}" for s in SEGMENTS if e["share"][s] is not None)
        figures += [
            figure(f"{erp}: p50 webhook to ledger", e["p50"] and round(e["p50"], 2), "s"),
            figure(f"{erp}: p95 webhook to ledger", e["p95"] and round(e["p95"], 2), "s", limit=TARGET_P95_S,
                   target=("<=", 1.0), note=f"{e['events']} events; mean time share: {share}"),
            figure(f"{erp}: p99 webhook to ledger", e["p99"] and round(e["p99"], 2), "s"),
            figure(f"{erp}: events not posted", e["missing"], "", target=("<=", 0)),
        ]
        figures += [figure(f"{erp}: share of time in {s}", e["share"][s], "") for s in SEGMENTS]
    figures.append(rss_figure("largest stack process peak RSS", r["peak_rss"]))
    return scenario(f"4 Webhook to ledger ({r['events_per_connection']} events per ERP)", figures, r)


if __name__ == "__main__":
    standalone(run, __doc__)
