"""What the Vantagepoint simulator keeps across restarts (simulators/snapshots.py): the whole
tenant (firms, projects, periods, transaction files posted or not, the ledger, open AR, the
numbering and id sequences) and the clock. Access and refresh tokens are not kept: a client
signs in again.

A snapshot is written before every write is answered, so the bulky parts are serialized only
when they change: the ledger is append-only (kept in chunks; only the last, partial chunk is
serialized again), and a transaction file changes only by growing or being posted, both of which
stamp its ModDate."""

from __future__ import annotations

import weakref
from collections import defaultdict

from simulators.snapshots import frozen, thawed
from simulators.vantagepoint.state import TenantState

RUNTIME = ("lock", "settings", "clock")  # rebuilt from the options at every start
BULKY = ("files", "ledger", "_ledger_index")  # saved piecewise below; the index is rebuilt
LEDGER_CHUNK = 512
_serialized: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # TenantState -> cache


def capture(state: TenantState) -> dict:
    cache = _serialized.setdefault(state, {"files": {}, "ledger": []})
    files_before, files_now = cache["files"], {}
    with state.lock:
        files = {}
        for code, by_batch in state.files.items():
            blobs = files[code] = []
            for batch, f in by_batch.items():
                stamp = (id(f), f.posted, f.control.get("ModDate"), len(f.masters), len(f.details))
                hit = files_before.get((code, batch))
                if hit is None or hit[0] != stamp:
                    hit = (stamp, frozen(f))
                files_now[(code, batch)] = hit
                blobs.append((batch, hit[1]))
        chunks = cache["ledger"]
        full = len(state.ledger) // LEDGER_CHUNK
        for i in range(len(chunks), full):
            chunks.append(frozen(state.ledger[i * LEDGER_CHUNK:(i + 1) * LEDGER_CHUNK]))
        ledger = [*chunks, frozen(state.ledger[full * LEDGER_CHUNK:])]
        rest = frozen({k: v for k, v in vars(state).items() if k not in RUNTIME + BULKY})
    cache["files"] = files_now
    return {"clock": state.clock.position(), "state": rest, "files": files, "ledger": ledger}


def restore(state: TenantState, saved: dict) -> None:
    with state.lock:
        vars(state).update(thawed(saved["state"]))
        state.files = {code: {batch: thawed(blob) for batch, blob in blobs} for code, blobs in saved["files"].items()}
        state.ledger, state._ledger_index = [], defaultdict(list)
        for chunk in saved["ledger"]:
            for row in thawed(chunk):
                state.add_ledger_row(row)
