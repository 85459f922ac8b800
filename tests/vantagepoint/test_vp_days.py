"""The Vantagepoint tests' posting days (days.py) hold on the awkward dates: the tenant runs with
its clock set to a Sunday, the first minutes of a month, 31 Dec 23:30 UTC (and, started an hour
later, in the new year), and 29 Feb 2028; the open day takes a posted invoice, the closed day is
refused as closed."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from resources.http import ValidationError
from resources.vantagepoint import InvoiceLine, TransactionFile, batch_id
from tests.vantagepoint.days import fifteenth_months_back, period_of

INSTANTS = {
    "sunday": "2026-12-06T12:00:00+00:00",
    "first-of-month": "2027-03-01T00:05:00+00:00",
    "new-years-eve": "2026-12-31T23:30:00+00:00",
    "leap-day": "2028-02-29T12:00:00+00:00",
}


@pytest.mark.parametrize("later", [timedelta(0), timedelta(hours=1)], ids=["same-moment", "tenant-an-hour-later"])
@pytest.mark.parametrize("instant", list(INSTANTS.values()), ids=list(INSTANTS))
def test_posting_days_are_open_and_closed_on_awkward_dates(make_vp, instant, later):
    today = datetime.fromisoformat(instant)
    open_day, closed_day = fifteenth_months_back(2, today.date()), fifteenth_months_back(15, today.date())
    vp = make_vp(clock_start=(today + later).isoformat())  # the test imported at `today`, the tenant later
    client = vp.client()
    assert client.period_for(open_day) == period_of(open_day) < vp.period()
    tf = TransactionFile("IN", batch_id("IN", "days", str(open_day)), period_of(open_day))
    tf.add_invoice("4242", "2026-DEN-HVC", open_day, [InvoiceLine("40100", Decimal("99.95"))])
    assert client.submit(tf).outcome == "posted"
    with pytest.raises(ValidationError, match="closed"):
        client.period_for(closed_day)
