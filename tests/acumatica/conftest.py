"""Fixtures: the Acumatica simulator served on a loopback port, and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from resources.acumatica import AcumaticaClient
from simulators.acumatica import build
from simulators.runtime import ServedApp, SimOptions


class RunningSim:
    def __init__(self, served: ServedApp, info: dict):
        self.served = served
        self.info = info
        self.base_url = info["base_url"]
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def stats(self) -> dict:
        return self.http.get("/_sim/stats").json()

    def seats(self) -> dict:
        return self.http.get("/_sim/seats").json()

    def advance(self, seconds: float) -> None:
        self.http.post("/_sim/clock", json={"advance_seconds": seconds}).raise_for_status()

    def token(self, scope: str = "api offline_access") -> dict:
        i = self.info
        r = self.http.post("/identity/connect/token", data={
            "grant_type": "password", "client_id": i["client_id"], "client_secret": i["client_secret"],
            "username": i["username"], "password": i["password"], "scope": scope})
        r.raise_for_status()
        return r.json()

    def client(self, **kw) -> AcumaticaClient:
        i = self.info
        kw.setdefault("poll_interval", 0.05)
        kw.setdefault("seat_retry_seconds", 0.2)
        kw.setdefault("share_session", False)  # most tests here count seats per client
        return AcumaticaClient(i["base_url"], i["tenant"], i["client_id"], i["client_secret"], i["username"],
                               i["password"], **kw)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., RunningSim]]:
    started: list[RunningSim] = []

    def start(seed: int = 7, time_factor: float = 1.0, **options) -> RunningSim:
        options.setdefault("release_seconds", 0.1)
        sim = build(SimOptions(seed=seed, time_factor=time_factor, options=options))
        served = ServedApp(sim.app).start()
        running = RunningSim(served, sim.info(served.base_url))
        started.append(running)
        return running

    yield start
    for s in started:
        s.http.close()
        s.served.stop()


@pytest.fixture
def sim(make_sim) -> RunningSim:
    """A default instance on the 'trial' tier (roomy request pool) for functional tests."""
    return make_sim(tier="trial")


@pytest.fixture
def acu(sim) -> Iterator[AcumaticaClient]:
    client = sim.client()
    yield client
    client.close()

