"""The business days the Vantagepoint tests post to, far from every calendar boundary.

The simulated tenant keeps open the twelve monthly periods ending in the month it starts in, and
the twelve before them closed. The 15th of the month two months back is therefore open, already
past, and not a month end, whatever today is (a Sunday, the 1st, 31 Dec 23:30 UTC, 29 Feb); it
stays open if the month turns between this import and the simulator's start. The 15th fifteen
months back is closed either way. test_vp_days.py runs the simulator at those instants to prove it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def fifteenth_months_back(months: int, today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 15)


OPEN_DAY = fifteenth_months_back(2)
CLOSED_DAY = fifteenth_months_back(15)


def period_of(day: date) -> int:
    return day.year * 100 + day.month
