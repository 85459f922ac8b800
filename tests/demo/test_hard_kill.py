"""`fieldledger sim up` killed with SIGKILL (no clean stop): whatever a client was told was saved
is there after the restart, the product's clients carry on (new sessions, the check-before-post
finds what was posted), and ServiceTitan's sequences skip ahead so nothing seen is reused."""

from __future__ import annotations

import pickle
import signal

import httpx

from simulators.servicetitan.persist import UNCLEAN_ID_GAP
from simulators.snapshots import snapshot_path
from tests.demo.conftest import st_record
from tests.demo.test_simulator_persistence import acumatica_client, post_acumatica_invoice


def test_sigkill_loses_nothing_a_client_was_told(sim_process):
    info = sim_process.start("--option", "snapshot_seconds=0.5")
    client = acumatica_client(info["acumatica"])
    posted = post_acumatica_invoice(client, "ST-7001", "99.95")
    st = info["servicetitan"]["base_url"]
    tenant = info["servicetitan"]["tenant"]
    created = httpx.post(f"{st}/_sim/live/tick", json={"count": 3, "tenant": tenant,
                                                       "eventTypes": ["invoice.created"]}).json()["events"]
    invoices = [e["id"] for e in created if e["eventType"] == "invoice.created"]
    records = {i: st_record(st, tenant, "invoices", i).json() for i in invoices}

    assert sim_process.kill(signal.SIGKILL) == -signal.SIGKILL
    for name in ("servicetitan", "acumatica", "vantagepoint"):
        with open(snapshot_path(sim_process.state_dir, name), "rb") as handle:
            assert pickle.load(handle)["clean"] is False  # written while running, not by a stop

    sim_process.start()
    # the same client object: its session died with the process; it signs in again by itself
    found = client.find_by_external_ref("Invoice", ["ST-7001"])["ST-7001"]
    assert [(r["ReferenceNbr"], r["Status"]) for r in found] == [(posted["ReferenceNbr"], "Open")]
    again = post_acumatica_invoice(client, "ST-7002", "5.00")
    assert int(again["ReferenceNbr"]) == int(posted["ReferenceNbr"]) + 1
    client.close()

    for invoice_id, record in records.items():
        assert st_record(st, tenant, "invoices", invoice_id).json() == record
    after = httpx.post(f"{st}/_sim/live/tick", json={"count": 1, "tenant": tenant,
                                                     "eventTypes": ["invoice.created"]}).json()["events"]
    new_id = next(e["id"] for e in after if e["eventType"] == "invoice.created")
    assert new_id == max(invoices) + UNCLEAN_ID_GAP + 1  # after a hard stop ids skip ahead: none reused
    assert sim_process.kill(signal.SIGTERM) == 0  # an orderly stop exits 0 ...
    with open(snapshot_path(sim_process.state_dir, "servicetitan"), "rb") as handle:
        assert pickle.load(handle)["clean"] is True  # ... and leaves a clean snapshot
