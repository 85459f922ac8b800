"""Jobs: the per-partition sync (extract -> map -> post -> reconcile) and the reference-data read.

The sync job runs in process: one run per (connection, day) is small, and a process per step
would add seconds to every webhook's path to the ledger.
"""

from __future__ import annotations

import dagster as dg

from pipelines.partitions import connection_day, connection_partitions

SYNC_SELECTION = dg.AssetSelection.groups("servicetitan", "mapping", "reconciliation") | dg.AssetSelection.assets(
    "erp_postings")

sync_job = dg.define_asset_job(
    "sync",
    selection=SYNC_SELECTION,
    partitions_def=connection_day,
    executor_def=dg.in_process_executor,
    description="Extract a connection's day from ServiceTitan, map it, post it to the ERP, reconcile it.",
)

reference_job = dg.define_asset_job(
    "erp_reference",
    selection=dg.AssetSelection.assets("erp_reference_data"),
    partitions_def=connection_partitions,
    executor_def=dg.in_process_executor,
    description="Re-read the ERP's chart of accounts, subaccounts, branches / projects.",
)


# Queue order: fresh webhook work first, then operator actions, then background catch-up/retries.
PRIORITY = {"webhook": 10, "replay": 5, "cli-sync": 0, "reference": 0, "retry": -5, "catch-up": -10,
            "backfill": -10}


def run_tags(connection: str, reason: str) -> dict[str, str]:
    """Tags every fieldledger run carries: the queue allows one run per connection at a time and
    starts webhook runs before catch-up and retry runs."""
    return {"fieldledger/connection": connection, "fieldledger/reason": reason,
            "dagster/priority": str(PRIORITY.get(reason, 0))}
