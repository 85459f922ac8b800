"""Issue 22, break 5 and its reconciliation: money comes from ServiceTitan's own amounts, and
reconciliation reads ServiceTitan's side from ServiceTitan, not from fieldledger's mapping.

Over real sockets: the ServiceTitan simulator (a seeded bill chosen by asking it, its lines set to
quantities whose cost has half cents), one day synced through Dagster into the Acumatica
simulator, the embedded PostgreSQL sync store."""

from __future__ import annotations

from contextlib import closing
from decimal import Decimal

import httpx
import pytest

from mappings.connection import load_connection
from pipelines.servicetitan.extract import day_records
from posting.reconcile import from_servicetitan, from_store, reconcile
from posting.registry import open_adapter
from resources.acumatica import AcumaticaClient
from resources.vault import Vault
from tests.operator.conftest import stack  # noqa: F401 - the shared module-scoped fixture
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import days_holding, st_client

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"
# Two bill lines whose quantity x cost ends in half a cent: 2.50 x 1.01 = 2.525 and 0.50 x 0.01 =
# 0.005. ServiceTitan rounds them up, to 2.53 and 0.01 (billAmount 2.54); half-even rounding made
# them 2.52 and 0.00, and the 0.00 line was dropped: 2.52 posted.
HALF_CENT_LINES = [{"qty": 250, "cost": 101}, {"qty": 50, "cost": 1}]


def st_control(stack, path: str, body: dict) -> None:  # noqa: F811
    st = stack.info["servicetitan"]
    tenant = st["tenants"][CONNECTION]["tenant"]
    httpx.post(f"{st['base_url']}/_sim/records/{tenant}/{path}", json=body, timeout=30).raise_for_status()


def st_bill(stack, day, bill_id: int) -> dict:  # noqa: F811
    with st_client(stack.info, CONNECTION) as client:
        [bill] = [b for b in day_records(client, "bill", day) if b["id"] == bill_id]
    return bill


def stated_total(bill: dict) -> Decimal:
    return sum((Decimal(bill[f] or "0") for f in ("billAmount", "taxAmount", "shippingAmount", "otherAmount")),
               Decimal("0"))


def erp_bill(stack, reference: str) -> dict:  # noqa: F811
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        rows = acu.find_by_external_ref("Bill", [reference], expand="Details").get(reference, [])
    assert len(rows) == 1, f"bill {reference}: {len(rows)} in Acumatica"
    return rows[0]


def synced_half_cent_bill(stack):  # noqa: F811
    """A seeded bill with two or more items, given half-cent lines in ServiceTitan, and its day
    synced (once per module)."""
    if not getattr(stack, "_half_cent", None):
        [day] = days_holding(stack.info, CONNECTION, kind="bill", where=lambda raw: len(raw.get("items") or []) >= 2)
        with st_client(stack.info, CONNECTION) as client:
            bill_id = min(b["id"] for b in day_records(client, "bill", day) if len(b.get("items") or []) >= 2)
        st_control(stack, f"inventory-bills/{bill_id}/touch", {"lines": HALF_CENT_LINES})
        assert st_bill(stack, day, bill_id)["billAmount"] == "2.54"
        outcome = run_partitions(CONNECTION, [day], "test-half-cents")
        assert outcome.failed_runs == []
        stack._half_cent = (day, bill_id)
    return stack._half_cent


def reconciled(stack, day, source=None):  # noqa: F811
    conn = load_connection(CONNECTION)
    with closing(open_adapter(conn, Vault(stack.store))) as adapter:
        if source == "api":
            with st_client(stack.info, CONNECTION) as client:
                return reconcile(stack.store, conn, day, adapter, from_servicetitan(client))
        return reconcile(stack.store, conn, day, adapter, from_store(stack.store, CONNECTION))


def test_a_bill_posts_servicetitans_amount_to_the_cent(stack):  # noqa: F811
    """Break 5: the bill's lines were re-rounded half-even and a 0.00 line dropped (5.67 in
    ServiceTitan, 5.64 posted). Now the ERP bill carries ServiceTitan's amounts, line by line."""
    day, bill_id = synced_half_cent_bill(stack)
    bill = st_bill(stack, day, bill_id)
    record = stack.store.records(CONNECTION, source_type="bill", source_id=str(bill_id))[-1]
    assert record.status == "posted", (record.status, record.error_message)
    posted = erp_bill(stack, bill["referenceNumber"])
    assert Decimal(str(posted["Amount"])) == stated_total(bill)
    items = [Decimal(str(d["Amount"])) for d in posted["Details"]][:2]
    assert items == [Decimal("2.53"), Decimal("0.01")]
    # and reconciliation, from either source of ServiceTitan's records, agrees to the cent
    for source in ("api", "store"):
        assert [r for r in reconciled(stack, day, source) if r.difference] == []


def test_reconciliation_reads_servicetitan_not_our_mapping(stack):  # noqa: F811
    """The bill is edited in ServiceTitan after it was posted and the change never synced (a lost
    webhook): what the store mapped still matches the ERP, so a ServiceTitan side computed from
    the mapping reported 0.00. Read from ServiceTitan, the business unit's bills differ by the edit."""
    day, bill_id = synced_half_cent_bill(stack)
    before = stated_total(st_bill(stack, day, bill_id))
    st_control(stack, f"inventory-bills/{bill_id}/touch", {"lines": [{"qty": 350, "cost": 101}]})
    after = st_bill(stack, day, bill_id)
    assert stated_total(after) == before + Decimal("1.01") - Decimal("0.01")  # 3.54 instead of 2.53 + 0.01
    conn = load_connection(CONNECTION)
    unit = conn.mapping.business_units[after["businessUnit"]["id"]]
    rows = reconciled(stack, day, "api")
    off = [r for r in rows if r.difference]
    assert [(r.source_type, r.key, r.difference) for r in off] == [("bill", unit.subaccount, Decimal("-1.00"))]
    # the records as extracted (what the store holds from ServiceTitan) still agree with the ERP
    assert [r for r in reconciled(stack, day, "store") if r.difference] == []
