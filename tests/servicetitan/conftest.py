"""Fixtures for the ServiceTitan tests: a small simulator served on a loopback port, and clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from resources.servicetitan import ServiceTitanClient
from simulators.faults import parse_profile
from simulators.runtime import ServedApp, SimOptions
from simulators.servicetitan import ServiceTitanSim

SMALL = {"invoices_per_day": 6, "days": 60, "customers": 120, "purchase_orders_per_day": 2}


@dataclass
class RunningSim:
    sim: ServiceTitanSim
    served: ServedApp
    info: dict

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def creds(self, key: str = "cascade-hvac") -> dict:
        return self.info["tenants"][key]

    def client(self, key: str = "cascade-hvac", **kw) -> ServiceTitanClient:
        c = self.creds(key)
        return ServiceTitanClient(self.base_url, self.info["auth_url"], c["tenant"], c["client_id"],
                                  c["client_secret"], c["app_key"], **kw)

    def control(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def token(self, key: str = "cascade-hvac") -> str:
        c = self.creds(key)
        r = httpx.post(f"{self.base_url}/connect/token", data={
            "grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]})
        r.raise_for_status()
        return r.json()["access_token"]

    def raw(self, key: str = "cascade-hvac") -> httpx.Client:
        """An authenticated raw HTTP client (for shape checks), without retries."""
        c = self.creds(key)
        return httpx.Client(base_url=self.base_url, timeout=60, headers={
            "ST-App-Key": c["app_key"], "Authorization": f"Bearer {self.token(key)}"})


def _start(seed: int = 11, profile: str = "", time_factor: float = 1.0, **options) -> RunningSim:
    opts = {**SMALL, "token_requests_per_minute": 1000, **options}
    sim = ServiceTitanSim(SimOptions(seed=seed, profile=parse_profile(profile), time_factor=time_factor,
                                     options=opts))
    served = ServedApp(sim.app).start()
    sim.start_background(served.base_url)
    return RunningSim(sim, served, sim.info(served.base_url))


@pytest.fixture(scope="module")
def st() -> RunningSim:
    running = _start()
    yield running
    running.sim.stop_background()
    running.served.stop()


@pytest.fixture
def st_factory() -> Callable[..., RunningSim]:
    started: list[RunningSim] = []

    def make(**kw) -> RunningSim:
        running = _start(**kw)
        started.append(running)
        return running

    yield make
    for running in started:
        running.sim.stop_background()
        running.served.stop()
