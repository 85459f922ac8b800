"""The Vantagepoint adapter under the real posting protocol: ServiceTitan-shaped records mapped with
the demo connection (summit-mechanical), posted over real sockets into the Vantagepoint simulator
with a real sync store (PostgreSQL), then read back from the ledger the way an accountant would."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from fieldledger.demo_setup import render_template
from mappings.canonical import CashReceipt, Coding, Party, document_from_json
from mappings.connection import parse_connection
from mappings.intake import register
from mappings.rules import map_invoice
from posting.parties import plain_matches
from posting.protocol import Poster, classify
from posting.reconcile import reconcile
from posting.registry import open_adapter
from posting.vantagepoint import (
    UnappliedReceipt,
    VantagepointAdapter,
    closed_months,
    render_invoice,
    render_receipt,
)
from resources.vantagepoint import Period
from resources.vault import Vault
from tests.vantagepoint.days import CLOSED_DAY as CLOSED
from tests.vantagepoint.days import OPEN_DAY

TEMPLATE = Path(__file__).resolve().parents[2] / "mappings" / "connections" / "summit-mechanical.yaml"
# A past day of an open period and one of a closed period, far from month ends (days.py).
DAY, CLOSED_DAY = OPEN_DAY, CLOSED
ST_DAY = f"{DAY.isoformat()}T00:00:00Z"
DEN_HVC, DEN_PLM, BOU_HVC, SPR_HVC = "2026-DEN-HVC", "2026-DEN-PLM", "2026-BOU-HVC", "2026-SPR-HVC"


# --- fixtures -----------------------------------------------------------------------------------

def connection_for(vp, **account_rules):
    text = render_template(TEMPLATE.read_text(), {"servicetitan": {"base_url": "http://127.0.0.1:9",
                                                                   "auth_url": "http://127.0.0.1:9"},
                                                  "vantagepoint": vp.info})
    conn = parse_connection(text, TEMPLATE)
    if account_rules:
        accounts = conn.mapping.accounts.model_copy(update=account_rules)
        conn = conn.model_copy(update={"mapping": conn.mapping.model_copy(update={"accounts": accounts})})
    return conn


@pytest.fixture
def conn(vp):
    return connection_for(vp)


@pytest.fixture
def vault(store, conn, vp) -> Vault:
    """The connection's Vantagepoint secrets, stored as `fieldledger init --demo` stores them."""
    vault = Vault(store, keys=[Fernet.generate_key()])
    for name, vault_name in conn.erp.secrets.items():
        vault.set(conn.name, vault_name, vp.info[name])
    return vault


@pytest.fixture
def adapter(conn, vault):
    opened = open_adapter(conn, vault)
    yield opened
    opened.close()


@pytest.fixture
def client(vp):
    return vp.client()


# --- ServiceTitan-shaped records ----------------------------------------------------------------

def gl(number):
    return {"id": int(number), "name": f"GL {number}", "number": number, "type": "Income"}


def st_party(pid, name, **extra):
    return {"id": pid, "name": name, "active": True, **extra}


def st_invoice(iid, customer, unit, items, tax="0.00", day=ST_DAY):
    total = sum((Decimal(i["total"]) for i in items), Decimal(tax))
    return {"id": iid, "referenceNumber": str(iid), "invoiceDate": day, "salesTax": tax, "total": str(total),
            "customer": {"id": customer}, "businessUnit": {"id": unit}, "job": {"id": iid, "number": f"J-{iid}"},
            "items": items}


def item(n, description, qty, price, total, account):
    return {"id": n, "order": n, "type": "Service", "description": description, "quantity": qty, "price": price,
            "total": total, "generalLedgerAccount": gl(account)}


def st_payment(pid, customer, kind, total, applied, unit=2101):
    return {"id": pid, "referenceNumber": f"PMT-{pid}", "date": ST_DAY, "total": total, "type": kind,
            "customer": {"id": customer}, "businessUnit": {"id": unit},
            "appliedTo": [{"appliedTo": inv, "appliedAmount": amount, "appliedToReferenceNumber": str(inv)}
                          for inv, amount in applied]}


def st_bill(bid, vendor, unit, items, tax="0.00", shipping="0.00"):
    return {"id": bid, "referenceNumber": f"B-{bid}", "billDate": ST_DAY, "vendor": {"id": vendor},
            "businessUnit": {"id": unit}, "taxAmount": tax, "shippingAmount": shipping,
            "items": [{"id": n, "order": n, "name": name, "quantity": qty, "cost": cost}
                      for n, (name, qty, cost) in enumerate(items, start=1)]}


