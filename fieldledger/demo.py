"""`make demo`: everything, live, on this machine. Starts the embedded PostgreSQL, the three
simulators in live mode, the webhook receiver, the Dagster webserver and daemon on one instance;
sets up the demo connections; queues the last 30 days' runs (only the days no run synced yet); then prints a status line every few
seconds until Ctrl-C, when it stops every process it started.

Running it again resumes: the simulators keep their state in ``<state>/simulators/`` (see
simulators/snapshots.py), so the sync store's records, id map and audit still match what the
ERPs hold; live mode continues from the saved clock and the catch-up picks up what changed while
the demo was stopped. ``fieldledger demo --fresh`` starts the books over.

Ports: the receiver on 8800, the simulators on 8801-8803, the Dagster UI on 3000; the
environment variables FIELDLEDGER_DEMO_PORT_BASE and FIELDLEDGER_DEMO_UI_PORT move them (tests)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fieldledger import settings
from fieldledger.instance import PROJECT_ROOT, prepare_environment

PORT_BASE = 8800  # the receiver listens here, the simulators on PORT_BASE+1..3
UI_PORT = 3000
DEMO_CONNECTIONS = ("cascade-hvac", "summit-mechanical")


class Processes:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=PROJECT_ROOT, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop_all(self) -> None:
        import psutil

        # Dagster's code servers put themselves in a session of their own: remember every
        # descendant now, so none outlives the demo.
        descendants = []
        for _, proc in self.children:
            try:
                descendants += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in time; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
        for child in descendants:
            try:
                child.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(descendants, timeout=10)
        for child in alive:  # e.g. a backfill run deferring SIGTERM inside Dagster's execution
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass

    def dead(self) -> list[str]:
        return [name for name, proc in self.children if proc.poll() is not None]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _wait_for(path: Path, timeout: float, what: str, proc: subprocess.Popen | None = None,
              log: Path | None = None) -> None:
    """Until ``path`` exists; when the process that writes it ends first, its last log lines say why."""
    log = log or path.parent / "logs"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
            raise SystemExit(f"{what} stopped at start (exit {proc.returncode}):\n  " + "\n  ".join(tail)
                             + f"\nsee {log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within {timeout:.0f} s; see {log}")
        time.sleep(0.2)


def ports_in_use(ports: dict[str, int]) -> list[str]:
    """Which of the demo's ports (what uses it and how to move it -> port) another program holds."""
    import socket

    taken = []
    for what, port in ports.items():
        with socket.socket() as s:
            # as the servers bind: a port left in TIME_WAIT by the last demo is free, a listener is not
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"{port} ({what})")
    return taken


def _wait_http(url: str, timeout: float, what: str, expect=lambda response: True) -> None:
    """Until ``url`` answers 200 and ``expect`` recognises the answer as the program started (another
    server's 404 on a taken port is not it)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and expect(response):
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f} s; see the logs folder")
        time.sleep(0.5)


def wait_daemon(timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Until the daemon dequeues runs (its heartbeat): the backfill is submitted to its queue."""
    from fieldledger.instance import get_instance
    from fieldledger.operations import NoDaemon, check_daemon

    instance = get_instance()
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check_daemon(instance)
        except NoDaemon:
            if proc.poll() is not None:
                raise SystemExit(f"the Dagster daemon stopped at start (exit {proc.returncode}); see {log}") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"the Dagster daemon did not start within {timeout:.0f} s; see {log}") from None
            time.sleep(1)


def queue_backfill(days: int, today) -> str:
    """Submit a sync run for each of the last ``days`` days of each demo connection that has no
    run that succeeded or is on its way: a restarted demo does not sync its month again."""
    from fieldledger.operations import days_between, days_covered, submit_partitions

    window = days_between(today - timedelta(days=days - 1), today)
    counts = []
    for connection in DEMO_CONNECTIONS:
        covered = days_covered(connection, window)
        todo = [d for d in window if d not in covered]
        if todo:
            submit_partitions(connection, todo, "backfill")
        counts.append(f"{connection} {len(todo)} day(s) queued" + (f", {len(covered)} done before" if covered else ""))
    return "; ".join(counts)


def status_line(store) -> str:
    with store.transaction() as conn:
        events = conn.execute("SELECT count(*) AS n FROM inbox").fetchone()["n"]
        rows = conn.execute("SELECT CASE WHEN status = 'failed' AND next_attempt_at IS NOT NULL THEN 'retrying' "
                            "ELSE status END AS status, count(*) AS n FROM records WHERE source_type NOT IN "
                            "('customer','vendor') GROUP BY 1").fetchall()
    counts = {r["status"]: r["n"] for r in rows}
    failures = counts.get("failed", 0) + counts.get("quarantined", 0) + counts.get("needs_review", 0)
    now = datetime.now(UTC).strftime("%H:%M:%S")
    return (f"[{now}] events received {events} | documents posted {counts.get('posted', 0)} | "
            f"pending {counts.get('pending', 0)} | retrying {counts.get('retrying', 0)} | failures {failures}")


def start_books_over(store, why: str) -> None:
    """Records, id map and audit from an earlier demo would point at documents fresh simulators
    do not have, so they go with them. Secrets and connection files are kept; Dagster's run
    history stays for reference."""
    with store.transaction() as conn:
        had = conn.execute("SELECT count(*) AS n FROM records").fetchone()["n"]
        if had:
            conn.execute("TRUNCATE records, id_map, audit, inbox, cursors RESTART IDENTITY")
    if had:
        print(f"  {why}: the books start over ({had} old records cleared)")


