"""Every sync goes through the instance's run queue: `fieldledger sync` submits its runs and a
real `dagster-daemon run` (a subprocess on the stack's instance) starts them; a run with no
fieldledger tags (the UI's launchpad) still waits for its connection's run in progress; the pools
exist before the first run. Order matters in this module: the first tests run before the daemon
starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from fieldledger import settings
from fieldledger.instance import PROJECT_ROOT, get_instance
from tests.pipeline.source import day_counts, days_holding

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"
POOLS = {"erp_api", "servicetitan_api"}


def fieldledger(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "fieldledger"), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), cwd=PROJECT_ROOT)


def runs_of(connection: str, reason: str | None = None) -> list:
    from dagster import RunsFilter

    tags = {"dagster/partition/connection": connection} | ({"fieldledger/reason": reason} if reason else {})
    return list(reversed(get_instance().get_runs(RunsFilter(job_name="sync", tags=tags))))


def enqueued(run_id: str) -> bool:
    """The run went through the queue (execute_in_process never enqueues)."""
    from dagster import DagsterEventType

    records = get_instance().get_records_for_run(run_id, of_type=DagsterEventType.RUN_ENQUEUED).records
    return bool(records)


def test_sync_without_a_daemon_says_what_to_start(stack):
    get_instance()  # the stack's instance, no daemon on it yet
    day = days_holding(stack.info, CONNECTION)[0]
    done = fieldledger("sync", "--connection", CONNECTION, "--start", str(day), "--end", str(day), timeout=180)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "dagster-daemon run" in done.stderr + done.stdout
    assert runs_of(CONNECTION) == []  # nothing ran in the CLI's process, nothing waits in the queue


def test_paused_connection_is_refused_with_how_to_unpause(stack):
    path = settings.connections_dir() / f"{CONNECTION}.yaml"
    original = path.read_text()
    path.write_text(original + "\npaused: true\n")
    try:
        day = days_holding(stack.info, CONNECTION)[0]
        done = fieldledger("sync", "--connection", CONNECTION, "--start", str(day), "--end", str(day), timeout=180)
    finally:
        path.write_text(original)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "paused" in out and "paused: false" in out
    assert runs_of(CONNECTION) == []


@pytest.fixture(scope="module")
def daemon(stack):
    """`dagster-daemon run` on the stack's instance, as the demo starts it; up once its queue
    daemon's heartbeat is in the instance."""
    from fieldledger.instance import prepare_environment
    from fieldledger.operations import NoDaemon, check_daemon

    env = {**os.environ, **prepare_environment()}
    log = open(stack.home / "daemon.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w",
                             str(PROJECT_ROOT / "workspace.yaml")], stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=PROJECT_ROOT, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            check_daemon(get_instance())
            break
        except NoDaemon:
            assert proc.poll() is None, (stack.home / "daemon.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (stack.home / "daemon.log").read_text()[-3000:]
            time.sleep(1)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_pools_exist_before_the_first_run(stack, daemon):
    """Runs never create a pool (two at once fail one on the pool's unique key): the set-up
    does, before the first run is submitted."""
    from fieldledger.operations import follow_runs, submit_partitions

    instance = get_instance()
    assert instance.get_runs() == [] and not POOLS & instance.event_log_storage.get_concurrency_keys()
    days = {c: days_holding(stack.info, c) for c in ("cascade-hvac", "summit-mechanical")}
    submitted = {c: submit_partitions(c, d, "test-pools") for c, d in days.items()}
    # no run has started yet (the daemon dequeues each second and a run takes seconds to launch)
    assert POOLS <= instance.event_log_storage.get_concurrency_keys()
    for connection, runs in submitted.items():
        outcome = follow_runs(runs, connection)
        assert outcome.failed_runs == []
    for runs in submitted.values():
        for _, run_id in runs:
            assert "UniqueViolation" not in json.dumps([str(e.dagster_event) for e in
                                                        instance.all_logs(run_id)])


def test_cli_sync_submits_two_days_to_the_queue_and_follows_them(stack, daemon):
    day = days_holding(stack.info, CONNECTION, back=(3, 28))[0]
    done = fieldledger("sync", "--connection", CONNECTION, "--start", str(day), "--end", str(day + timedelta(days=1)))
    out = done.stdout + done.stderr
    assert "2 runs, 0 failed runs" in out, out
    runs = runs_of(CONNECTION, "cli-sync")
    assert sorted(r.tags["dagster/partition/day"] for r in runs) == [str(day), str(day + timedelta(days=1))]
    assert all(r.is_success for r in runs)
    assert all(enqueued(r.run_id) for r in runs), "the runs did not go through the run queue"
    posted = stack.store.records(CONNECTION, statuses=["posted"], business_date=day)
    assert posted, f"nothing posted for {day}"


def test_a_run_without_fieldledger_tags_waits_for_its_connections_run(stack, daemon):
    """As the UI's launchpad starts one: only the partition's tags. Two such runs of one
    connection, submitted together, never overlap."""
    from fieldledger.operations import follow_runs, submit_partitions

    days = days_holding(stack.info, "summit-mechanical", 2, back=(3, 28))
    runs = submit_partitions("summit-mechanical", days, "ui", tags={})
    assert all("fieldledger/connection" not in get_instance().get_run_by_id(r).tags for _, r in runs)
    assert follow_runs(runs, "summit-mechanical").failed_runs == []
    first, second = sorted((get_instance().get_run_record_by_id(r) for _, r in runs), key=lambda rec: rec.start_time)
    assert second.start_time >= first.end_time, (
        f"runs of one connection overlapped: {first.dagster_run.run_id} ended {first.end_time}, "
        f"{second.dagster_run.run_id} started {second.start_time}")


def test_ctrl_c_cancels_the_queued_runs_and_the_printed_command_syncs_them(stack, daemon):
    """Ctrl-C stops following: queued runs are cancelled, a run in progress finishes, and the
    command printed for the unfinished days syncs them (before, `replay --failed` found nothing)."""
    import re

    first = days_holding(stack.info, "summit-mechanical", back=(6, 28))[0]
    days = [first + timedelta(days=i) for i in range(4)]  # a run each, the first holding records
    before = {r.run_id for r in runs_of("summit-mechanical")}
    cmd = [str(Path(sys.executable).parent / "fieldledger"), "sync", "--connection", "summit-mechanical",
           "--start", str(days[0]), "--end", str(days[-1])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
                            cwd=PROJECT_ROOT)
    total = (days[-1] - days[0]).days + 1
    deadline = time.monotonic() + 180
    while len([r for r in runs_of("summit-mechanical", "cli-sync") if r.run_id not in before]) < total:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    mine = [r for r in runs_of("summit-mechanical", "cli-sync") if r.run_id not in before]
    assert any(r.status.value == "CANCELED" for r in mine), out  # one run per connection: the rest waited
    again = re.search(r"fieldledger (sync --connection summit-mechanical --start \S+ --end \S+)", out)
    assert again, out
    done = fieldledger(*again.group(1).split())
    assert done.returncode in (0, 1) and "0 failed runs" in done.stdout, done.stdout + done.stderr
    synced = {r.tags["dagster/partition/day"] for r in runs_of("summit-mechanical") if r.is_success}
    assert {str(days[0] + timedelta(days=i)) for i in range(total)} <= synced


def test_demo_backfill_queues_only_days_without_a_run(stack, daemon):
    """A restarted demo does not sync its window again: the second call queues nothing."""
    from fieldledger.demo import DEMO_CONNECTIONS, queue_backfill
    from fieldledger.operations import days_between, days_covered, follow_runs

    # a seeded day with invoices whose two-day window no earlier test of this module has synced
    # (asked of the instance: which day the seed favours depends on the date the suite runs)
    untouched = [d for d in sorted(day_counts(stack.info, CONNECTION, back=(3, 28)), reverse=True)
                 if not any(days_covered(c, days_between(d - timedelta(days=1), d)) for c in DEMO_CONNECTIONS)]
    assert untouched, "every seeded day 3-28 days back has a run already"
    today = untouched[0]
    queue_backfill(2, today)
    queued = {c: [(None, r.run_id) for r in runs_of(c, "backfill")] for c in DEMO_CONNECTIONS}
    assert {c: len(runs) for c, runs in queued.items()} == {c: 2 for c in DEMO_CONNECTIONS}
    for connection, runs in queued.items():
        assert follow_runs(runs, connection).failed_runs == []
    again = queue_backfill(2, today)
    assert again == "; ".join(f"{c} 0 day(s) queued, 2 done before" for c in DEMO_CONNECTIONS), again
    assert {c: [(None, r.run_id) for r in runs_of(c, "backfill")] for c in DEMO_CONNECTIONS} == queued
