"""`fieldledger demo` end to end, twice: the first run posts documents and is stopped with Ctrl-C
(SIGINT), leaving no process behind; the second run resumes — the sync store's posted count
continues from where it was instead of starting over, and no document is in an ERP twice."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import psycopg
import pytest
from cryptography.fernet import Fernet

from resources.vantagepoint import VantagepointClient
from simulators.runtime import free_port_block
from tests.demo.test_simulator_persistence import acumatica_client

pytestmark = pytest.mark.slow
_n = itertools.count()


def _database(pg_server, template: str | None) -> str:
    name = f"demo_{os.getpid()}_{next(_n)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return pg_server.url(name)


def posted_ids(url: str) -> set[tuple]:
    """(id, created_at) of each posted document's record: rows a store that started over would
    have made again carry a later created_at even where the numbering came out the same."""
    with psycopg.connect(url) as conn:
        return set(conn.execute("SELECT id, created_at FROM records WHERE status = 'posted' "
                                "AND source_type NOT IN ('customer', 'vendor')").fetchall())


def posted(url: str) -> int:
    return len(posted_ids(url))


class Demo:
    def __init__(self, home: Path, env: dict):
        self.home, self.env = home, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.out = open(self.home / f"demo-{next(_n)}.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "fieldledger"), "demo", "--days", "1",
                                      "--rate", "60"], stdout=self.out, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)

    def wait_posted(self, url: str, more_than: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.output()
            n = posted(url)
            if n > more_than:
                return n
            assert time.monotonic() < deadline, f"posted stayed at {n}\n{self.output()}"
            time.sleep(0.5)

    def interrupt(self) -> list[psutil.Process]:
        """Ctrl-C; returns every process the demo had started, to check none is left."""
        family = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(60) == 0, self.output()
        self.out.close()
        return family

    def output(self) -> str:
        return (self.home / self.out.name).read_text(errors="replace")[-3000:]


@pytest.fixture
def demo(pg_server, template_db, tmp_path) -> Demo:
    base = free_port_block()
    env = {**os.environ, "FIELDLEDGER_HOME": str(tmp_path), "FIELDLEDGER_DATABASE_URL": _database(pg_server, template_db),
           "FIELDLEDGER_DAGSTER_DATABASE_URL": _database(pg_server, None),
           "FIELDLEDGER_MASTER_KEY": Fernet.generate_key().decode(), "DAGSTER_HOME": str(tmp_path / "dagster"),
           "FIELDLEDGER_DEMO_PORT_BASE": str(base), "FIELDLEDGER_DEMO_UI_PORT": str(free_port_block(1))}
    running = Demo(tmp_path, env)
    yield running
    if running.proc is not None and running.proc.poll() is None:
        running.proc.kill()
        for child in psutil.Process(running.proc.pid).children(recursive=True):
            child.kill()


def erp_duplicates(info: dict) -> tuple[Counter, Counter]:
    """External references that occur more than once: Acumatica invoices by CustomerOrder,
    Vantagepoint invoices by number (one 'A' row per posted document)."""
    acu = acumatica_client(info["acumatica"])
    refs = Counter(r.get("CustomerOrder") for r in acu.iter_all("Invoice", select="CustomerOrder"))
    acu.close()
    vp_info = info["vantagepoint"]
    vp = VantagepointClient(**{k: vp_info[k] for k in ("base_url", "database", "client_id", "client_secret",
                                                       "username", "password")}, rate_per_second=None)
    numbers = Counter(r.Invoice for r in vp.ledger("IN") if r.SubType == "A")
    vp.close()
    return (Counter({k: n for k, n in refs.items() if n > 1}), Counter({k: n for k, n in numbers.items() if n > 1}))


def test_demo_stops_cleanly_and_resumes_where_it_was(demo):
    url = demo.env["FIELDLEDGER_DATABASE_URL"]
    started = time.monotonic()
    demo.start()
    first = demo.wait_posted(url, 0, timeout=180)
    print(f"first posted after {time.monotonic() - started:.1f} s")
    family = demo.interrupt()
    print(f"stopped after {time.monotonic() - started:.1f} s")
    assert family and not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    first_ids = posted_ids(url)
    stopped_at = len(first_ids)
    assert stopped_at >= first
    assert sorted(p.name for p in (demo.home / "simulators").glob("*.snapshot")) == [
        "acumatica.snapshot", "servicetitan.snapshot", "vantagepoint.snapshot"]

    demo.start()
    demo.wait_posted(url, stopped_at, timeout=180)
    assert first_ids <= posted_ids(url)  # the same rows: the books resumed, they did not start over
    print(f"posted again after {time.monotonic() - started:.1f} s")
    info = json.loads((demo.home / "sim.json").read_text())
    assert erp_duplicates(info) == (Counter(), Counter())
    assert "resuming" in demo.output()
    demo.interrupt()
    print(f"demo twice: {time.monotonic() - started:.1f} s, posted {stopped_at} then {posted(url)}")