LONG_NAME = "Ana Núñez 🌲 " + "Ω" * 300
CUSTOMERS = [st_party(9001, "Front Range Property Group"),
             st_party(9002, LONG_NAME, address={"street": "12 Ærøvej", "city": "Golden", "state": "CO",
                                                "zip": "80401", "country": "USA"})]
VENDORS = [st_party(6101, "Ferguson Enterprises"), st_party(6111, "Lumière Électrique SARL"),
           st_party(6199, "Front Range Pipe & Valve")]
INVOICES = [
    st_invoice(7001, 9001, 2101, [item(1, "AC repair", "1", "200.00", "200.00", "40100"),
                                  item(2, "Filters", "2", "50.00", "100.00", "41000")], tax="24.60"),
    st_invoice(7002, 9002, 2103, [item(1, "Tune-up, member discount", "1", "150.00", "135.00", "40100")]),
    st_invoice(7003, 9001, 2102, [item(1, "Refund: duplicate visit", "1", "-50.00", "-50.00", "40200")],
               tax="-4.10"),
]
PAYMENTS = [st_payment(8001, 9001, "Check", "324.60", [(7001, "324.60")]),
            st_payment(8002, 9002, "Credit Card", "100.00", [(7002, "100.00")], unit=2103)]
BILLS = [st_bill(6001, 6101, 2101, [("Evaporator coil", "2", "125.00")], tax="20.00", shipping="15.00"),
         st_bill(6002, 6199, 2105, [("PEX fittings", "4", "20.00")])]


def intake(store, conn, customers=(), vendors=(), invoices=(), payments=(), bills=()):
    summary = register(store, conn, "customer", customers, DAY)
    for source_type, records in (("vendor", vendors), ("invoice", invoices), ("payment", payments),
                                 ("bill", bills)):
        register(store, conn, source_type, records, DAY, summary=summary)
    return summary


def post(store, conn, adapter, run_id="r1"):
    return Poster(store, adapter, conn.name, run_id).post(store.claim(conn.name, run_id, limit=1000))


def lines(rows):
    """(account, project, org, amount) of the lines a document posted, without its implicit row."""
    return sorted((r.Account, r.WBS1, r.Org, r.Amount) for r in rows if r.SubType != "A")


def document(store, conn, source_type, source_id):
    """The canonical document of a record's latest version."""
    record = store.records(conn.name, source_type=source_type, source_id=source_id)[-1]
    return document_from_json(source_type, record.payload["document"])


def firm_named(client, name):
    (firm,) = client.find_firms_by_name(name)
    return firm


# --- tests --------------------------------------------------------------------------------------

def test_reference_data(adapter):
    ref = adapter.reference_data()
    assert {"12000", "22000", "40100", "13000", "20000", "10300"} <= ref.accounts
    assert {DEN_HVC, DEN_PLM, BOU_HVC, "2026-SPR-ELC"} <= ref.projects
    assert ref.organizations == {"01:DEN", "01:BOU", "01:SPR"}
    assert len(ref.closed_periods) == 12 and CLOSED_DAY.strftime("%Y%m") in ref.closed_periods
    assert DAY.strftime("%Y%m") not in ref.closed_periods
    assert adapter.coding_dimensions == ("project", "organization")
    assert adapter.coding_key(Coding(account="40100", project=DEN_HVC, organization="01:DEN")) == DEN_HVC


