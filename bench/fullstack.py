"""The whole fieldledger stack as separate OS processes, in a temporary state folder: its own
embedded PostgreSQL, the three simulators (one process, with a fault profile), the webhook receiver
and the Dagster daemon (sensors, schedules, run queue, run workers) on one instance, with the demo
connections set up against the receiver.

The chaos test (tests/chaos) and the soak (bench/soak.py) drive it: they restart the receiver or
PostgreSQL, SIGKILL a run worker, change each simulator's faults, and read every log file the
processes wrote. The process that creates a ``FullStack`` works on it too (sync store, vault,
in-process runs), so ``start`` points this process's environment at the stack and ``stop`` puts
the old environment back: one stack per process at a time.

    python -m bench.fullstack [--seconds 60]   # start, print the stack, stop
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from fieldledger.demo import Processes, _bin, _wait_for, _wait_http
from simulators.runtime import free_port_block

CONNECTIONS = ("cascade-hvac", "summit-mechanical")
SIMULATORS = ("servicetitan", "acumatica", "vantagepoint")
SEAT_OPTIONS = ("tier=trial", "seats=8", "release_seconds=0.2")  # as the demo and the latency bench run them


@dataclass
class Activity:
    """Live ServiceTitan activity driven from outside the simulator (``/_sim/live/tick``), so that
    it can be stopped at a known moment: the simulator's own live thread cannot be."""

    st_url: str
    tenants: dict[str, int]
    per_second: float
    event_types: list[str] | None = None
    events: list[dict] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Activity:
        self._thread = threading.Thread(target=self._run, name="st-activity", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)

    def _run(self) -> None:
        names = sorted(self.tenants)
        interval = 1.0 / self.per_second
        with httpx.Client(base_url=self.st_url, timeout=30) as client:
            n = 0
            next_at = time.monotonic()
            while not self._stop.is_set():
                tenant = self.tenants[names[n % len(names)]]
                n += 1
                body = {"count": 1, "tenant": tenant}
                if self.event_types:
                    body["eventTypes"] = self.event_types
                try:
                    for event in client.post("/_sim/live/tick", json=body).json()["events"]:
                        self.events.append({**event, "at": datetime.now(UTC).isoformat()})
                except (httpx.HTTPError, ValueError, KeyError):
                    pass  # the simulator is a control endpoint; a hiccup only means one change fewer
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))


