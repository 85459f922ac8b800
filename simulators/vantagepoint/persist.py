"""What the Vantagepoint simulator keeps across restarts (simulators/snapshots.py): the whole
tenant (firms, projects, periods, transaction files posted or not, the ledger, open AR, the
numbering and id sequences) and the clock. Access and refresh tokens are not kept: a client
signs in again."""

from __future__ import annotations

from simulators.snapshots import frozen, thawed
from simulators.vantagepoint.state import TenantState

RUNTIME = ("lock", "settings", "clock")  # rebuilt from the options at every start


def capture(state: TenantState) -> dict:
    with state.lock:
        blob = frozen({k: v for k, v in vars(state).items() if k not in RUNTIME})
    return {"clock": state.clock.position(), "state": blob}


def restore(state: TenantState, saved: dict) -> None:
    with state.lock:
        vars(state).update(thawed(saved["state"]))