def test_posts_everything_once_where_an_accountant_expects_it(store, conn, adapter, client, vp):
    intake(store, conn, CUSTOMERS, VENDORS, INVOICES, PAYMENTS, BILLS)
    summary = post(store, conn, adapter)
    assert summary.failures == []
    assert (summary.counts["posted"], summary.counts["found_existing"]) == (9, 3)  # 3 firms matched by name

    # parties: key accounts and vendors matched by exact name; the rest created as firms
    assert store.lookup(conn.name, "customer", "9001") == firm_named(client, "Front Range Property Group").ClientID
    created = client.get_firm(store.lookup(conn.name, "customer", "9002"))
    assert created.is_client and created.Name.startswith("Ana Núñez 🌲") and len(created.Name) <= 255
    assert (created.PrimaryCity, created.PrimaryCountry) == ("Golden", "United States")
    assert [store.lookup(conn.name, "vendor", v) for v in ("6101", "6111", "6199")] == ["000001", "000011", "V6199"]
    assert firm_named(client, "Front Range Pipe & Valve").Vendor == "V6199"

    # invoices: revenue on the mapped accounts and the unit's project (org from the project), tax
    # in a companion journal entry on the same project, AR debited for the whole invoice
    inv = client.find_posted_invoice("7001")
    assert lines(inv) == [("40100", DEN_HVC, "01:DEN", Decimal("-200.00")),
                          ("41000", DEN_HVC, "01:DEN", Decimal("-100.00"))]
    assert [(r.Account, r.Amount) for r in inv if r.SubType == "A"] == [("12000", Decimal("300.00"))]
    assert store.lookup(conn.name, "invoice", "7001") == f"IN {DEN_HVC} 000000007001"
    tax = client.ledger_by_batch("JE", adapter.tax_batch(document(store, conn, "invoice", "7001")))
    assert sorted((r.Account, r.WBS1, r.Amount) for r in tax) == [("12000", DEN_HVC, Decimal("24.60")),
                                                                 ("22000", DEN_HVC, Decimal("-24.60"))]
    assert lines(client.find_posted_invoice("7002")) == [("40100", BOU_HVC, "01:BOU", Decimal("-135.00"))]
    memo = client.find_posted_invoice("7003")  # a credit memo: negative amounts on the IN lines
    assert lines(memo) == [("40200", DEN_PLM, "01:DEN", Decimal("50.00"))]

    # receipts: the bank of the payment type's cash account, applied to the posted invoices on AR
    cash = client.find_posted_receipt("PMT-8001")
    assert sorted((r.Account, r.WBS1, r.Invoice, r.BankCode, r.Amount) for r in cash) == [
        ("10300", "", "", "10300", Decimal("324.60")), ("12000", DEN_HVC, "000000007001", "10300", Decimal("-324.60"))]
    card = client.find_posted_receipt("PMT-8002")
    assert {(r.BankCode, r.Invoice) for r in card if r.SubType != "A"} == {("10200", "000000007002")}
    balance = vp.raw().get("ARReview/ARBalance", params={"filterHash[0][name]": "Invoice",
                                                         "filterHash[0][value]": "000000007002"}).json()
    assert (balance[0]["OriginalAmt"], balance[0]["Paid"], balance[0]["Balance"]) == (135, 100, 35)

    # vouchers: against the vendor code, inventory and freight lines on the unit's project
    bill = client.find_posted_voucher("000001", "B-6001")
    assert lines(bill) == [("13000", DEN_HVC, "01:DEN", Decimal("20.00")),
                           ("13000", DEN_HVC, "01:DEN", Decimal("250.00")),
                           ("60000", DEN_HVC, "01:DEN", Decimal("15.00"))]
    assert [(r.Account, r.Amount) for r in bill if r.SubType == "A"] == [("20000", Decimal("-285.00"))]
    assert store.lookup(conn.name, "bill", "6001") == "AP 000001 B-6001"
    assert lines(client.find_posted_voucher("V6199", "B-6002")) == [("13000", SPR_HVC, "01:SPR", Decimal("80.00"))]

    # the ledger agrees with what was posted, to the cent, and with ServiceTitan
    assert adapter.ledger_totals(DAY) == {
        ("invoice", DEN_HVC): Decimal("324.60"), ("invoice", BOU_HVC): Decimal("135.00"),
        ("invoice", DEN_PLM): Decimal("-54.10"), ("bill", DEN_HVC): Decimal("285.00"),
        ("bill", SPR_HVC): Decimal("80.00"), ("payment", "*"): Decimal("424.60")}
    assert all(row.difference == 0 for row in reconcile(store, conn.name, DAY, adapter))
    assert adapter.ledger_totals(DAY + timedelta(days=1)) == {}

    # a second run posts nothing new: nothing to claim, not one request to the ERP
    requests = vp.stats()["requests"]
    again = intake(store, conn, CUSTOMERS, VENDORS, INVOICES, PAYMENTS, BILLS)
    assert again.counts["unchanged"] == 12 and again.counts["new"] == 0
    assert post(store, conn, adapter, "r2").counts == {}
    assert vp.stats()["requests"] == requests
    posted = [document_from_json(r.source_type, r.payload["document"])
              for r in store.records(conn.name, statuses=["posted"]) if r.source_type not in ("customer", "vendor")]
    assert adapter.duplicate_external_refs(posted) == {}
    found = adapter.find_documents(posted)
    assert {k: (e.updatable, e.total) for k, e in found.items()} == {
        "7001": (False, "324.60"), "7002": (False, "135.00"), "7003": (False, "-54.10"), "8001": (False, "324.60"),
        "8002": (False, "100.00"), "6001": (False, "285.00"), "6002": (False, "80.00")}


