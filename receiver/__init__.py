"""The ServiceTitan webhook receiver: verifies each signed delivery and commits it to the sync
store's inbox before answering. It does not process events; the Dagster sensor reads the inbox."""
