"""The operator's commands as a person runs them (real processes, the stack's real database):
connections list|validate, errors list|show, status."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from fieldledger.settings import connections_dir
from mappings.connection import load_connection
from mappings.intake import register
from tests.mappings.test_rules import invoice


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fieldledger.cli", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_connections_list_and_validate(stack):
    listed = cli("connections", "list")
    assert listed.returncode == 0, listed.stderr
    assert "cascade-hvac" in listed.stdout and "acumatica" in listed.stdout and "vantagepoint" in listed.stdout
    assert cli("connections", "validate").returncode == 0
    broken = connections_dir() / "broken-one.yaml"
    broken.write_text("name: broken-one\nstart_date: 2026-01-01\n")
    try:
        result = cli("connections", "validate")
        assert result.returncode == 2
        assert "broken-one.yaml" in result.stdout and "servicetitan: required field is missing" in result.stdout
    finally:
        broken.unlink()


def test_errors_list_show_and_status(stack):
    clean = cli("errors", "list")
    assert clean.returncode == 0 and "no records need attention" in clean.stdout
    conn = load_connection("cascade-hvac")
    register(stack.store, conn, "invoice", [invoice(id=9911, referenceNumber="INV-9911",
                                                    businessUnit={"id": 1999, "name": "Spokane HVAC"})],
             date(2026, 11, 3))
    listed = cli("errors", "list", "--connection", "cascade-hvac")
    assert listed.returncode == 1
    assert "invoice 9911" in listed.stdout and "mapping" in listed.stdout
    record_id = stack.store.records("cascade-hvac", source_id="9911")[0].id
    shown = cli("errors", "show", str(record_id))
    assert shown.returncode == 0, shown.stderr
    assert "business unit 1999 (Spokane HVAC) has no mapping" in shown.stdout
    assert "fieldledger replay --connection cascade-hvac --record 9911" in shown.stdout
    assert "extracted" in shown.stdout and "mapped" in shown.stdout
    status = cli("status")
    assert status.returncode == 1  # an open failure
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("cascade-hvac"))
    assert line.split()[-1] == "1"
    assert cli("errors", "show", "999999").returncode == 2