def resume_or_start_over(store, sim_state: Path, fresh: bool) -> bool:
    """True when the simulators resume from their snapshots (the sync store is kept as it is);
    otherwise they start fresh and so do the books. A snapshot this version cannot read stops the
    demo with the way out (``--fresh``) rather than silently throwing the state away."""
    from simulators.snapshots import SnapshotError, check_directory

    if fresh:
        shutil.rmtree(sim_state, ignore_errors=True)
    try:
        found = check_directory(sim_state)
    except SnapshotError as exc:
        raise SystemExit(f"fieldledger demo: {exc}") from None
    if found:
        print(f"  resuming: the simulators continue from {sim_state}, the books from the sync store")
        return True
    start_books_over(store, "starting over (--fresh)" if fresh else "the simulators start fresh")
    return False


def run_demo(days: int = 30, live_rate: float = 20.0, fresh: bool = False) -> None:
    home = settings.ensure_state_home()
    port_base = int(os.environ.get("FIELDLEDGER_DEMO_PORT_BASE", PORT_BASE))
    ui_port = int(os.environ.get("FIELDLEDGER_DEMO_UI_PORT", UI_PORT))
    sim_state = home / "simulators"
    log_dir = home / "logs"
    log_dir.mkdir(exist_ok=True)
    from resources.database import database_url
    from resources.store import SyncStore
    from resources.vault import Vault, create_key_file

    base = "FIELDLEDGER_DEMO_PORT_BASE moves it"
    taken = ports_in_use({f"receiver; {base} and the simulators": port_base,
                          **{f"{name} simulator; {base}": port_base + i
                             for i, name in enumerate(("ServiceTitan", "Acumatica", "Vantagepoint"), 1)},
                          "Dagster UI; FIELDLEDGER_DEMO_UI_PORT moves it": ui_port})
    if taken:
        raise SystemExit("fieldledger demo: another program listens on port " + ", ".join(taken)
                         + "; stop it or choose free ports, e.g. FIELDLEDGER_DEMO_PORT_BASE=9800 "
                           "FIELDLEDGER_DEMO_UI_PORT=4000 make demo")
    print("fieldledger demo: starting (logs in", log_dir, ")")
    create_key_file()
    db_url = database_url("fieldledger")
    env = prepare_environment()
    store = SyncStore.open(db_url)
    procs = Processes(log_dir)
    stop = threading.Event()

    def interrupt(*_):
        raise KeyboardInterrupt

    # explicit handlers: a shell that starts the demo in the background ignores SIGINT otherwise
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        resume_or_start_over(store, sim_state, fresh)
        info = settings.sim_info_path()
        info.unlink(missing_ok=True)
        sims = procs.start("simulators", [
            _bin("fieldledger"), "sim", "up", "--port-base", str(port_base), "--live", "--rate", str(live_rate),
            "--info-file", str(info), "--option", "tier=trial", "--option", "seats=8",
            "--option", "release_seconds=0.2", "--option", f"state_dir={sim_state}"])
        _wait_for(info, 60, "the simulators", sims, log_dir / "simulators.log")
        procs.start("receiver", [_bin("fieldledger"), "receiver", "run", "--port", str(port_base)])
        _wait_http(f"http://127.0.0.1:{port_base}/healthz", 60, "the receiver")
        from fieldledger.demo_setup import init_demo

        init_demo(info, Vault(store), f"http://127.0.0.1:{port_base}")
        workspace = str(PROJECT_ROOT / "workspace.yaml")
        procs.start("dagster-webserver", [_bin("dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
                                          "-p", str(ui_port)], env)
        from fieldledger.instance import ensure_pools, get_instance

        ensure_pools(get_instance())  # before any run: two runs creating a pool at once fail one
        daemon = procs.start("dagster-daemon", [_bin("dagster-daemon"), "run", "-w", workspace], env)
        _wait_http(f"http://127.0.0.1:{ui_port}/server_info", 120, "the Dagster webserver",
                   lambda r: "dagster_webserver_version" in r.text)
        wait_daemon(120, daemon, log_dir / "dagster-daemon.log")
        queued = queue_backfill(days, datetime.now(UTC).date())
        sim = __import__("json").loads(info.read_text())
        print(f"""
  Dagster UI      http://127.0.0.1:{ui_port}
  receiver        http://127.0.0.1:{port_base}/webhooks/servicetitan/<connection>
  ServiceTitan    {sim['servicetitan']['base_url']}
  Acumatica       {sim['acumatica']['base_url']}
  Vantagepoint    {sim['vantagepoint']['base_url']}
  backfill        last {days} days: {queued} (runs in the Dagster UI's queue)
  Ctrl-C stops everything; `make demo` again resumes (`fieldledger demo --fresh` starts over).
""")
        while not stop.wait(5):
            print(status_line(store), flush=True)
            dead = procs.dead()
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)}; see {log_dir}")
                break
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…")
        procs.stop_all()
        store.close()
        from resources.database import embedded_pgdata, stop_embedded

        if not settings.database_url_from_env():
            stop_embedded(embedded_pgdata())
        print("stopped; state kept in", home)
