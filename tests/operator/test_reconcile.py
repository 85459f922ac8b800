"""`fieldledger reconcile`: a synced month reconciles to the cent (CSV and chart written), and a
document a person voids in the ERP shows up as a highlighted difference with exit 1."""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from mappings.connection import load_connection
from posting.reconcile import reconcile
from posting.registry import open_adapter
from resources.acumatica import AcumaticaClient
from resources.vault import Vault
from tests.operator.conftest import run_cli
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import days_holding

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synced_month(stack):
    """The busiest recent day the simulator holds, synced through Dagster (once per module);
    payments of that day bring the earlier invoices they apply to along (on their own days). The
    month reconciled is that day's month, whichever month today is in."""
    if not getattr(stack, "_synced", None):
        days = days_holding(stack.info, CONNECTION, minimum=10)
        outcome = run_partitions(CONNECTION, days, "test-reconcile")
        assert outcome.failed_runs == []
        stack._synced = days
    days = stack._synced
    return days[0].strftime("%Y-%m"), days


def synced_days(days) -> list[str]:
    """--day for each synced day: ServiceTitan's side comes from ServiceTitan, so the month's other
    days (never synced here) would show everything the ERP lacks."""
    return [arg for day in days for arg in ("--day", day.isoformat())]


def read_csv(path) -> list[dict]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("servicetitan", "erp", "difference"):
            row[column] = Decimal(row[column])
    return rows


def test_a_synced_month_reconciles_with_csv_and_chart(stack, tmp_path):
    month, days = synced_month(stack)
    result = run_cli("reconcile", "--connection", CONNECTION, "--month", month, "--out", str(tmp_path),
                     *synced_days(days))
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = read_csv(tmp_path / f"reconcile-{CONNECTION}-{month}.csv")
    unit_days = {(r["day"], r["business_unit"]) for r in rows}
    assert f"0 of {len(unit_days)} business-unit-days differ, total difference 0.00" in result.stdout
    assert {r["day"] for r in rows} >= {d.isoformat() for d in days}
    assert {"invoice", "payment"} <= {r["document_type"] for r in rows}
    assert "1101 Seattle HVAC" in {r["business_unit"] for r in rows}

    # the CSV says what posting/reconcile.py says, day by day, to the cent
    conn = load_connection(CONNECTION)
    adapter = open_adapter(conn, Vault(stack.store))
    try:
        for day in days:
            expected = {(r.source_type, r.key): (r.servicetitan, r.erp) for r in reconcile(stack.store, CONNECTION,
                                                                                            day, adapter)}
            got = {(r["document_type"], r["key"]): (r["servicetitan"], r["erp"]) for r in rows
                   if r["day"] == day.isoformat()}
            assert got == expected and sum(st for st, _ in got.values()) > Decimal("1000")
    finally:
        adapter.close()
    assert all(r["difference"] == r["erp"] - r["servicetitan"] == 0 for r in rows)

    png = (tmp_path / f"reconcile-{CONNECTION}-{month}.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000
    import matplotlib.pyplot as plt

    image = plt.imread(tmp_path / f"reconcile-{CONNECTION}-{month}.png")
    assert image.shape[0] > 600 and image.shape[1] > 900


def test_a_voided_invoice_is_a_highlighted_difference(stack, tmp_path):
    month, days = synced_month(stack)
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        flt = (f"Date ge datetimeoffset'{days[0]}T00:00:00Z' and "
               f"Date lt datetimeoffset'{days[0] + timedelta(days=1)}T00:00:00Z' and Status eq 'Open'")
        open_invoices = [i for i in acu.list("Invoice", filter=flt, expand="Details") if i["Type"] == "Invoice"]
    assert open_invoices, f"no open invoice on {days[0]} in the ERP after syncing it (all paid the same day?)"
    invoice = open_invoices[0]
    subaccount = invoice["Details"][0]["Subaccount"]
    httpx.post(a["base_url"] + "/_sim/void", json={"entity": "Invoice", "keys": ["Invoice", invoice["ReferenceNbr"]]}
               ).raise_for_status()

    result = run_cli("reconcile", "--connection", CONNECTION, "--month", month, "--out", str(tmp_path),
                     *synced_days(days), env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = read_csv(tmp_path / f"reconcile-{CONNECTION}-{month}.csv")
    off = [r for r in rows if r["difference"] != 0]
    amount = Decimal(str(invoice["Amount"]))
    assert len(off) == 1 and off[0]["day"] == days[0].isoformat() and off[0]["key"] == subaccount
    assert off[0]["difference"] == -amount
    unit_days = {(r["day"], r["business_unit"]) for r in rows}
    assert f"1 of {len(unit_days)} business-unit-days differ, total difference {amount}" in result.stdout
    # the differing row is printed in red; the others are not
    red = [line for line in result.stdout.splitlines() if "\x1b[1;31m" in line and days[0].isoformat() in line]
    assert len(red) == 1 and str(-amount) in red[0] and off[0]["business_unit"] in red[0]

    only = run_cli("reconcile", "--connection", CONNECTION, "--month", month, "--out", str(tmp_path),
                   *synced_days(days), "--only-differences")
    assert only.exit_code == 1
    assert [line for line in only.stdout.splitlines() if line.startswith(days[0].isoformat())] == [
        line for line in only.stdout.splitlines() if str(-amount) in line and line[0].isdigit()]


def test_bad_month_is_bad_usage(stack):
    result = run_cli("reconcile", "--connection", CONNECTION, "--month", "2026-13")
    assert result.exit_code == 2
    assert "--month takes a month as YYYY-MM (e.g. 2026-10), got '2026-13'" in result.stderr


def test_a_day_never_synced_shows_what_the_erp_lacks(stack, tmp_path):
    """ServiceTitan's side is read from ServiceTitan: a day fieldledger never extracted is not
    0.00 = 0.00 (as a reconciliation of our own copy would say) but every invoice missing."""
    _, synced = synced_month(stack)
    day = next(d for d in days_holding(stack.info, CONNECTION, n=2) if d not in synced)
    month = day.strftime("%Y-%m")  # whichever month that day is in
    result = run_cli("reconcile", "--connection", CONNECTION, "--month", month, "--out", str(tmp_path),
                     "--day", day.isoformat(), "--only-differences")
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = read_csv(tmp_path / f"reconcile-{CONNECTION}-{month}.csv")
    invoices = [r for r in rows if r["document_type"] == "invoice"]
    assert invoices and all(r["servicetitan"] > 0 for r in invoices)
    assert sum(r["servicetitan"] - r["erp"] for r in invoices) > 0


def test_a_day_outside_the_month_is_bad_usage(stack):
    month, _ = synced_month(stack)
    result = run_cli("reconcile", "--connection", CONNECTION, "--month", month, "--day", "1999-01-01")
    assert result.exit_code == 2
    assert f"--day 1999-01-01: not a day of {month} up to today" in result.stderr
