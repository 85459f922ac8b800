"""The one partitions definition shared by extract, map and sink assets: connection x business day.

Connections are the connection files present when the code location loads (the two demo
connections when there are none yet); days start at the earliest connection start date.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from mappings.connection import connection_names, load_each

DEMO_CONNECTIONS = ("cascade-hvac", "summit-mechanical")
DEFAULT_START = "2025-11-01"


def _connections() -> tuple[list[str], str]:
    conns, _ = load_each()  # a broken file still has its partitions: fixed, it syncs without a reload
    names = sorted({c.name for c in conns} | set(connection_names()) | set(DEMO_CONNECTIONS))
    start = min([c.start_date for c in conns], default=date.fromisoformat(DEFAULT_START))
    return names, start.isoformat()


CONNECTION_NAMES, START_DATE = _connections()
connection_partitions = dg.StaticPartitionsDefinition(CONNECTION_NAMES)
# Days are business days in the contractor's own zone, keyed by date. The last partition is
# tomorrow in UTC (end_offset=2: today's, plus one): a contractor ahead of UTC is already in its next
# business day, and the webhook sensor and the catch-up request up to today + 1 for that reason.
day_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=2, timezone="UTC")
connection_day = dg.MultiPartitionsDefinition({"connection": connection_partitions, "day": day_partitions})


def partition_key(connection: str, day: date | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"connection": connection, "day": str(day)})


def split(context) -> tuple[str, date]:
    """(connection, day) of the partition an asset or check is running for."""
    keys = context.partition_key.keys_by_dimension
    return keys["connection"], date.fromisoformat(keys["day"])
