"""What the Acumatica simulator keeps across restarts (simulators/snapshots.py): every record
(customers, vendors, documents, accounts), the numbering sequences, background operations still
running (a release completes after a restart) and the clock. Sessions and tokens are not kept: a
client signs in again, as after an application-pool recycle of the real instance."""

from __future__ import annotations

from simulators.acumatica.app import Instance
from simulators.snapshots import frozen, thawed

TENANT_RUNTIME = ("lock",)


def capture(instance: Instance) -> dict:
    tenant = instance.tenant
    with tenant.lock:
        state = frozen({"tenant": {k: v for k, v in vars(tenant).items() if k not in TENANT_RUNTIME},
                        "operations": instance.rules.operations})
    return {"clock": instance.clock.position(), "state": state}


def restore(instance: Instance, saved: dict) -> None:
    state = thawed(saved["state"])
    with instance.tenant.lock:
        vars(instance.tenant).update(state["tenant"])
        instance.rules.operations.clear()
        instance.rules.operations.update(state["operations"])