def test_crash_after_the_erp_answered_is_found_not_reposted(store, conn, adapter, client, vp):
    intake(store, conn, CUSTOMERS[:1], VENDORS[:1], INVOICES[:1], PAYMENTS[:1], BILLS[:1])
    post(store, conn, adapter)
    ids = (("invoice", "7001"), ("payment", "8001"), ("bill", "6001"))
    keys = {t: store.lookup(conn.name, t, s) for t, s in ids}
    rows = vp.stats()["ledger_rows"]
    with store.transaction() as c:  # the ERP has the documents; our store lost the writes
        c.execute("UPDATE records SET status = 'pending', target_key = NULL "
                  "WHERE source_type IN ('invoice', 'payment', 'bill')")
        c.execute("DELETE FROM id_map WHERE entity IN ('invoice', 'payment', 'bill')")
    summary = post(store, conn, adapter, "r2")
    assert summary.counts["found_existing"] == 3 and summary.counts["posted"] == 0
    assert {t: store.lookup(conn.name, t, s) for t, s in ids} == keys
    assert vp.stats()["ledger_rows"] == rows  # nothing posted twice
    assert vp.stats()["posted_files"] == {"IN": 1, "CR": 1, "AP": 1, "JE": 1}


def test_a_crash_between_the_invoice_and_its_tax_entry_is_completed(store, conn, adapter, client):
    intake(store, conn, CUSTOMERS[:1], invoices=INVOICES[:1])
    doc = document(store, conn, "invoice", "7001")
    client.submit(render_invoice(doc, adapter.batch(doc), client.period_for(DAY)))  # the IN file made it
    summary = post(store, conn, adapter)
    assert summary.failures == [] and summary.counts["posted"] == 1
    assert store.audit_trail(conn.name, "invoice", "7001")[-1]["outcome"] == "completed_existing"
    assert adapter.ledger_totals(DAY) == {("invoice", DEN_HVC): Decimal("324.60")}
    assert len({r.Batch for r in client.find_posted_invoice("7001")}) == 1


def test_edit_replaces_an_unposted_file_and_holds_a_posted_one(store, conn, adapter, client):
    # an earlier version reached Vantagepoint as a file but was never posted (a crash before
    # PostTransFile, or held by an accountant)
    v0 = map_invoice(st_invoice(7101, 9001, 2101, [item(1, "Service call", "1", "80.00", "80.00", "40100")]), conn)
    client.create_file(render_invoice(v0, adapter.batch(v0), client.period_for(DAY)))
    v1 = st_invoice(7101, 9001, 2101, [item(1, "Service call", "1", "99.00", "99.00", "40100"),
                                       item(2, "Capacitor", "1", "45.50", "45.50", "41000")])
    intake(store, conn, CUSTOMERS[:1], invoices=[v1])
    summary = post(store, conn, adapter)
    assert (summary.counts["found_existing"], summary.counts["posted"]) == (1, 1)
    assert store.audit_trail(conn.name, "invoice", "7101")[-1]["outcome"] == "completed_existing"
    rows = client.find_posted_invoice("7101")
    assert lines(rows) == [("40100", DEN_HVC, "01:DEN", Decimal("-99.00")),
                           ("41000", DEN_HVC, "01:DEN", Decimal("-45.50"))]

    v2 = st_invoice(7101, 9001, 2101, [item(1, "Service call", "1", "120.00", "120.00", "40100")])
    intake(store, conn, invoices=[v2])
    summary = post(store, conn, adapter, "r3")
    assert summary.counts["needs_review"] == 1
    assert summary.failures[0]["class"] == "conflict" and "was 144.50, now 120.00" in summary.failures[0]["message"]
    assert client.find_posted_invoice("7101") == rows  # the posted invoice is untouched


