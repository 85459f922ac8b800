"""Fixtures for the exactly-once tests: an Acumatica and a Vantagepoint simulator on loopback
ports (real sockets), each with its fault profile switchable at run time."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators import acumatica as acumatica_sim
from simulators import vantagepoint as vantagepoint_sim
from simulators.runtime import ServedApp, SimOptions


class Sim:
    """A running simulator: its info section (URLs, credentials) and its fault switch."""

    def __init__(self, served: ServedApp, info: dict, faults_url: str, stats_url: str):
        self.served, self.info = served, info
        self._faults_url, self._stats_url = faults_url, stats_url

    def faults(self, profile: str) -> None:
        httpx.put(self._faults_url, json={"profile": profile}, timeout=10).raise_for_status()

    def injected(self, kind: str) -> int:
        return httpx.get(self._stats_url, timeout=10).json()["faults_injected"].get(kind, 0)


@pytest.fixture
def acumatica() -> Iterator[Sim]:
    built = acumatica_sim.build(SimOptions(seed=7, options={"tier": "trial", "release_seconds": 0}))
    served = ServedApp(built.app).start()
    info = built.info(served.base_url)
    yield Sim(served, info, f"{info['base_url']}/_sim/faults", f"{info['base_url']}/_sim/stats")
    served.stop()


@pytest.fixture
def vantagepoint() -> Iterator[Sim]:
    built = vantagepoint_sim.build(SimOptions(seed=11))
    served = ServedApp(built.app).start()
    info = built.info(served.base_url)
    yield Sim(served, info, f"{info['control_url']}/faults", f"{info['control_url']}/stats")
    served.stop()
