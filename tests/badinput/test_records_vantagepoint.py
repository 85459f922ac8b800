"""The bad-record catalogue (tests/badinput/record_cases.py) through the pipeline into Deltek
Vantagepoint, plus what only Vantagepoint shows here: a document dated in a closed accounting period."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import httpx
import pytest

from fieldledger.operations import prepare_replay
from mappings.connection import load_connection
from pipelines.servicetitan import extract
from posting.vantagepoint import KINDS, implicit_total
from resources.vantagepoint import VantagepointClient
from tests.badinput.record_cases import BadRecordCases
from tests.badinput.scenario import busy_day, latest, st_client
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import day_counts

pytestmark = pytest.mark.slow
CONNECTION = "summit-mechanical"


class VantagepointView:
    """Vantagepoint read through its API: firms by name, the posted AR ledger by invoice number."""

    def __init__(self, info: dict):
        self.v = info["vantagepoint"]

    def client(self) -> VantagepointClient:
        v = self.v
        return VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                                  v["password"], rate_per_second=200)

    def customers_named(self, name: str) -> list[str]:
        with self.client() as vp:
            return [f.ClientID for f in vp.find_firms_where("Name", [name]) if f.is_client and f.Name == name]

    def invoice(self, number: str) -> tuple[str, Decimal, list[str]] | None:
        with self.client() as vp:
            rows = vp.find_posted_invoice(number)
        if not rows:
            return None
        assert len({r.Batch for r in rows}) == 1, rows
        return ("IN", implicit_total(KINDS["invoice"], rows),
                [(r.model_extra or {}).get("Desc2") for r in rows if r.SubType != "A"])  # the line's Description

    def invoices(self, numbers: Iterable[str]) -> dict[str, int]:
        counts = {}
        with self.client() as vp:
            for number in numbers:
                rows = vp.find_posted_invoice(number)
                if rows:
                    counts[number] = len({(r.WBS1, r.Batch) for r in rows})
        return counts


class TestVantagepointBadRecords(BadRecordCases):
    connection = CONNECTION
    erp_kind = "vantagepoint"
    credit_memo_type = "IN"  # Vantagepoint has no credit memo type: an AR invoice with negative amounts
    name_limit = 255  # CL.Name
    line_limit = 40  # transaction line Description
    reference_limit = 12  # RefnoLength of the simulated database

    def erp_view(self, stack) -> VantagepointView:
        return VantagepointView(stack.info)

    def test_document_in_a_closed_period_fails_until_the_period_is_opened(self, stack, erp):
        """Input: a day whose accounting period is closed in Vantagepoint (the simulator refuses
        postings into it, as Vantagepoint does). Expected: each document of the day fails, class
        erp_validation, "accounting period P (holding D) is closed in Vantagepoint: reopen it there
        (Settings > Accounting Periods) or correct the document date in ServiceTitan, then
        `fieldledger replay`; nothing was posted"; nothing reaches the ledger. After the period is
        opened, a replay posts each exactly once."""
        # a quiet day (a few documents, a short run) in an accounting month the other cases do not use
        busy = busy_day(stack.info, CONNECTION)
        counts = day_counts(stack.info, CONNECTION, where=lambda raw: Decimal(raw["total"]) != 0, back=(35, 70))
        day = min((d for d, n in counts.items() if n and (d.year, d.month) != (busy.year, busy.month)),
                  key=lambda d: (counts[d], d))
        with st_client(stack.info, CONNECTION) as client:
            invoices = [i for i in extract.day_records(client, "invoice", day) if Decimal(i["total"]) != 0]
        assert invoices, f"no invoices on {day}"
        with erp.client() as vp:
            [period] = [p.Period for p in vp.list_periods()
                        if p.AccountPdStart and p.AccountPdStart.date() <= day <= p.AccountPdEnd.date()]
        control = f"{stack.info['vantagepoint']['control_url']}/periods/{period}"
        httpx.put(control, json={"closed": True}).raise_for_status()
        try:
            assert run_partitions(CONNECTION, [day], "test").failed_runs == []
            for invoice in invoices:
                record = latest(stack.store, CONNECTION, "invoice", invoice["id"])
                assert (record.status, record.error_class) == ("failed", "erp_validation"), record.error_message
                assert record.error_message.startswith(
                    f"accounting period {period} (holding {day}) is closed in Vantagepoint: reopen it there "
                    "(Settings > Accounting Periods) or correct the document date in ServiceTitan, then "
                    "`fieldledger replay`; nothing was posted")
                assert erp.invoice(invoice["referenceNumber"]) is None
        finally:
            httpx.put(control, json={"closed": False}).raise_for_status()  # the fix
        days = prepare_replay(stack.store, load_connection(CONNECTION), only_failed=True, day=day, record=None,
                              run_id="badinput-period")
        assert run_partitions(CONNECTION, sorted(days), "replay").failed_runs == []
        for invoice in invoices:
            assert latest(stack.store, CONNECTION, "invoice", invoice["id"]).status == "posted"
        counts = erp.invoices(i["referenceNumber"] for i in invoices)
        assert counts == {i["referenceNumber"]: 1 for i in invoices}
