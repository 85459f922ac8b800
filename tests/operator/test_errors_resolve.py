"""A conflict closed by hand, in both ERPs: an invoice edited in ServiceTitan after its document was
released in Acumatica (posted in Vantagepoint) is held as needs_review, its fix naming the record's
id; after the accountant adjusts it in the ERP, `errors resolve` records that, and later runs
neither post it again nor reopen the conflict. (A Vantagepoint conflict used to be a plain failure
that neither `errors resolve` nor `replay` could close.)"""

from __future__ import annotations

import pytest

from tests.badinput.scenario import StControl, busy_day
from tests.operator.conftest import run_cli
from tests.pipeline.runs import run_partitions

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("CONNECTION", ["cascade-hvac", "summit-mechanical"])
def test_conflict_resolved_by_hand_is_never_posted_again(stack, CONNECTION):  # noqa: N803 - reads as the module constant
    day = busy_day(stack.info, CONNECTION, 4)
    assert run_partitions(CONNECTION, [day], "first").failed_runs == []
    posted = [r for r in stack.store.records(CONNECTION, statuses=["posted"], business_date=day)
              if r.source_type == "invoice"]
    assert posted, "the day posted no invoices"
    target = posted[0]

    st = StControl(stack.info, CONNECTION)
    items = [{} for _ in st.record("invoices", target.source_id)["items"]]
    items[0] = {"description": "Replaced the compressor (edited after release)"}
    st.patch("invoices", target.source_id, items=items)
    run_partitions(CONNECTION, [day], "after the edit")
    (conflict,) = stack.store.records(CONNECTION, statuses=["needs_review"], source_id=target.source_id)
    assert conflict.error_class == "conflict" and "released" in conflict.error_message
    shown = run_cli("errors", "show", str(conflict.id))
    assert f"fieldledger errors resolve {conflict.id} --note" in shown.output, shown.output

    wrong = run_cli("errors", "resolve", str(posted[1].id), "--note", "nothing to do")
    assert wrong.exit_code == 2 and "only conflicts are resolved by hand" in wrong.output

    done = run_cli("errors", "resolve", str(conflict.id), "--note", "credit memo CM000042 and re-invoiced")
    assert done.exit_code == 0, done.output
    assert f"marked reviewed against {target.target_key}" in done.output

    run_partitions(CONNECTION, [day], "after the review")
    versions = stack.store.records(CONNECTION, source_type="invoice", source_id=target.source_id)
    assert [v.status for v in versions if v.id == conflict.id] == ["posted"]
    assert not stack.store.records(CONNECTION, statuses=["needs_review", "failed"], source_id=target.source_id)
    trail = stack.store.audit_trail(CONNECTION, "invoice", target.source_id)
    reviewed = [a for a in trail if a["step"] == "reviewed"]
    assert len(reviewed) == 1 and reviewed[0]["detail"]["note"] == "credit memo CM000042 and re-invoiced"
    assert trail[-1]["step"] != "posted" or trail[-1]["outcome"] != "created", "the edit was posted a second time"


def test_an_unknown_error_class_is_bad_usage(stack):
    """`errors list --class bogus` used to answer 'no records need attention' with exit 0."""
    result = run_cli("errors", "list", "--class", "bogus")
    assert result.exit_code == 2
    assert "--class 'bogus' is not an error class; use one of auth, conflict, dependency" in result.stderr