def test_erp_validation_error_names_the_field(store, vp, vault, client):
    conn = connection_for(vp, revenue_by_gl_account={"40100": "99999"})
    with closing(VantagepointAdapter.open(conn, vault)) as adapter:
        intake(store, conn, CUSTOMERS[:1], invoices=INVOICES[:1])
        summary = post(store, conn, adapter)
    assert summary.counts["found_existing"] == 1 and summary.counts["failed"] == 1
    failure = summary.failures[0]
    assert failure["record"] == "invoice 7001" and failure["class"] == "erp_validation"
    assert "account 99999 does not exist" in failure["message"]
    record = store.records(conn.name, source_type="invoice")[-1]
    assert (record.status, record.error_class) == ("failed", "erp_validation")
    assert client.find_posted_invoice("7001") == [] and vp.stats()["files"]["IN"] == 0


def test_a_closed_period_is_refused_with_the_period_named(store, conn, adapter, vp):
    old = st_invoice(7201, 9001, 2101, [item(1, "Old job", "1", "10.00", "10.00", "40100")],
                     day=f"{CLOSED_DAY.isoformat()}T00:00:00Z")
    intake(store, conn, CUSTOMERS[:1], invoices=[old])
    summary = post(store, conn, adapter)
    failure = summary.failures[0]
    assert failure["class"] == "erp_validation"
    assert f"accounting period {CLOSED_DAY.strftime('%Y%m')}" in failure["message"]
    assert "is closed in Vantagepoint: reopen it there" in failure["message"]
    assert vp.stats()["files"]["IN"] == 0


def test_party_look_ups_escape_names_and_batch(adapter, vp):
    hostile = Party(source_type="customer", source_id="1", name="O'Brien) or (1 eq 1", erp_id="ST1",
                    match_by_name=True)
    star = Party(source_type="customer", source_id="2", name="%", erp_id="ST2", match_by_name=True)
    nino = Party(source_type="customer", source_id="3", name="Niño's Taquería Group", erp_id="ST3",
                 match_by_name=True)
    assert plain_matches(adapter, [hostile, star]) == {}
    assert plain_matches(adapter, [hostile, star, nino]) == {"3": firm_named(vp.client(), nino.name).ClientID}
    many = [Party(source_type="vendor", source_id=str(i), name=f"Vendor {i}", erp_id=f"V{i}", match_by_name=True)
            for i in range(30)]
    ferguson = Party(source_type="vendor", source_id="6101", name="Ferguson Enterprises", erp_id="V6101",
                     match_by_name=True)
    before = vp.stats()["by_status"].get("200", 0)
    assert plain_matches(adapter, [*many, ferguson]) == {"6101": "000001"}
    assert vp.stats()["by_status"].get("200", 0) - before == 9  # key formats; 31 codes, 31 names: 10 a request


def test_duplicate_external_refs_are_reported(store, conn, adapter, client):
    intake(store, conn, CUSTOMERS[:1], VENDORS[:1], INVOICES[:1], bills=BILLS[:1])
    post(store, conn, adapter)
    doc = document(store, conn, "invoice", "7001")
    client.create_file(twin := render_invoice(doc, "MANUAL7001", client.period_for(DAY)))
    client.post_files([("IN", twin.batch, twin.period)])  # keyed again by hand: Vantagepoint accepts it
    docs = [document_from_json(r.source_type, r.payload["document"])
            for r in store.records(conn.name, statuses=["posted"]) if r.source_type in ("invoice", "bill")]
    duplicates = adapter.duplicate_external_refs(docs)
    assert list(duplicates) == ["7001"] and len(duplicates["7001"]) == 2
    assert all(key.startswith(f"IN {DEN_HVC} 000000007001 (batch ") for key in duplicates["7001"])


def test_a_payment_that_is_not_fully_applied_is_a_mapping_gap():
    receipt = CashReceipt(source_id="1", reference="P-1", customer_id="9", date=DAY, amount=Decimal("50.00"),
                          payment_type="Check", cash=Coding(account="10300"), ar=Coding(account="12000"))
    with pytest.raises(UnappliedReceipt, match="50.00 received but 0.00 applied") as err:
        render_receipt(receipt, "B", 202611, "10300", [])
    assert classify(err.value) == "mapping"


def test_closed_months_only_lists_months_no_open_period_covers():
    def period(number, start, end, closed):
        return Period(Period=number, AccountPdStart=start, AccountPdEnd=end, ActiveCompanyClosed="Y" if closed else "N")

    periods = [period(202601, "2026-01-01", "2026-01-31", True), period(202602, "2026-02-01", "2026-02-14", True),
               period(202603, "2026-02-15", "2026-03-31", False)]
    assert closed_months(periods) == {"202601"}  # February is partly open: left to the ERP to refuse
