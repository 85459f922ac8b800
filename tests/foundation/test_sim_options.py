"""`fieldledger sim up -o KEY=VALUE`: values reach the simulators typed, so ``-o flag=false``
turns a flag off (the text "false" is a truthy non-empty string)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from simulators.launcher import parse_option, parse_options
from simulators.runtime import free_port_block


@pytest.mark.parametrize(("item", "expected"), [
    ("flag=false", ("flag", False)),
    ("flag=False", ("flag", False)),
    ("flag=TRUE", ("flag", True)),
    ("days=40", ("days", 40)),
    ("release_seconds=0.05", ("release_seconds", 0.05)),
    ("tier=trial", ("tier", "trial")),
    ("tenant=00123", ("tenant", "00123")),  # not a JSON number: kept as typed
    ("state_dir=/tmp/a b", ("state_dir", "/tmp/a b")),
    ("ratio=NaN", ("ratio", "NaN")),
    ('field_limits={"Description": 30}', ("field_limits", {"Description": 30})),
    ("empty=", ("empty", "")),
    ("contractor=null", ("contractor", None)),
])
def test_option_values_are_typed(item, expected):
    assert parse_option(item) == expected


def test_an_option_without_a_value_is_refused_with_the_form_to_use():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["tier"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["=x"])


def _payments_paid_on_after(info: dict, day: str) -> list[dict]:
    from resources.servicetitan import ServiceTitanClient

    st = info["servicetitan"]
    creds = st["tenants"]["cascade-hvac"]
    client = ServiceTitanClient(st["base_url"], st["auth_url"], creds["tenant"], creds["client_id"],
                                creds["client_secret"], creds["app_key"])
    return client.get_json("accounting", "payments", {"paidOnAfter": day, "activeState": "All", "pageSize": 5000,
                                                      "includeTotal": "true"})


def test_sim_up_false_turns_a_flag_off(tmp_path: Path):
    """paid_on_after_inclusive=false must leave ``paidOnAfter`` exclusive: no payment dated on
    the asked day comes back. Before typed options, the text "false" switched it on."""
    info_file = tmp_path / "sim.json"
    args = [str(Path(sys.executable).parent / "fieldledger"), "sim", "up", "--port-base", str(free_port_block()),
            "--no-live", "--info-file", str(info_file), "-o", "paid_on_after_inclusive=false",
            "-o", "days=20", "-o", "invoices_per_day=4", "-o", "customers=40", "-o", "tier=trial"]
    with open(tmp_path / "sim.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "FIELDLEDGER_HOME": str(tmp_path)})
        try:
            deadline = time.monotonic() + 90
            while not info_file.exists():
                assert proc.poll() is None, (tmp_path / "sim.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "sim up did not start"
                time.sleep(0.1)
            info = json.loads(info_file.read_text())
            everything = _payments_paid_on_after(info, "2000-01-01T00:00:00Z")["data"]
            days = sorted({date.fromisoformat(p["date"][:10]) for p in everything})
            assert days, "the seed holds no payment"
            day = days[len(days) // 2]  # a day that has payments, whatever the calendar
            after = _payments_paid_on_after(info, f"{day.isoformat()}T00:00:00Z")["data"]
            on_day = [p["id"] for p in after if p["date"][:10] == day.isoformat()]
            assert on_day == [], f"paidOnAfter={day} returned payments of that very day: the flag is on"
            assert {p["id"] for p in after} == {p["id"] for p in everything if p["date"][:10] > day.isoformat()}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
