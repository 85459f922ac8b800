"""Metadata a person reads in the Dagster UI: counts and a table of failures with the fix."""

from __future__ import annotations

import dagster as dg

FAILURE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("record", "string"), dg.TableColumn("class", "string"),
    dg.TableColumn("message", "string"), dg.TableColumn("fix", "string"),
])


def failures_table(rows: list[dict], limit: int = 50) -> dg.MetadataValue:
    records = [dg.TableRecord({k: str(r.get(k, ""))[:300] for k in ("record", "class", "message", "fix")})
               for r in rows[:limit]]
    return dg.MetadataValue.table(records=records, schema=FAILURE_SCHEMA)
