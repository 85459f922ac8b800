"""What ServiceTitan says a connection's days hold, mapped with the connection's rules: the
expected side of the pipeline tests (read straight from the ServiceTitan simulator).

Tests never assume that a calendar position (the 15th, the latest weekday, yesterday) holds a
given kind of data: the seed is generated back from the moment the simulator starts, so what a
date holds depends on today's date. ``days_holding`` asks the simulator instead."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from mappings.connection import load_connection
from mappings.rules import MappingError, ZeroAmountDocument, map_record
from pipelines.servicetitan import extract
from resources.servicetitan import ServiceTitanClient


def last_days(n: int) -> list:
    today = datetime.now(UTC).date()
    return [today - timedelta(days=i) for i in range(n - 1, -1, -1)]


def st_client(info: dict, connection: str) -> ServiceTitanClient:
    st = info["servicetitan"]
    t = st["tenants"][connection]
    return ServiceTitanClient(st["base_url"], st["auth_url"], t["tenant"], t["client_id"], t["client_secret"],
                              t["app_key"])


def day_counts(info: dict, connection: str, *, kind: str = "invoice",
               where: Callable[[dict], bool] = lambda raw: True, back: tuple[int, int] = (2, 28)) -> Counter:
    """Day -> how many ``kind`` records matching ``where`` the simulator holds, for each day from
    ``back[0]`` to ``back[1]`` days ago. Days at least two back are complete: no live activity, and
    no "today" that moves when the clock crosses midnight mid-test."""
    today = datetime.now(UTC).date()
    counts: Counter = Counter()
    with st_client(info, connection) as client:
        for ago in range(back[0], back[1] + 1):
            day = today - timedelta(days=ago)
            counts[day] = sum(1 for raw in extract.day_records(client, kind, day) if where(raw))
    return counts


def days_holding(info: dict, connection: str, n: int = 1, *, kind: str = "invoice",
                 where: Callable[[dict], bool] = lambda raw: True, back: tuple[int, int] = (2, 28),
                 minimum: int = 1) -> list[date]:
    """The ``n`` days (oldest first) whose ``kind`` records matching ``where`` are most numerous
    in the simulator (see ``day_counts``), each with at least ``minimum`` of them."""
    counts = day_counts(info, connection, kind=kind, where=where, back=back)
    chosen = [d for d, c in counts.most_common(n) if c >= minimum]
    assert len(chosen) == n, (f"the simulator holds fewer than {n} days with {minimum}+ matching {kind} records "
                              f"{back[0]}-{back[1]} days back: {dict(counts)}")
    return sorted(chosen)


def source_documents(info: dict, connection: str, days) -> dict[str, dict]:
    conn = load_connection(connection)
    docs: dict[str, dict] = {"invoice": {}, "payment": {}, "bill": {}}
    with st_client(info, connection) as client:
        for day in days:
            for kind in docs:
                for raw in extract.day_records(client, kind, day):
                    try:
                        docs[kind][str(raw["id"])] = map_record(kind, raw, conn)
                    except (MappingError, ZeroAmountDocument):
                        pass
    return docs
