"""Fixtures for the Vantagepoint tests: a fresh simulated tenant on a loopback port per test,
its /_sim control endpoints, and clients built from its info section."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from resources.http import RetryPolicy
from resources.vantagepoint import VantagepointClient
from simulators.faults import parse_profile
from simulators.runtime import ServedApp, SimOptions
from simulators.vantagepoint import build

FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)


@dataclass
class VPSim:
    info: dict
    served: ServedApp
    clients: list[VantagepointClient] = field(default_factory=list)

    def control(self, method: str, path: str, **kw) -> dict:
        response = httpx.request(method, f"{self.info['control_url']}/{path}", timeout=10, **kw)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self.control("GET", "stats")

    def client(self, **kw) -> VantagepointClient:
        creds = {k: self.info[k] for k in ("base_url", "database", "client_id", "client_secret", "username", "password")}
        client = VantagepointClient(**{**creds, "retry": FAST_RETRY, "rate_per_second": None, **kw})
        self.clients.append(client)
        return client

    def token(self) -> str:
        response = httpx.post(f"{self.info['base_url']}/token", data={
            "grant_type": "password", "username": self.info["username"], "password": self.info["password"],
            "client_id": self.info["client_id"], "client_secret": self.info["client_secret"],
            "database": self.info["database"]})
        response.raise_for_status()
        return response.json()["access_token"]

    def raw(self) -> httpx.Client:
        """A plain HTTP client on the tenant's API root, signed in (for wire-level assertions)."""
        return httpx.Client(base_url=self.info["base_url"] + "/", headers={"Authorization": f"Bearer {self.token()}"},
                            timeout=10)

    def period(self) -> int:
        """The tenant's active period (the latest open one), as the simulator holds it."""
        return int(self.raw().get("Settings/ActivePeriod").json()[0]["Period"])


@pytest.fixture
def make_vp() -> Iterator[Callable[..., VPSim]]:
    started: list[VPSim] = []

    def start(profile: str = "", time_factor: float = 1.0, **options) -> VPSim:
        sim = build(SimOptions(seed=11, profile=parse_profile(profile), time_factor=time_factor, options=options))
        served = ServedApp(sim.app).start()
        vp = VPSim(sim.info(served.base_url), served)
        started.append(vp)
        return vp

    yield start
    for vp in started:
        for client in vp.clients:
            client.close()
        vp.served.stop()


@pytest.fixture
def vp(make_vp) -> VPSim:
    return make_vp()
