"""The pipeline tests' own runner: each (connection, day) run executes in the test's process on
the stack's instance, so a pipeline test takes seconds. The product submits to the run queue
instead (fieldledger/operations.py); tests/operator/test_sync_queue.py covers that path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from fieldledger.operations import RunOutcome


def run_partitions(connection: str, days: Iterable[date], reason: str,
                   on_done: Callable[[date, bool], None] | None = None, console_level: str = "WARNING") -> RunOutcome:
    from fieldledger.instance import get_instance
    from pipelines.definitions import defs
    from pipelines.jobs import run_tags
    from pipelines.partitions import partition_key

    instance = get_instance()
    job = defs.resolve_job_def("sync")
    outcome = RunOutcome()
    for day in days:
        result = job.execute_in_process(partition_key=partition_key(connection, day), instance=instance,
                                        tags=run_tags(connection, reason), raise_on_error=False,
                                        run_config={"loggers": {"console": {"config": {"log_level": console_level}}}})
        outcome.runs += 1
        if not result.success:
            outcome.failed_runs.append(f"{connection} {day} (run {result.run_id})")
        if on_done:
            on_done(day, result.success)
    return outcome
