"""`make demo` with one of its ports taken (issue 18, problem 7): it used to print the UI address
(another server's 404 counted as ready) and then stop everything, the cause only in a log. Now it
refuses before starting anything, naming the port, what needs it and the variable that moves it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from simulators.runtime import free_port_block


def test_a_taken_port_is_named_before_anything_starts(tmp_path):
    base = free_port_block()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ui_port = squatter.getsockname()[1]
        env = {**os.environ, "FIELDLEDGER_HOME": str(tmp_path / "home"), "FIELDLEDGER_DEMO_PORT_BASE": str(base),
               "FIELDLEDGER_DEMO_UI_PORT": str(ui_port)}
        env.pop("FIELDLEDGER_DATABASE_URL", None)
        done = subprocess.run([sys.executable, "-m", "fieldledger.cli", "demo"], env=env, capture_output=True,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0
    assert f"another program listens on port {ui_port} (Dagster UI; FIELDLEDGER_DEMO_UI_PORT moves it)" in done.stderr, (
        done.stdout + done.stderr)
    assert "Dagster UI      http" not in done.stdout  # no address printed for a UI that is not ours
    assert not (tmp_path / "home" / "pg").exists()  # nothing was started


def test_ports_in_use_names_each_taken_port():
    from fieldledger.demo import ports_in_use

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        free = free_port_block()
        assert ports_in_use({"held": port, "free": free}) == [f"{port} (held)"]
