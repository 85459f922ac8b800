"""One business day of bad ServiceTitan records, pushed through the real pipeline (ServiceTitan
simulator -> run_partitions -> ERP simulator), then fixed at the source and replayed.

The ServiceTitan simulator is made to serve each bad record through its /_sim/records control
(``set`` plain fields, ``items`` to edit an invoice's items); the mapping is broken the way
tests/pipeline/test_quarantine_and_replay.py does it, by editing the connection file. Each ERP's
test module asks the same questions through a small ``ErpView``, so both adapters are held to the
same expectations without a second copy of the scenario.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

import httpx

from fieldledger.operations import prepare_replay
from fieldledger.settings import connections_dir
from mappings.connection import load_connection
from pipelines.servicetitan import extract
from resources.servicetitan import ServiceTitanClient
from tests.pipeline.runs import run_partitions
from tests.pipeline.source import days_holding

UNICODE_NAME = "Müller & Søn — Café"
UNICODE_LINE = "Kältemittel R‑410A geprüft ✓"  # 28 characters: fits every ERP's line description
HOSTILE_NAME = "O'Brien) or (1 eq 1"
# 300 characters, a character outside the BMP (two UTF-16 code units) straddling position 255
LONG_NAME = "Großhandel " + "Ä" * 240 + "🔧" * 3 + "Z" * 46
LONG_LINE = "Wartung " + "Ü" * 300
UNKNOWN_ACCOUNT = "51500"  # where a wrong mapping line sends ServiceTitan GL 51000: in neither ERP
MAPPED_GL = "51000"  # a ServiceTitan GL account no seeded invoice item uses
NEGATIVE_CENTS = -12345
LONG_REF = "INV-" + "7" * 41  # 45 characters: more than Acumatica (40) or Vantagepoint (12) keeps


class ErpView(Protocol):
    """What a test reads back from the ERP, the way an accountant would look it up."""

    def customers_named(self, name: str) -> list[str]: ...

    def invoice(self, number: str) -> tuple[str, Decimal, list[str]] | None:
        """(document type, signed total, line descriptions) of the posted invoice, or None."""

    def invoices(self, numbers: Iterable[str]) -> dict[str, int]:
        """How many posted documents carry each number."""


def cents(text) -> int:
    return int((Decimal(str(text)) * 100).to_integral_value())


class StControl:
    """The ServiceTitan simulator's /_sim/records control for one tenant."""

    def __init__(self, info: dict, connection: str):
        st = info["servicetitan"]
        self.tenant = int(st["tenants"][connection]["tenant"])
        self.http = httpx.Client(base_url=st["base_url"], timeout=30)

    def record(self, kind: str, record_id) -> dict:
        return self.http.get(f"/_sim/records/{self.tenant}/{kind}/{record_id}").raise_for_status().json()["record"]

    def patch(self, kind: str, record_id, *, set: dict | None = None, items: list[dict] | None = None) -> dict:
        body: dict = {"set": set or {}}
        if items is not None:
            body["items"] = items
        answer = self.http.post(f"/_sim/records/{self.tenant}/{kind}/{record_id}/touch", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["record"]

    def delete(self, kind: str, record_id) -> None:
        self.http.delete(f"/_sim/records/{self.tenant}/{kind}/{record_id}").raise_for_status()


def st_client(info: dict, connection: str) -> ServiceTitanClient:
    st = info["servicetitan"]
    t = st["tenants"][connection]
    return ServiceTitanClient(st["base_url"], st["auth_url"], t["tenant"], t["client_id"], t["client_secret"],
                              t["app_key"])


def busy_day(info: dict, connection: str, days_back: int = 3) -> date:
    """The day at least ``days_back`` days ago (its invoices have payments by now) on which the
    simulator holds the most invoices: never a calendar position assumed to hold data."""
    return days_holding(info, connection, back=(days_back, days_back + 21), minimum=20)[0]


@dataclass
class BadDay:
    """Which ServiceTitan record plays which bad part on ``day``, with what is needed to fix it."""

    connection: str
    day: date
    roles: dict[str, dict] = field(default_factory=dict)  # role -> the invoice's raw record (before the damage)
    names: dict[str, str] = field(default_factory=dict)  # customer id -> original name
    payment: dict = field(default_factory=dict)  # the payment applied to the invoice that gets quarantined
    unknown_gl: set[str] = field(default_factory=set)  # invoice numbers with a GL 51000 item that day
    mapping_text: str = ""

    def number(self, role: str) -> str:
        return self.roles[role]["referenceNumber"]

    def source_id(self, role: str) -> str:
        return str(self.roles[role]["id"])

    def customer_id(self, role: str) -> str:
        return str(self.roles[role]["customer"]["id"])


def break_day(info: dict, connection: str, day: date) -> BadDay:
    """Choose the day's records and damage them in the ServiceTitan simulator (and the mapping)."""
    with st_client(info, connection) as client:
        invoices = extract.day_records(client, "invoice", day)
        payments = extract.day_records(client, "payment", day)
    bad = BadDay(connection, day)
    applied = {a["appliedTo"] for p in payments for a in p.get("appliedTo") or []}
    with st_client(info, connection) as client:
        earlier = extract.by_ids(client, "invoice", sorted(applied - {i["id"] for i in invoices}))
    everything = invoices + earlier
    uses: dict[int, int] = {}
    for record in everything + payments:
        uses[record["customer"]["id"]] = uses.get(record["customer"]["id"], 0) + 1
    # the payment: applied to exactly one invoice, whose customer has nothing else that day
    by_id = {i["id"]: i for i in everything}
    bad.payment = next(p for p in payments if len(p.get("appliedTo") or []) == 1
                       and Decimal(p["total"]) > 0 and p["appliedTo"][0]["appliedTo"] in by_id
                       and uses[p["customer"]["id"]] == 2 and Decimal(by_id[p["appliedTo"][0]["appliedTo"]]["total"]) > 0)
    bad.roles["paid"] = by_id[bad.payment["appliedTo"][0]["appliedTo"]]
    taken = {bad.roles["paid"]["id"]}
    # the other roles: positive invoices on the day, each the only document of its customer that day
    candidates = [i for i in invoices if i["id"] not in taken and uses[i["customer"]["id"]] == 1
                  and Decimal(i["total"]) > 0 and i.get("items") and i["id"] not in applied]
    for role, invoice in zip(("nameless", "no_lines", "zero", "negative", "unicode", "long", "hostile", "gl",
                              "long_ref"), candidates, strict=False):
        bad.roles[role] = invoice
    assert len(bad.roles) == 10, f"{day} has too few invoices for the scenario ({len(candidates)} candidates)"
    st = StControl(info, connection)
    for role in ("nameless", "unicode", "long", "hostile"):
        cid = bad.customer_id(role)
        bad.names[cid] = st.record("customers", cid)["name"]
        st.patch("customers", cid, set={"name": {"nameless": "", "unicode": UNICODE_NAME, "long": LONG_NAME,
                                                 "hostile": HOSTILE_NAME}[role]})
    for role in ("no_lines", "paid"):  # every item at 0.00, no tax, the total unchanged: nothing to post it with
        st.patch("invoices", bad.source_id(role), set={"tax": 0},
                 items=[{"total": 0} for _ in bad.roles[role]["items"]])
    st.patch("invoices", bad.source_id("zero"), set={"subtotal": 0, "tax": 0},
             items=[{"total": 0, "price": 0} for _ in bad.roles["zero"]["items"]])
    st.patch("invoices", bad.source_id("negative"), set={"subtotal": NEGATIVE_CENTS, "tax": 0},
             items=[{"total": NEGATIVE_CENTS, "price": NEGATIVE_CENTS, "qty": 100}])
    first = bad.roles["unicode"]["items"][0]
    st.patch("invoices", bad.source_id("unicode"), items=[{"description": UNICODE_LINE}]
             + [{} for _ in bad.roles["unicode"]["items"][1:]])
    assert first["description"] != UNICODE_LINE
    st.patch("invoices", bad.source_id("long"), items=[{"description": LONG_LINE}]
             + [{} for _ in bad.roles["long"]["items"][1:]])
    st.patch("invoices", bad.source_id("long_ref"), set={"number": LONG_REF})
    st.patch("invoices", bad.source_id("gl"), items=[{"account": MAPPED_GL}] + [{} for _ in bad.roles["gl"]["items"][1:]])
    # a mapping line sends ServiceTitan GL 51000 to an account the ERP does not have
    path = connections_dir() / f"{connection}.yaml"
    bad.mapping_text = path.read_text()
    broken = bad.mapping_text.replace("    revenue_by_gl_account:\n",
                                      f'    revenue_by_gl_account:\n      "{MAPPED_GL}": "{UNKNOWN_ACCOUNT}"\n', 1)
    assert broken != bad.mapping_text
    path.write_text(broken)
    with st_client(info, connection) as client:
        now = extract.day_records(client, "invoice", day)
    bad.unknown_gl = {i["referenceNumber"] for i in now
                      if any((it.get("generalLedgerAccount") or {}).get("number") == MAPPED_GL
                             and Decimal(it["total"]) != 0 for it in i["items"])}
    assert bad.number("gl") in bad.unknown_gl
    return bad


def fix_day(info: dict, bad: BadDay) -> None:
    """Undo the damage that a person would fix: the nameless customer, the invoices without lines,
    the over-long invoice number, the mapping. (Zero, negative, non-ASCII and long texts are not errors.)"""
    st = StControl(info, bad.connection)
    st.patch("invoices", bad.source_id("long_ref"), set={"number": bad.number("long_ref")})
    st.patch("customers", bad.customer_id("nameless"), set={"name": bad.names[bad.customer_id("nameless")]})
    for role in ("no_lines", "paid"):
        invoice = bad.roles[role]
        st.patch("invoices", bad.source_id(role), set={"tax": cents(invoice["salesTax"])},
                 items=[{"total": cents(i["total"])} for i in invoice["items"]])
    (connections_dir() / f"{bad.connection}.yaml").write_text(bad.mapping_text)


def replay(store, bad: BadDay, run_id: str = "badinput-replay") -> set[date]:
    """`fieldledger replay --failed` for the connection: re-map, requeue, run the days."""
    days = prepare_replay(store, load_connection(bad.connection), only_failed=True, day=None, record=None,
                          run_id=run_id)
    assert run_partitions(bad.connection, sorted(days), "replay").failed_runs == []
    return days


def latest(store, connection: str, source_type: str, source_id: str):
    versions = store.records(connection, source_type=source_type, source_id=str(source_id))
    assert versions, f"{source_type} {source_id} is not in the sync store"
    return versions[-1]
