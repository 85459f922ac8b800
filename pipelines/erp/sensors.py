"""Automatic retries: a sensor that requests the partitions holding transiently failed records
whose backoff has passed. After MAX_AUTOMATIC_ATTEMPTS a record is left for a person."""


from datetime import UTC, datetime

import dagster as dg

from pipelines.jobs import run_tags, sync_job
from pipelines.partitions import partition_key
from pipelines.resources import FieldledgerResource


@dg.sensor(job=sync_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Re-runs partitions whose failed records are due for another attempt.")
def retry_failed_records_sensor(context: dg.SensorEvaluationContext, fieldledger: FieldledgerResource):
    due = fieldledger.store.due_retry_partitions()
    if not due:
        return dg.SkipReason("no failed records due for a retry")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return dg.SensorResult(run_requests=[
        dg.RunRequest(partition_key=partition_key(conn, day), run_key=f"retry-{stamp}-{conn}-{day}",
                      tags=run_tags(conn, "retry"))
        for conn, day in due
    ])
