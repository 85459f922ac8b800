"""What the ServiceTitan simulator keeps across restarts (simulators/snapshots.py).

The generated year is not stored: it is generated again from the seed, the data options and the
moment it was first generated (``seed_now``), which is cheaper than reading 25 MB back. What is
stored is everything since: every row touched after seeding (live mode, /_sim edits: each with its
place in the export log), every customer's balance (it moves without a modification, as in
ServiceTitan), the id and number sequences, the seq counter, live mode's random state, issued
tokens (a cached token keeps working), webhook registrations and deliveries not yet made, and the
clock.

Live mode saves before it announces: a webhook goes out only once the change it describes is on
disk. After a hard stop the id and number sequences skip ahead (``UNCLEAN_ID_GAP``), so a change
made after the last snapshot, which fieldledger may have read through the API, is never reused
for a different record.
"""

from __future__ import annotations

import heapq
import itertools
import time
import weakref
from typing import TYPE_CHECKING

from simulators.snapshots import Persistence, Saved, frozen, persistence_for, thawed

if TYPE_CHECKING:
    from simulators.runtime import SimOptions
    from simulators.servicetitan.app import ServiceTitanSim

UNCLEAN_ID_GAP = 1000
_serialized: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # TenantData -> {(kind, id): (seq, bytes)}
DATA_OPTIONS = ("contractors", "days", "invoices_per_day", "customers", "purchase_orders_per_day")


def open_for(sim: ServiceTitanSim, options: SimOptions) -> tuple[Persistence | None, Saved | None]:
    # as text: `sim up --option days=40` and SimOptions(options={"days": 40}) generate the same data
    identity = {"seed": options.seed, **{k: None if options.options.get(k) is None else str(options.options[k])
                                         for k in DATA_OPTIONS}}
    return persistence_for(options, "servicetitan", identity, lambda: capture(sim))


def capture(sim: ServiceTitanSim) -> dict:
    tenants = {}
    for tenant_id, data in sim.tenants.items():
        with data.lock:
            tenants[tenant_id] = frozen({
                "changed": {kind: _changed_rows(data, kind) for kind in data.tables},
                "balances": {c.id: c.balance for c in data.tables["customers"].rows.values()},
                "counters": dict(data.counters), "seq": data.seq,
                "rng": sim.live.builders[tenant_id].rng.getstate(),
            })
    with sim.issuer._lock:
        grants = frozen(dict(sim.issuer._grants))
    return {"clock": sim.clock.position(), "seed_now": sim.seed_now, "tenants": tenants, "grants": grants,
            "webhooks": hub_state(sim.hub), "live_changes": sim.live.changes}


def _changed_rows(data, kind: str) -> list[bytes]:
    """Each row touched since seeding, serialized; a row is serialized again only when touched
    again (its seq moved), so a snapshot costs little however long live mode has run. Only the
    customer balance changes without a touch, and it is saved on its own."""
    cache = _serialized.setdefault(data, {})
    out = []
    for row in data.tables[kind].rows.values():
        if row.seq > data.seed_seq:
            cached = cache.get((kind, row.id))
            if cached is None or cached[0] != row.seq:
                cached = cache[(kind, row.id)] = (row.seq, frozen(row))
            out.append(cached[1])
    return out


def restore(sim: ServiceTitanSim, saved: Saved) -> None:
    state = saved.state
    for tenant_id, blob in state["tenants"].items():
        data, part = sim.tenants[tenant_id], thawed(blob)
        with data.lock:
            for kind, blobs in part["changed"].items():
                table = data.tables[kind]
                for row in sorted(map(thawed, blobs), key=lambda r: r.seq):  # the log stays ordered by (modified, seq)
                    table.append(row, row.seq)
            customers = data.tables["customers"].rows
            for customer_id, balance in part["balances"].items():
                customers[customer_id].balance = balance
            gap = 0 if saved.clean else UNCLEAN_ID_GAP
            data.counters = {kind: n + gap for kind, n in part["counters"].items()}
            data.seq = part["seq"] + gap  # export positions fieldledger may hold stay behind new changes
            sim.live.builders[tenant_id].rng.setstate(part["rng"])
    with sim.issuer._lock:
        sim.issuer._grants.update(thawed(state["grants"]))
    restore_hub(sim.hub, state["webhooks"])
    sim.live.changes = state["live_changes"]


def durable_publish(persistence: Persistence, publish):
    """Live mode's publish: the change is saved before its webhook is queued."""

    def publish_saved(tenant: int, event_type: str, record: dict) -> int:
        persistence.flush(persistence.mark())
        return publish(tenant, event_type, record)

    return publish_saved


def hub_state(hub) -> dict:
    """Registrations and deliveries not yet made (the queue, the held one), under the hub's lock."""
    with hub._cond:
        pending = sorted(hub._queue) + ([hub._held] if hub._held is not None else [])
        return {"registrations": frozen(dict(hub._regs)),
                "pending": [(d.registration_id, d.body, d.event_id, d.attempt) for d in pending]}


def restore_hub(hub, saved: dict) -> None:
    from simulators.servicetitan.webhooks import _Delivery

    regs = thawed(saved["registrations"])
    with hub._cond:
        hub._regs.update(regs)
        hub._ids = itertools.count(max([44_438_000, *regs]) + 1)
        now = time.monotonic()  # monotonic clocks do not survive a process: all due now, in order
        for registration_id, body, event_id, attempt in saved["pending"]:
            heapq.heappush(hub._queue, _Delivery(now, next(hub._order), registration_id, body, event_id, attempt))
        hub._cond.notify_all()
