"""What every simulator shares at run time: its options, a clock that can run fast, and a way to
serve an ASGI app on a loopback port from a thread (tests, benchmarks) or the foreground (CLI).

Each simulator package exposes ``build(options: SimOptions) -> Simulator``; the launcher in
``simulators/launcher.py`` starts them side by side and writes the info file.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from simulators.faults import FaultProfile


@dataclass
class SimOptions:
    seed: int = 7
    profile: FaultProfile = field(default_factory=FaultProfile)
    live: bool = False
    time_factor: float = 1.0  # simulated seconds per wall second (token lifetimes, retry waits)
    live_rate_per_minute: float = 30.0  # new or changed documents per minute in live mode
    latency_ms: float = 0.0  # added to every API response on top of the profile
    options: dict[str, Any] = field(default_factory=dict)  # simulator-specific settings
    # Opt-in persistence (simulators/snapshots.py): each simulator keeps <state_dir>/<name>.snapshot.
    # None (default): state lives in memory only. `sim up` passes it as the option state_dir=PATH.
    state_dir: Path | None = None

    def state_path(self) -> Path | None:
        where = self.state_dir or self.options.get("state_dir")
        return Path(where) if where else None

    def snapshot_seconds(self) -> float:
        """How often a snapshot is written besides on every change a client was told about."""
        return float(self.options.get("snapshot_seconds", 30.0))


class SimClock:
    """Simulated time: starts at the real UTC now and runs ``factor`` times faster.

    Tests that need hours of token lifetimes pass e.g. factor=240; ``advance`` jumps ahead."""

    def __init__(self, factor: float = 1.0, start: datetime | None = None):
        self.factor = factor
        self._start_real = time.monotonic()
        self._start_sim = start or datetime.now(UTC)
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._start_real) * self.factor
        with self._lock:
            return self._start_sim + timedelta(seconds=elapsed) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def position(self) -> dict:
        """What a snapshot keeps: simulated now and the wall-clock moment it was read."""
        return {"sim": self.now(), "wall": datetime.now(UTC)}

    @classmethod
    def resumed(cls, factor: float, position: dict) -> SimClock:
        """A clock that continues from a saved position. The time the simulator was down passes at
        wall-clock speed (the real systems keep running while fieldledger is stopped), so simulated
        time never goes back and a factor-1 clock stays on real time."""
        down = max(timedelta(0), datetime.now(UTC) - position["wall"])
        return cls(factor, start=position["sim"] + down)

    def sleep_seconds(self, simulated: float) -> float:
        """Wall seconds to wait for ``simulated`` seconds to pass."""
        return simulated / self.factor if self.factor > 0 else simulated


@dataclass
class Simulator:
    """A built simulator: its ASGI app, how to describe itself in the info file, and optional
    background work (live mode, webhook delivery) started once it listens."""

    name: str
    app: Callable
    info: Callable[[str], dict]  # base_url -> info-file section
    start_background: Callable[[str], None] | None = None  # base_url -> None
    stop_background: Callable[[], None] | None = None
    close: Callable[[], None] | None = None  # after the server stopped: e.g. the final snapshot


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_block(size: int = 4, host: str = "127.0.0.1") -> int:
    """A base port whose next ``size - 1`` ports are free too, below the kernel's ephemeral range
    (32768+): stacks that restart on the same ports (the demo resuming, a restarted receiver) must
    not find one handed meanwhile to another process's outgoing connection."""
    for _ in range(200):
        base = random.randint(20000, 32768 - size)
        socks = []
        try:
            for i in range(size):
                s = socket.socket()
                socks.append(s)
                s.bind((host, base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {size} free ports below 32768")


class ServedApp:
    """An ASGI app served by uvicorn in a daemon thread; for tests, benches and the launcher."""

    def __init__(self, app: Callable, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.host = host
        self.port = port or free_port(host)
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level=log_level, access_log=False, lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name=f"sim-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_simulator(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> tuple[ServedApp, dict]:
    """Start a built simulator on a port; returns the server and its info-file section."""
    served = ServedApp(sim.app, host, port).start()
    if sim.start_background:
        sim.start_background(served.base_url)
    return served, sim.info(served.base_url)