class FullStack:
    def __init__(self, home: Path | None = None, *, profile: str = "none", sim_options: tuple[str, ...] = (),
                 seed: int = 7, keep_home: bool = False, time_factor: float = 1.0):
        self.home = Path(home or tempfile.mkdtemp(prefix="fl-fullstack-")).resolve()
        self.keep_home = keep_home or home is not None
        self.log_dir = self.home / "logs"
        self.pgdata = self.home / "pg"
        self.info_file = self.home / "sim.json"
        self.profile = profile
        self.sim_options = SEAT_OPTIONS + tuple(sim_options)
        self.seed = seed
        self.time_factor = time_factor  # the simulators' clock speed (license windows are simulated time)
        self.procs = Processes(self.log_dir)
        self.receiver_port = 0
        self.port_base = 0
        self.info: dict = {}
        self.env: dict[str, str] = {}
        self._saved_env: dict[str, str] | None = None
        self.store = None
        self.events: list[tuple[float, str]] = []  # (time, what) of every disruption, for reports

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, daemon: bool = True) -> FullStack:
        from resources.database import start_embedded

        self.log_dir.mkdir(parents=True, exist_ok=True)
        server = start_embedded(self.pgdata)
        self.env = {
            "FIELDLEDGER_HOME": str(self.home),
            "FIELDLEDGER_DATABASE_URL": server.url("fieldledger"),
            "FIELDLEDGER_DAGSTER_DATABASE_URL": server.url("dagster"),
            "DAGSTER_HOME": str(self.home / "dagster"),
            "PYTHONUNBUFFERED": "1",
        }
        self._activate()
        try:
            self._start_processes(daemon)
        except BaseException:
            self.stop()
            raise
        return self

    def _activate(self) -> None:
        from fieldledger.instance import prepare_environment
        from resources.vault import create_key_file

        self._saved_env = dict(os.environ)
        os.environ.pop("FIELDLEDGER_MASTER_KEY", None)  # the key file in the state folder (rotate-key can rewrite it)
        os.environ.update(self.env)
        create_key_file()
        self.env.update(prepare_environment())

    def _start_processes(self, daemon: bool) -> None:
        from fieldledger.demo_setup import init_demo
        from resources.store import SyncStore
        from resources.vault import Vault

        self.port_base = free_port_block()
        self.receiver_port = self.port_base
        self.procs.start("simulators", [_bin("fieldledger"), "sim", "up", "--port-base", str(self.port_base),
                                        "--no-live", "--seed", str(self.seed), "--profile", self.profile,
                                        "--info-file", str(self.info_file), "--time-factor", str(self.time_factor),
                                        *[a for o in self.sim_options for a in ("--option", o)]], self.env)
        _wait_for(self.info_file, 180, "the simulators")
        self.info = json.loads(self.info_file.read_text())
        self._start_receiver()
        self.store = SyncStore.open(self.env["FIELDLEDGER_DATABASE_URL"])
        init_demo(self.info_file, Vault(self.store), self.receiver_url)
        if daemon:
            self.start_daemon()

    def start_daemon(self) -> None:
        from fieldledger.instance import PROJECT_ROOT

        self.procs.start("dagster-daemon", [_bin("dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
                         self.env)

    def stop(self) -> None:
        """Stop every process the stack started (and their descendants: code server, run workers),
        then PostgreSQL; put this process's environment back."""
        from resources.database import stop_embedded

        try:
            self._close_in_process()
            self.procs.stop_all()
            if (self.pgdata / "postmaster.pid").exists():
                stop_embedded(self.pgdata, mode="fast")
        finally:
            if self._saved_env is not None:
                os.environ.clear()
                os.environ.update(self._saved_env)
                self._saved_env = None
            if not self.keep_home:
                shutil.rmtree(self.home, ignore_errors=True)

    def _close_in_process(self) -> None:
        """Sign out of the ERPs and close pools this process opened (in-process runs reuse them)."""
        try:
            from pipelines.resources import _clients, _stores

            _clients.close_idle()
            for s in _stores.values():
                s.close()
            _stores.clear()
        except Exception:  # noqa: BLE001 - best effort: the simulators may already be gone
            pass
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> FullStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- parts ----------------------------------------------------------------------------------
    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def env_for_children(self) -> dict[str, str]:
        """The environment a command run against this stack needs (CLI commands, scripts)."""
        return {**os.environ, **self.env}

    def sim_url(self, name: str) -> str:
        """Root URL of a simulator (where its /_sim control endpoints live)."""
        return f"http://127.0.0.1:{self.port_base + 1 + SIMULATORS.index(name)}"

    def tenants(self) -> dict[str, int]:
        return {name: int(t["tenant"]) for name, t in self.info["servicetitan"]["tenants"].items()}

    def activity(self, per_second: float, event_types: list[str] | None = None) -> Activity:
        return Activity(self.info["servicetitan"]["base_url"], self.tenants(), per_second, event_types).start()

    def _start_receiver(self) -> None:
        self.procs.start("receiver", [_bin("fieldledger"), "receiver", "run", "--port", str(self.receiver_port)],
                         self.env)
        _wait_http(f"{self.receiver_url}/healthz", 60, "the receiver")

    def _stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 40) -> None:
        for n, proc in list(self.procs.children):
            if n != name:
                continue
            if proc.poll() is None:
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            self.procs.children.remove((n, proc))

    def restart_receiver(self, down_seconds: float = 0.0) -> float:
        """Stop the receiver (SIGTERM: in-flight deliveries finish) and start it on the same port;
        returns the seconds it could not take webhooks."""
        started = time.monotonic()
        self._stop_process("receiver")
        time.sleep(down_seconds)
        self._start_receiver()
        self.events.append((time.time(), "receiver restarted"))
        return time.monotonic() - started

    def restart_postgres(self, down_seconds: float = 2.0) -> float:
        """Stop PostgreSQL (fast: every connection is cut) and start it again on the same port;
        returns the seconds it was unavailable."""
        from resources.database import start_embedded, stop_embedded

        started = time.monotonic()
        stop_embedded(self.pgdata, mode="fast")
        time.sleep(down_seconds)
        start_embedded(self.pgdata)
        self.events.append((time.time(), "postgres restarted"))
        return time.monotonic() - started

    def set_faults(self, simulator: str, spec: str) -> dict:
        """Replace one simulator's fault profile (named profiles and key=value items, see simulators/faults.py)."""
        r = httpx.put(f"{self.sim_url(simulator)}/_sim/faults", json={"profile": spec}, timeout=10)
        r.raise_for_status()
        return r.json()

    def revoke_tokens(self) -> dict[str, int]:
        """Every simulator revokes every token it issued (a person revoking the app's access)."""
        paths = {"servicetitan": "/_sim/tokens/revoke", "acumatica": "/_sim/revoke-tokens",
                 "vantagepoint": "/_sim/revoke_tokens"}
        out = {}
        for name, path in paths.items():
            out[name] = httpx.post(self.sim_url(name) + path, json={}, timeout=10).json().get("revoked", 0)
        self.events.append((time.time(), f"tokens revoked {out}"))
        return out

    def sim_stats(self, name: str) -> dict:
        return httpx.get(f"{self.sim_url(name)}/_sim/stats", timeout=10).json()

    def faults_injected(self) -> dict[str, dict[str, int]]:
        """What each simulator injected, by kind (Acumatica counts fault-revoked tokens with its seats)."""
        out = {}
        for name in SIMULATORS:
            stats = self.sim_stats(name)
            out[name] = dict(stats.get("faults") or stats.get("faults_injected") or {})
        seats = httpx.get(f"{self.sim_url('acumatica')}/_sim/seats", timeout=10).json()
        if seats.get("revoked_by_fault"):
            out["acumatica"]["token_revoked"] = seats["revoked_by_fault"]
        return out

    def issued_tokens(self) -> list[str]:
        """Every access/refresh token and session id the simulators handed out."""
        tokens: list[str] = []
        for name in ("servicetitan", "vantagepoint"):
            r = httpx.get(f"{self.sim_url(name)}/_sim/tokens/issued", timeout=30)
            r.raise_for_status()
            tokens += r.json()["tokens"]
        seats = httpx.get(f"{self.sim_url('acumatica')}/_sim/seats", timeout=30)
        seats.raise_for_status()
        return tokens + seats.json()["issued_tokens"]

    # --- runs and their processes ---------------------------------------------------------------
    def instance(self):
        from fieldledger.instance import get_instance

        return get_instance()

    def run_worker_pid(self, run_id: str) -> int | None:
        """The pid of a run's worker process: the owner of its record claims (host:pid:run-<id>),
        else the pid Dagster logged when it started the run's process."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT claimed_by FROM records WHERE claimed_by LIKE %s LIMIT 1",
                               (f"%:run-{run_id}",)).fetchone()
        if row:
            return int(row["claimed_by"].split(":")[1])
        for record in self.instance().all_logs(run_id):
            match = re.search(r"\(pid: (\d+)\)", record.message or "")
            if match:
                return int(match.group(1))
        return None

    def kill_run(self, run_id: str, sig: int = signal.SIGKILL) -> int:
        pid = self.run_worker_pid(run_id)
        if pid is None:
            raise LookupError(f"no process found for run {run_id}")
        os.kill(pid, sig)
        self.events.append((time.time(), f"run {run_id} worker {pid} killed with signal {sig}"))
        return pid

    def posting_run(self) -> tuple[str, int] | None:
        """(run id, claimed record count) of a run that holds record claims right now (it is posting)."""
        host = socket.gethostname()
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT claimed_by, count(*) AS n FROM records WHERE claimed_until > now() AND claimed_by LIKE %s "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 1", (f"{host}:%:run-%",)).fetchone()
        if not row:
            return None
        return row["claimed_by"].split(":run-", 1)[1], row["n"]

    def active_runs(self) -> list:
        import dagster as dg

        return self.instance().get_runs(filters=dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))

    def wait_idle(self, timeout: float, settle: float = 6.0) -> bool:
        """Wait until no run is queued or in flight and the inbox is drained, for ``settle`` seconds."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            busy = bool(self.active_runs()) or self.inbox_depth() > 0
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                return True
            time.sleep(1.0)
        return False

    def inbox_depth(self) -> int:
        with self.store.transaction() as conn:
            return conn.execute("SELECT count(*) AS n FROM inbox WHERE state = 'pending'").fetchone()["n"]

    # --- catch-up ------------------------------------------------------------------------------
    def catch_up_requests(self) -> list:
        """The catch-up schedule's work, now: the run requests for every (connection, day) changed in
        ServiceTitan's export feeds since the stored continuation tokens (the tokens advance)."""
        from pipelines.resources import FieldledgerResource
        from pipelines.servicetitan.schedules import catch_up_requests

        resource = FieldledgerResource(database_url=self.env["FIELDLEDGER_DATABASE_URL"])
        return catch_up_requests(resource, datetime.now(UTC), self.instance())

    def execute_requests(self, requests) -> dict[str, bool]:
        """Run requested partitions as the daemon would (same job, partition key and tags), one
        process per connection so that the connections run side by side as they do under the
        daemon's queue; returns {partition key: success}."""
        by_connection: dict[str, list] = {}
        for r in requests:
            by_connection.setdefault(r.tags.get("fieldledger/connection", ""), []).append(
                [str(r.partition_key), dict(r.tags)])
        stamp = datetime.now(UTC).strftime("%H%M%S")
        procs = []
        for connection, items in by_connection.items():
            log = self.log_dir / f"catch-up-{stamp}-{connection}.log"  # searched like every other log
            with open(log, "wb") as out:
                procs.append((log, subprocess.Popen(
                    [sys.executable, "-m", "bench.fullstack", "execute", json.dumps(items)],
                    env=self.env_for_children(), stdout=out, stderr=subprocess.STDOUT,
                    cwd=Path(__file__).resolve().parent.parent)))
        results: dict[str, bool] = {}
        for log, proc in procs:
            proc.wait(timeout=1800)
            last = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
            results.update(json.loads(last[-1]) if last else {})
        for items in by_connection.values():  # a child that died reports nothing: its partitions failed
            for key, _ in items:
                results.setdefault(key, False)
        return results

    # --- what the processes are and wrote -------------------------------------------------------
    def largest_rss_mib(self) -> dict[str, float]:
        """The largest RSS per role right now; a run worker may end between listing and reading."""
        out: dict[str, float] = {}
        for role, procs in self.processes().items():
            sizes = []
            for p in procs:
                try:
                    sizes.append(p.memory_info().rss)
                except psutil.Error:
                    continue
            if sizes:
                out[role] = round(max(sizes) / 2**20, 1)
        return out

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Live processes by role: simulators, receiver, dagster-daemon, code-server, run-worker,
        postgres (the postmaster and its backends)."""
        out: dict[str, list[psutil.Process]] = {}
        for name, proc in self.procs.children:
            if proc.poll() is not None:
                continue
            try:
                top = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                continue
            out.setdefault(name, []).append(top)
            if name == "dagster-daemon":
                for child in top.children(recursive=True):
                    try:
                        cmd = " ".join(child.cmdline())
                    except psutil.Error:
                        continue
                    role = ("code-server" if "grpc" in cmd else "mp-helper" if "resource_tracker" in cmd
                            else "run-worker" if "multiprocessing" in cmd
                            else "log-capture" if "watch_orphans" in cmd or cmd.startswith("tail ") else "daemon-child")
                    out.setdefault(role, []).append(child)
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.exists():
            try:
                master = psutil.Process(int(pid_file.read_text().split()[0]))
                out["postgres"] = [master, *master.children()]
            except (psutil.Error, ValueError, IndexError):
                pass
        return out

    def log_files(self) -> list[Path]:
        """Every file a process of the stack logged to: the processes' stdout/stderr, PostgreSQL's
        server log, and everything Dagster wrote under its home (compute logs, daemon files)."""
        files = [p for p in self.log_dir.rglob("*") if p.is_file()]
        files += [p for p in self.pgdata.glob("*.log")] + [p for p in (self.pgdata / "log").glob("*") if p.is_file()]
        files += [p for p in (self.home / "dagster").rglob("*") if p.is_file() and p.suffix in (".out", ".err", ".log")]
        return sorted(set(files))

    def stored_files(self) -> list[Path]:
        """Everything else Dagster keeps on disk: asset values written by the IO manager, its config."""
        logs = set(self.log_files())
        return sorted(p for p in (self.home / "dagster").rglob("*") if p.is_file() and p not in logs)

    def describe(self) -> str:
        lines = [f"state folder   {self.home}", f"receiver       {self.receiver_url}"]
        lines += [f"{name:14s} {self.sim_url(name)}" for name in SIMULATORS]
        lines += [f"database       {self.env['FIELDLEDGER_DATABASE_URL']}"]
        lines += [f"logs           {', '.join(str(p) for p in self.log_files())}"]
        return "\n".join(lines)


def _execute(items: list) -> dict[str, bool]:
    """Child of ``FullStack.execute_requests``: [[partition key, tags], ...] run in order."""
    from fieldledger.instance import get_instance
    from pipelines.definitions import defs
    from pipelines.resources import _clients

    job = defs.resolve_job_def("sync")
    out = {}
    try:
        for key, tags in items:
            result = job.execute_in_process(partition_key=key, instance=get_instance(), tags=tags,
                                            raise_on_error=False)
            out[key] = result.success
    finally:
        _clients.close_idle()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["execute"]:
        print(json.dumps(_execute(json.loads(argv[1]))), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="how long to keep the stack up")
    parser.add_argument("--profile", default="none")
    args = parser.parse_args(argv)
    with FullStack(profile=args.profile) as stack:
        print(stack.describe(), flush=True)
        time.sleep(args.seconds)
        for role, mib in stack.largest_rss_mib().items():
            print(f"{role:14s} largest process RSS {mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
