"""Starts the simulators side by side (ServiceTitan on port-base+1, Acumatica +2, Vantagepoint +3)
and writes the info file the rest of fieldledger reads their URLs and credentials from."""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import threading
from pathlib import Path
from typing import Any

from simulators.runtime import ServedApp, SimOptions
from simulators.snapshots import SnapshotError

SIMULATORS = (("servicetitan", 1), ("acumatica", 2), ("vantagepoint", 3))


def parse_option(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line -> (key, typed value), the one place that decides what
    a value means. The simulators read options as Python values (``if options.get(flag)``), so
    text must not reach them as-is: "false" is a non-empty, truthy string. true/false (any case)
    are booleans; a JSON number, object, array or null is that value; anything else (``trial``,
    a path, ``007``) stays text."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--option takes KEY=VALUE (e.g. tier=trial), got {item!r}")
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return key, text.lower() == "true"
    try:
        value = json.loads(text)
    except ValueError:
        return key, raw
    if isinstance(value, float) and not math.isfinite(value):  # json accepts NaN / Infinity
        return key, raw
    return key, value


def parse_options(items: list[str] | None) -> dict[str, Any]:
    return dict(parse_option(item) for item in items or [])


class RunningSimulators:
    def __init__(self):
        self.served: dict[str, ServedApp] = {}
        self.info: dict[str, dict] = {}
        self._stops: list = []
        self._closes: list = []

    def stop(self) -> None:
        """Background work first, then the servers, then each simulator's close (its final
        snapshot, when it keeps state): nothing changes the state after it is written."""
        for stop in self._stops:
            stop()
        for served in self.served.values():
            served.stop()
        for close in self._closes:
            close()


def start_all(options: SimOptions, port_base: int = 8800, host: str = "127.0.0.1",
              only: tuple[str, ...] | None = None, info_file: Path | None = None) -> RunningSimulators:
    """Build and serve each simulator; port_base=0 picks free ports (tests)."""
    running = RunningSimulators()
    try:
        for name, offset in SIMULATORS:
            if only and name not in only:
                continue
            module = importlib.import_module(f"simulators.{name}")
            sim = module.build(options)
            if sim.close:  # registered before serving: a failed start still saves what it loaded
                running._closes.append(sim.close)
            served = ServedApp(sim.app, host, port_base + offset if port_base else 0).start()
            running.served[name] = served
            if sim.start_background:
                sim.start_background(served.base_url)
            if sim.stop_background:
                running._stops.append(sim.stop_background)
            running.info[name] = sim.info(served.base_url)
    except BaseException:
        running.stop()
        raise
    if info_file is not None:
        write_info_file(info_file, running.info)
    return running


def write_info_file(path: Path, info: dict) -> None:
    """Written 0600: it holds the simulators' (test) credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=2)
    os.replace(tmp, path)


def run_foreground(options: SimOptions, port_base: int, info_file: Path, host: str = "127.0.0.1") -> None:
    try:
        running = start_all(options, port_base, host, info_file=info_file)
    except SnapshotError as exc:  # the message names the file and how to start over
        raise SystemExit(f"simulators: {exc}") from None
    for name, served in running.served.items():
        print(f"{name:13s} {served.base_url}")
    print(f"info file     {info_file}")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    running.stop()
