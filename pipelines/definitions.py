"""The Dagster code location: every asset, check, job, sensor and schedule of fieldledger."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from pipelines.erp.assets import ASSETS as ERP_ASSETS
from pipelines.erp.sensors import erp_changes_sensor, erp_existence_check_sensor, retry_failed_records_sensor
from pipelines.jobs import reference_job, run_tags, sync_job
from pipelines.mapping.assets import ASSETS as MAPPING_ASSETS
from pipelines.reconciliation.assets import ASSETS as RECONCILIATION_ASSETS
from pipelines.resources import FieldledgerResource
from pipelines.run_health import dead_run_sweeper
from pipelines.servicetitan.assets import ASSETS as SERVICETITAN_ASSETS
from pipelines.servicetitan.schedules import servicetitan_catch_up
from pipelines.servicetitan.sensors import webhook_inbox_sensor


@dg.schedule(name="erp_reference_daily", cron_schedule="15 1 * * *", job=reference_job,
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Re-read each ERP's chart of accounts and structure nightly, one run per active connection.")
def reference_schedule(context: dg.ScheduleEvaluationContext):
    """One run per connection partition, with the connection's tags (a run of a partitioned job
    without a partition key failed every night: 'Cannot access partition_key for a non-partitioned run')."""
    from pipelines.erp.sensors import active_connections

    when = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y%m%d")
    requests = [dg.RunRequest(partition_key=c.name, run_key=f"reference-{when}-{c.name}", tags=run_tags(c.name, "reference"))
                for c in active_connections()]
    return requests or dg.SkipReason("no active connection")

defs = dg.Definitions(
    assets=[*SERVICETITAN_ASSETS, *MAPPING_ASSETS, *ERP_ASSETS, *RECONCILIATION_ASSETS],
    jobs=[sync_job, reference_job],
    sensors=[webhook_inbox_sensor, retry_failed_records_sensor, erp_changes_sensor, erp_existence_check_sensor,
             dead_run_sweeper],
    schedules=[servicetitan_catch_up, reference_schedule],
    resources={"fieldledger": FieldledgerResource()},
    # Runs the UI or an asset backfill launches (the implicit asset job) execute in process like the
    # sync job: the default multiprocess executor started a process per step, ~10 s each (bench/backfill_year.py).
    executor=dg.in_process_executor,
)
