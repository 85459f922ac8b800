"""Simulators that keep their state in a folder, started and stopped the way the demo does: in
process through the launcher (round trips), or as a `fieldledger sim up` subprocess (hard kills)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from simulators.launcher import RunningSimulators, start_all
from simulators.runtime import SimOptions, free_port_block

FAST = {"tier": "trial", "release_seconds": 0.05, "days": 40, "invoices_per_day": 8, "customers": 120}


@pytest.fixture
def start_sims(tmp_path) -> Iterator[Callable[..., RunningSimulators]]:
    """start_sims(only=..., **options) -> the launcher's RunningSimulators, keeping state in tmp_path/sims."""
    running: list[RunningSimulators] = []

    def start(*only: str, state_dir: Path | None = None, seed: int = 7, **options) -> RunningSimulators:
        sims = start_all(SimOptions(seed=seed, state_dir=state_dir or tmp_path / "sims", options={**FAST, **options}),
                         port_base=0, only=only or None)
        running.append(sims)
        return sims

    yield start
    for sims in running:
        sims.stop()  # stopping twice is harmless: the tests stop most of them themselves


class SimProcess:
    """`fieldledger sim up` in its own session, as the demo runs it."""

    def __init__(self, state_dir: Path, home: Path):
        self.state_dir, self.home = state_dir, home
        self.port_base = free_port_block()
        self.info_file = home / "sim.json"
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> dict:
        import json

        self.info_file.unlink(missing_ok=True)
        args = [str(Path(sys.executable).parent / "fieldledger"), "sim", "up", "--port-base", str(self.port_base),
                "--no-live", "--info-file", str(self.info_file), "--option", f"state_dir={self.state_dir}",
                *[a for k, v in FAST.items() for a in ("--option", f"{k}={v}")], *extra]
        self.log = open(self.home / "sim.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "FIELDLEDGER_HOME": str(self.home)})
        deadline = time.monotonic() + 60
        while not self.info_file.exists():
            assert self.proc.poll() is None, (self.home / "sim.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "sim up did not start"
            time.sleep(0.1)
        return json.loads(self.info_file.read_text())

    def kill(self, sig: int = signal.SIGKILL) -> int:
        os.killpg(self.proc.pid, sig)
        code = self.proc.wait(20)
        self.log.close()
        return code


@pytest.fixture
def sim_process(tmp_path) -> Iterator[SimProcess]:
    proc = SimProcess(tmp_path / "sims", tmp_path)
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.kill(signal.SIGTERM)


def st_record(base_url: str, tenant: int, kind: str, record_id: int) -> httpx.Response:
    return httpx.get(f"{base_url}/_sim/records/{tenant}/{kind}/{record_id}", timeout=10)
