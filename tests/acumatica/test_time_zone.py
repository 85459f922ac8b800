"""Dates in the API user's time zone (issue 17). Acumatica answers dates and date-times in the
user's (or site's) time zone and holds a date as that zone's midnight (reference §3, §9.8); the
simulator does so with -o time_zone=<IANA name>, and fieldledger takes the zone from the
connection file (erp.time_zone, default UTC) so every document stays on its own business day and a
day's $filter window is the zone's midnight to midnight.

Days are relative to the simulator's start (the 15th two months back, in an open period)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fieldledger.demo_setup import render_template
from mappings.connection import parse_connection
from posting.acumatica import KINDS, day_filter
from posting.registry import open_adapter
from tests.acumatica.documents import invoice
from tests.acumatica.test_adapter_acumatica import TEMPLATE, connection_for, vault_for
from tests.acumatica.test_closed_periods import OPEN_DAY


def adapter_in(store, sim, zone: str):
    conn = connection_for(sim)
    conn = conn.model_copy(update={"erp": conn.erp.model_copy(update={"time_zone": zone})})
    return open_adapter(conn, vault_for(store, conn, sim))


def test_connection_takes_the_time_zone_and_refuses_unknown_names():
    text = TEMPLATE.read_text()
    assert "time_zone" not in text  # the default is UTC
    rendered = render_template(text, {"servicetitan": {"base_url": "http://127.0.0.1:9", "auth_url": "http://127.0.0.1:9"},
                                      "acumatica": {"base_url": "http://127.0.0.1:9", "tenant": "Cascade"}})
    assert parse_connection(rendered, TEMPLATE).erp.time_zone == "UTC"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        parse_connection(rendered.replace("kind: acumatica", "kind: acumatica\n  time_zone: Mars/Olympus"), TEMPLATE)


def test_day_window_is_the_zones_midnight_to_midnight():
    assert day_filter("Date", date(2026, 3, 8), ZoneInfo("America/Los_Angeles")) == (
        "Date ge datetimeoffset'2026-03-08T00:00:00-08:00' and Date lt datetimeoffset'2026-03-09T00:00:00-07:00'")
    assert day_filter("Date", date(2026, 3, 8)) == (
        "Date ge datetimeoffset'2026-03-08T00:00:00+00:00' and Date lt datetimeoffset'2026-03-09T00:00:00+00:00'")


def test_a_document_stays_on_its_day_east_of_utc(store, make_sim):
    """Tokyo midnight is 15:00 UTC the day before: a UTC window misses the document."""
    sim = make_sim(tier="trial", release_seconds=0, time_zone="Asia/Tokyo")
    acu = sim.client()
    adapter = adapter_in(store, sim, "Asia/Tokyo")
    try:
        saved = acu.put("Invoice", invoice(ref="TZ-1", Date=OPEN_DAY))
        acu.release("Invoice", saved["id"])
        assert saved["Date"] == f"{OPEN_DAY.isoformat()}T00:00:00+09:00"
        totals = adapter.ledger_totals(OPEN_DAY)
        assert totals.get(("invoice", "SEA-HVC"), Decimal(0)) >= Decimal("100.00")
        mine = [r for r in adapter._released_on(KINDS["invoice"], OPEN_DAY) if r["CustomerOrder"] == "TZ-1"]
        assert len(mine) == 1
        day_before = [r for r in adapter._released_on(KINDS["invoice"], OPEN_DAY - timedelta(days=1))
                      if r["CustomerOrder"] == "TZ-1"]
        assert day_before == []
    finally:
        adapter.close()
        acu.close()


def test_late_evening_document_lands_on_the_local_business_day(store, make_sim):
    """23:30 in Los Angeles is the next day in UTC: the simulator dates a document on the user's
    day, answers date-times with the local offset, and fieldledger finds it on that day."""
    zone = ZoneInfo("America/Los_Angeles")
    sim = make_sim(tier="trial", release_seconds=0, time_zone="America/Los_Angeles")
    now = datetime.fromisoformat(sim.http.post("/_sim/clock", json={"advance_seconds": 0}).json()["now"])
    local = now.astimezone(zone)
    evening = datetime.combine(local.date(), datetime.min.time(), tzinfo=zone).replace(hour=23, minute=30)
    if evening <= local:
        evening += timedelta(days=1)
    sim.advance((evening - now).total_seconds())
    business_day = evening.date()
    assert evening.astimezone(UTC).date() == business_day + timedelta(days=1)
    offset = evening.strftime("%z")
    cookie = sim.http.post("/entity/auth/login", json={"name": sim.info["username"], "password": sim.info["password"]})
    assert f"TimeZone=GMTM{offset[1:]}A" in cookie.headers["set-cookie"]  # as observed: GMTM0700A
    sim.http.post("/entity/auth/logout")
    acu = sim.client()
    adapter = adapter_in(store, sim, "America/Los_Angeles")
    try:
        saved = acu.put("Invoice", invoice(ref="TZ-LATE"))  # no Date: the user's "today"
        acu.release("Invoice", saved["id"])
        assert saved["Date"] == f"{business_day.isoformat()}T00:00:00{offset[:3]}:{offset[3:]}"
        stamp = datetime.fromisoformat(saved["LastModifiedDateTime"])
        assert stamp.utcoffset() == evening.utcoffset() and abs(stamp - evening) < timedelta(minutes=5)
        found = [r for r in adapter._released_on(KINDS["invoice"], business_day)
                 if r["CustomerOrder"] == "TZ-LATE"]
        assert len(found) == 1
        assert not [r for r in adapter._released_on(KINDS["invoice"], business_day + timedelta(days=1))
                    if r["CustomerOrder"] == "TZ-LATE"]
    finally:
        adapter.close()
        acu.close()
