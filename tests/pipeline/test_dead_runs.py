"""A run whose worker process is SIGKILLed mid-posting (issue 22, break 6), on a real Dagster
instance (PostgreSQL storage, the project's dagster.yaml) with the simulators over real sockets:
the run must end FAILURE, its `erp_api` pool slot and record claims must be freed, and the next
run that needs the pool must get it. Before the fix the run stayed STARTED for ever and the next
run's posting step waited "blocked by limit for pool erp_api" without end.

The worker is a process running the sync job in process (`bench.fullstack execute`);
the sweeper is evaluated the way the daemon evaluates a sensor. Every wait polls against a generous
deadline: the machine may be loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from fieldledger.instance import get_instance
from pipelines.resources import FieldledgerResource
from pipelines.run_health import WORKER_TAG, Worker, dead_run_sweeper
from tests.pipeline.source import days_holding

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"


def wait_for(what: str, check, timeout: float = 300.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)


def sync(day) -> subprocess.Popen:
    """A worker process running one day's sync job in process on the shared instance (what a CLI
    sync or the daemon's run worker does), in its own process group."""
    from pipelines.jobs import run_tags

    items = [[f"{CONNECTION}|{day}", run_tags(CONNECTION, "cli-sync")]]
    return subprocess.Popen([sys.executable, "-m", "bench.fullstack", "execute", json.dumps(items)],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)


def erp_slot_holders(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info("erp_api").claimed_slots}


def sync_runs(instance, day) -> list[dg.DagsterRun]:
    return instance.get_runs(filters=dg.RunsFilter(job_name="sync", tags={"dagster/partition": f"{CONNECTION}|{day}"}))


def claims_of(store, run_id: str) -> int:
    with store.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM document_claims WHERE claimed_by LIKE %s",
                            (f"%:run-{run_id}",)).fetchone()["n"]


def sweep(instance) -> None:
    resource = FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])
    with dg.build_sensor_context(instance=instance, resources={"fieldledger": resource}) as ctx:
        dead_run_sweeper(ctx)


def test_a_killed_worker_fails_its_run_and_frees_its_pool(stack):
    instance = get_instance()
    # one erp_api slot (an Acumatica trial tier): the dead run's slot alone blocks every later run
    instance.event_log_storage.set_concurrency_slots("erp_api", 1)
    day = days_holding(stack.info, CONNECTION, 1, minimum=5)[0]
    acumatica = httpx.Client(base_url=stack.sim("acumatica").base_url, timeout=30)
    acumatica.put("/_sim/faults", json={"profile": "", "set": {"latency_ms": 300}}).raise_for_status()  # a slow ERP
    worker = sync(day)
    try:
        def posting():
            assert worker.poll() is None, worker.stdout.read().decode(errors="replace")[-3000:]  # ended too soon
            return next((r for r in sync_runs(instance, day) if r.run_id in erp_slot_holders(instance)
                         and claims_of(stack.store, r.run_id)), None)

        run = wait_for("the sync run to post while holding the erp_api slot", posting)
        tagged = Worker.parse(instance.get_run_by_id(run.run_id).tags.get(WORKER_TAG))
        assert tagged is not None and tagged.pid == worker.pid, "the run names its worker process"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(60)
        acumatica.put("/_sim/faults", json={"profile": "", "set": {"latency_ms": 0}}).raise_for_status()
        acumatica.close()
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # nothing else ends it
    assert run.run_id in erp_slot_holders(instance)

    def swept():
        sweep(instance)
        return instance.get_run_by_id(run.run_id).is_finished

    wait_for("the sweeper to fail the dead run", swept, timeout=120, every=1.0)
    ended = instance.get_run_by_id(run.run_id)
    assert ended.status == dg.DagsterRunStatus.FAILURE
    assert run.run_id not in erp_slot_holders(instance), "the dead run's pool slot was freed"
    assert claims_of(stack.store, run.run_id) == 0, "the dead worker's record claims were released"
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure and f"pid {worker.pid}" in failure[-1].message

    # the next run of the pool (the same day again, as an operator replays it) gets the slot and ends
    before = {r.run_id for r in sync_runs(instance, day)}
    replay = sync(day)
    try:
        replay.wait(600)
    finally:
        if replay.poll() is None:
            os.killpg(replay.pid, signal.SIGKILL)
            replay.wait(60)
    output = replay.stdout.read().decode(errors="replace")
    after = [r for r in sync_runs(instance, day) if r.run_id not in before]
    assert len(after) == 1 and after[0].status == dg.DagsterRunStatus.SUCCESS, output[-3000:]
