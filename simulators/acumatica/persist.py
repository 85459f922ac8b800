"""What the Acumatica simulator keeps across restarts (simulators/snapshots.py): every record
(customers, vendors, documents, accounts), the numbering sequences, background operations still
running (a release completes after a restart) and the clock. Sessions and tokens are not kept: a
client signs in again, as after an application-pool recycle of the real instance.

A snapshot is written before every write is answered, so it must stay cheap as documents pile
up: each record is serialized again only when it changed. Every change either replaces the record
(PUT saves a new dict) or sets its LastModifiedDateTime (release, void, payment application) —
the same rule the ERP catch-up poll relies on — so (object, LastModifiedDateTime) tells."""

from __future__ import annotations

import weakref

from simulators.acumatica.app import Instance
from simulators.snapshots import frozen, thawed

TENANT_RUNTIME = ("lock", "records")  # the lock is rebuilt; records are saved one by one
_serialized: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Tenant -> {(entity, id): (stamp, bytes)}


def capture(instance: Instance) -> dict:
    tenant = instance.tenant
    previous = _serialized.get(tenant, {})
    current: dict = {}
    with tenant.lock:
        records = {}
        for entity, rows in tenant.records.items():
            blobs = records[entity] = []
            for record_id, record in rows.items():
                stamp = (id(record), record.get("LastModifiedDateTime"))
                hit = previous.get((entity, record_id))
                if hit is None or hit[0] != stamp:
                    hit = (stamp, frozen(record))
                current[(entity, record_id)] = hit
                blobs.append(hit[1])
        rest = frozen({"tenant": {k: v for k, v in vars(tenant).items() if k not in TENANT_RUNTIME},
                       "operations": instance.rules.operations})
    _serialized[tenant] = current  # deleted records drop out of the cache
    return {"clock": instance.clock.position(), "records": records, "state": rest}


def restore(instance: Instance, saved: dict) -> None:
    state = thawed(saved["state"])
    tenant = instance.tenant
    with tenant.lock:
        vars(tenant).update(state["tenant"])
        tenant.records = {entity: {r["id"]: r for r in map(thawed, blobs)} for entity, blobs in saved["records"].items()}
        instance.rules.operations.clear()
        instance.rules.operations.update(state["operations"])
