"""ERP reference data (chart of accounts, subaccounts, branches, projects, organizations, closed
periods), read from the ERP and cached in the sync store for an hour so every partition run
does not re-read the chart of accounts."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta

from mappings.connection import Connection
from posting.adapter import ReferenceData

CURSOR = "erp_reference_data"
MAX_AGE = timedelta(hours=1)


def refresh_reference_data(fieldledger, conn: Connection) -> tuple[ReferenceData, tuple[str, ...]]:
    with fieldledger.erp(conn) as adapter:
        ref = adapter.reference_data()
        dims = tuple(adapter.coding_dimensions)
    payload = {k: sorted(v) for k, v in asdict(ref).items()}
    payload.update(_dimensions=list(dims), _read_at=datetime.now(UTC).isoformat())
    fieldledger.store.set_cursor(conn.name, CURSOR, json.dumps(payload))
    return ref, dims


def load_reference_data(fieldledger, conn: Connection) -> tuple[ReferenceData, tuple[str, ...]]:
    raw = fieldledger.store.get_cursor(conn.name, CURSOR)
    if raw:
        payload = json.loads(raw)
        if datetime.now(UTC) - datetime.fromisoformat(payload["_read_at"]) < MAX_AGE:
            ref = ReferenceData(**{f.name: set(payload.get(f.name, [])) for f in fields(ReferenceData)})
            return ref, tuple(payload["_dimensions"])
    return refresh_reference_data(fieldledger, conn)
