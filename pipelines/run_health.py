"""Runs whose worker process died: failed, their pool slots and record claims freed.

Dagster's run monitoring cannot see a dead worker under the DefaultRunLauncher (it offers no
worker health check): a run worker SIGKILLed while its code server was gone, or a `fieldledger
sync` process killed mid-run (it runs in process), leaves its run STARTED for ever, holding its
`erp_api` / `servicetitan_api` pool slots, and every later run's step waits "blocked by limit for
pool". So each run worker names itself on its run (tag ``fieldledger/worker``: host, pid and the
process's start time, which tells a recycled pid apart), and a sensor fails the STARTED runs
whose worker on this host is gone. A worker on another host is left to that host's sweeper (and
to ``max_runtime_seconds`` in dagster.yaml)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from functools import cache

import dagster as dg
import psutil

from pipelines.resources import FieldledgerResource

WORKER_TAG = "fieldledger/worker"
log = logging.getLogger(__name__)
_marked: set[str] = set()  # runs this process already named itself on


@cache
def worker_identity() -> str:
    """host:pid:start time of this process."""
    started = psutil.Process(os.getpid()).create_time()
    return f"{socket.gethostname()}:{os.getpid()}:{started:.2f}"


def mark_worker(instance, run_id: str | None) -> None:
    """Name this process as ``run_id``'s worker (once per run; resources set up outside a run pass None)."""
    if instance is None or not run_id or run_id in _marked:
        return
    instance.add_run_tags(run_id, {WORKER_TAG: worker_identity()})
    _marked.add(run_id)


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    started: float

    @classmethod
    def parse(cls, tag: str | None) -> Worker | None:
        try:
            host, pid, started = (tag or "").rsplit(":", 2)
            return cls(host, int(pid), float(started))
        except ValueError:
            return None

    def gone(self) -> bool | None:
        """True when the process no longer runs (or its pid now belongs to a newer process); None
        when it is on another host, which this process cannot tell."""
        if self.host != socket.gethostname():
            return None
        try:
            proc = psutil.Process(self.pid)
            return abs(proc.create_time() - self.started) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:
            return False  # it exists, under another user: not ours to judge


def dead_runs(instance) -> list[tuple[dg.DagsterRun, Worker]]:
    """STARTED runs whose named worker on this host is gone."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    found = []
    for run in runs:
        worker = Worker.parse(run.tags.get(WORKER_TAG))
        if worker is not None and worker.gone():
            found.append((run, worker))
    return found


def fail_dead_run(instance, run: dg.DagsterRun, worker: Worker, store=None) -> bool:
    """Fail ``run`` (its worker is dead, so nothing can write after this), free its pool slots and
    its worker's record claims. False when the run had ended meanwhile."""
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.is_finished:
        return False
    instance.report_run_failed(current, (
        f"The run's worker process (pid {worker.pid} on {worker.host}) is gone: it was killed or crashed "
        "before the run ended. fieldledger marked the run failed and freed its pool slots and record "
        "claims; run retries start it again, and re-running its partition is safe (nothing posts twice)."))
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run.run_id)
    if store is not None:
        store.release_dead_claims()
    log.warning("run %s failed: its worker pid %d on %s is gone", run.run_id, worker.pid, worker.host)
    return True


@dg.sensor(minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Fails runs whose worker process died (SIGKILL, OOM, host crash of a CLI sync) and frees "
                       "their pool slots and record claims, so later runs are not blocked by their pools.")
def dead_run_sweeper(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    failed = [run.run_id for run, worker in dead_runs(context.instance)
              if fail_dead_run(context.instance, run, worker, fieldledger.store)]
    return dg.SkipReason(f"failed dead runs: {', '.join(failed)}" if failed else "every running run's worker is alive")
