"""A document raised late in the contractor's evening is dated on its own local business day, and
fieldledger reads and partitions it there, at the turn of a year and on a leap day: the UTC date
has already moved on, the business day has not."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines.partitions import day_partitions
from pipelines.servicetitan import extract

SEATTLE_OFFSET = timedelta(hours=8)  # cascade-hvac's branches are in Washington (the simulator's PST)


def next_leap_day(after: date) -> date:
    year = after.year
    while not (calendar.isleap(year) and date(year, 2, 29) > after):
        year += 1
    return date(year, 2, 29)


def _evenings(today: date) -> list[date]:
    return [date(today.year, 12, 31) if date(today.year, 12, 31) > today else date(today.year + 1, 12, 31),
            next_leap_day(today)]


@pytest.mark.parametrize("which", ["31 December", "29 February"])
def test_an_invoice_raised_at_23_30_local_lands_on_its_own_business_day(st_factory, which):
    running = st_factory()
    day = _evenings(datetime.now(UTC).date())[0 if which == "31 December" else 1]
    late = datetime.combine(day, datetime.min.time(), UTC) + SEATTLE_OFFSET + timedelta(hours=23, minutes=30)
    assert late.date() == day + timedelta(days=1)  # UTC is already in the next day
    with running.control() as sim:
        now = datetime.fromisoformat(sim.get("/_sim/clock").json()["now"])
        sim.post("/_sim/clock", json={"advance_seconds": (late - now).total_seconds()}).raise_for_status()
        tenant = int(running.creds()["tenant"])
        events = sim.post("/_sim/live/tick", json={"count": 1, "tenant": tenant,
                                                   "eventTypes": ["invoice.created"]}).json()["events"]
    [invoice_id] = [e["id"] for e in events if e["eventType"] == "invoice.created"]

    with running.client() as client:
        [record] = extract.by_ids(client, "invoice", [invoice_id])
        assert record["invoiceDate"][:10] == day.isoformat()
        assert invoice_id in {r["id"] for r in extract.day_records(client, "invoice", day)}
        assert invoice_id not in {r["id"] for r in extract.day_records(client, "invoice", late.date())}

    # the business day's partition exists at that moment (and tomorrow's, for zones ahead of UTC)
    keys = day_partitions.get_partition_keys(current_time=late)
    assert day.isoformat() in keys and keys[-1] == (late.date() + timedelta(days=1)).isoformat()
