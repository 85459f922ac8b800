"""A business unit with no mapping: its documents are quarantined with a clear reason and nothing is
posted for them; fix the mapping, replay, and they post exactly once (audited as replayed)."""

from __future__ import annotations

from collections import Counter

import pytest

from fieldledger.operations import open_failures, prepare_replay
from fieldledger.settings import connections_dir
from mappings.connection import load_connection
from resources.acumatica import AcumaticaClient
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import days_holding, source_documents

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"
UNIT = 1106  # Bellevue HVAC


def unit_block(text: str) -> tuple[str, str]:
    start = text.index(f"    {UNIT}:\n")
    end = text.index("\n    ", start + 10)
    while text[end + 5] == " ":  # the unit's own indented lines
        end = text.index("\n    ", end + 1)
    return text[start:end + 1], text


def test_unmapped_unit_is_quarantined_then_replayed_after_the_fix(stack):
    # the day the simulator holds the most of this unit's invoices, read with the complete mapping
    days = days_holding(stack.info, CONNECTION, where=lambda raw: raw["businessUnit"]["id"] == UNIT, minimum=2)
    expected = source_documents(stack.info, CONNECTION, days)
    affected = {d.number for d in expected["invoice"].values() if d.business_unit_id == UNIT}
    assert affected, "the seed should have invoices for this unit on that day"
    path = connections_dir() / f"{CONNECTION}.yaml"
    original = path.read_text()
    block, _ = unit_block(original)
    path.write_text(original.replace(block, ""))
    assert UNIT not in load_connection(CONNECTION).mapping.business_units
    assert run_partitions(CONNECTION, days, "test").failed_runs == []

    quarantined = [r for r in open_failures(stack.store, CONNECTION) if r.source_type == "invoice"]
    assert {r.error_class for r in quarantined} == {"mapping"}
    assert all(f"business unit {UNIT} (Bellevue HVAC) has no mapping" in r.error_message for r in quarantined)
    assert all(f"mapping.business_units.{UNIT}" in r.error_message for r in quarantined)
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        posted_refs = Counter(i["CustomerOrder"] for i in acu.iter_all("Invoice"))
    assert not affected & set(posted_refs), "nothing may be posted for an unmapped business unit"

    path.write_text(original)  # the fix
    replay_days = prepare_replay(stack.store, load_connection(CONNECTION), only_failed=True, day=None,
                                 record=None, run_id="replay-test")
    assert set(days) & replay_days  # (plus the days of earlier invoices the payments apply to)
    assert run_partitions(CONNECTION, sorted(replay_days), "replay").failed_runs == []
    assert [r for r in open_failures(stack.store, CONNECTION)] == []
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        posted_refs = Counter(i["CustomerOrder"] for i in acu.iter_all("Invoice"))
    assert all(posted_refs[ref] == 1 for ref in affected)
    one = next(r for r in quarantined)
    steps = [a["step"] for a in stack.store.audit_trail(CONNECTION, "invoice", one.source_id)]
    assert "replayed" in steps and steps[-1] == "posted"
