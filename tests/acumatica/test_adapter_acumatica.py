"""The Acumatica adapter under the real posting protocol: ServiceTitan-shaped records mapped with
the demo connection, posted over real sockets into the Acumatica simulator with a real sync store
(PostgreSQL), then read back the way an accountant would."""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from fieldledger.demo_setup import render_template
from mappings.canonical import CashReceipt, Coding, Party, document_from_json
from mappings.connection import parse_connection
from mappings.intake import register
from posting.acumatica import AcumaticaAdapter, UnmappedPaymentType, clip, or_filters, payment_method, period_of
from posting.parties import plain_matches
from posting.protocol import Poster, classify
from posting.reconcile import reconcile
from posting.registry import open_adapter
from resources.vault import Vault

TEMPLATE = Path(__file__).resolve().parents[2] / "mappings" / "connections" / "cascade-hvac.yaml"
DAY = date(2026, 11, 3)
ST_DAY = "2026-11-03T00:00:00Z"


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture
def sim(make_sim):
    """Releases answer at once here (204); test_release_that_runs_in_the_background_is_awaited polls a 202."""
    return make_sim(tier="trial", release_seconds=0)


def connection_for(sim, **account_rules):
    text = render_template(TEMPLATE.read_text(), {"servicetitan": {"base_url": "http://127.0.0.1:9",
                                                                   "auth_url": "http://127.0.0.1:9"},
                                                  "acumatica": sim.info})
    conn = parse_connection(text, TEMPLATE)
    if account_rules:
        accounts = conn.mapping.accounts.model_copy(update=account_rules)
        conn = conn.model_copy(update={"mapping": conn.mapping.model_copy(update={"accounts": accounts})})
    return conn


@pytest.fixture
def conn(sim):
    return connection_for(sim)


def vault_for(store, conn, sim) -> Vault:
    """The connection's Acumatica secrets, stored as `fieldledger init --demo` stores them."""
    vault = Vault(store, keys=[Fernet.generate_key()])
    for name, vault_name in conn.erp.secrets.items():
        vault.set(conn.name, vault_name, sim.info[name])
    return vault


@pytest.fixture
def vault(store, sim, conn):
    return vault_for(store, conn, sim)


@pytest.fixture
def adapter(conn, vault):
    opened = open_adapter(conn, vault)
    yield opened
    opened.close()


# --- ServiceTitan-shaped records ----------------------------------------------------------------

def gl(number):
    return {"id": int(number), "name": f"GL {number}", "number": number, "type": "Income"}


def st_customer(cid, name, **extra):
    return {"id": cid, "name": name, "active": True, **extra}


def st_invoice(iid, customer, unit, items, tax="0.00"):
    total = sum((Decimal(i["total"]) for i in items), Decimal(tax))
    return {"id": iid, "referenceNumber": f"INV-{iid}", "invoiceDate": ST_DAY, "dueDate": "2026-12-03T00:00:00Z",
            "salesTax": tax, "total": str(total), "customer": {"id": customer}, "businessUnit": {"id": unit},
            "job": {"id": iid, "number": f"J-{iid}"}, "items": items}


def item(n, description, qty, price, total, account):
    return {"id": n, "order": n, "type": "Service", "description": description, "quantity": qty, "price": price,
            "total": total, "generalLedgerAccount": gl(account)}


def st_payment(pid, customer, kind, total, applied, unit=1101):
    return {"id": pid, "referenceNumber": f"PMT-{pid}", "date": ST_DAY, "total": total, "type": kind,
            "customer": {"id": customer}, "businessUnit": {"id": unit},
            "appliedTo": [{"appliedTo": inv, "appliedAmount": amount, "appliedToReferenceNumber": f"INV-{inv}"}
                          for inv, amount in applied]}


def st_bill(bid, vendor, unit, items, tax="0.00", shipping="0.00"):
    return {"id": bid, "referenceNumber": f"B-{bid}", "billDate": ST_DAY, "vendor": {"id": vendor},
            "businessUnit": {"id": unit}, "taxAmount": tax, "shippingAmount": shipping,
            "items": [{"id": n, "order": n, "name": name, "quantity": qty, "cost": cost}
                      for n, (name, qty, cost) in enumerate(items, start=1)]}


LONG_NAME = "Ana Núñez 🌲 " + "Ω" * 300
CUSTOMERS = [st_customer(9001, "Pike Place Property Management"),
             st_customer(9002, LONG_NAME, address={"street": "12 Ærøvej " + "x" * 80, "city": "Tacoma",
                                                   "state": "WA", "zip": "98402", "country": "USA"})]
VENDORS = [st_customer(5101, "Ferguson Enterprises"), st_customer(5104, "Winsupply of Everett"),
           st_customer(5111, "Lumière Électrique SARL")]
INVOICES = [
    st_invoice(7001, 9001, 1101, [item(1, "AC repair", "1", "200.00", "200.00", "40100"),
                                  item(2, "Filters", "2", "50.00", "100.00", "41000")], tax="24.60"),
    st_invoice(7002, 9002, 1104, [item(1, "Tune-up, member discount", "1", "150.00", "135.00", "40100")]),
    st_invoice(7003, 9001, 1102, [item(1, "Refund: duplicate visit", "1", "-50.00", "-50.00", "40200")]),
]
PAYMENTS = [st_payment(8001, 9001, "Check", "324.60", [(7001, "324.60")]),
            st_payment(8002, 9002, "Credit Card", "100.00", [(7002, "100.00")], unit=1104)]
BILLS = [st_bill(6001, 5101, 1101, [("Evaporator coil", "2", "125.00")], tax="20.00", shipping="15.00"),
         st_bill(6002, 5104, 1105, [("PEX fittings", "4", "20.00")])]


def intake(store, conn, customers=(), vendors=(), invoices=(), payments=(), bills=()):
    summary = register(store, conn, "customer", customers, DAY)
    for source_type, records in (("vendor", vendors), ("invoice", invoices), ("payment", payments),
                                 ("bill", bills)):
        register(store, conn, source_type, records, DAY, summary=summary)
    return summary


def post(store, conn, adapter, run_id="r1"):
    return Poster(store, adapter, conn.name, run_id).post(store.claim(conn.name, run_id, limit=1000))


def by_ref(acu, entity, ref, expand=None):
    rows = acu.find_by_external_ref(entity, [ref], expand=expand).get(ref, [])
    assert len(rows) == 1, f"{entity} {ref}: {len(rows)} documents"
    return rows[0]


def lines(record):
    return [(r["Branch"], r["Account"], r["Subaccount"], r["Amount"]) for r in record["Details"]]


# --- tests --------------------------------------------------------------------------------------

def test_reference_data_and_seat_released_on_close(conn, vault, sim):
    adapter = AcumaticaAdapter.open(conn, vault)
    ref = adapter.reference_data()
    assert {"12000", "40100", "22000", "13000", "20000"} <= ref.accounts
    assert {"SEA-HVC", "TAC-PLM", "000-000"} <= ref.subaccounts
    assert ref.branches == {"SEATTLE", "TACOMA", "BELLEVUE"}
    # the seeded calendar: the last 24 months open, the three years before them closed (periods.py)
    today = date.today()
    back = lambda months: f"{(today.year * 12 + today.month - 1 - months) // 12}{(today.month - 1 - months) % 12 + 1:02d}"  # noqa: E731
    assert back(30) in ref.closed_periods and back(2) not in ref.closed_periods
    assert adapter.coding_dimensions == ("branch", "subaccount")
    assert adapter.coding_key(Coding(account="40100", branch="SEATTLE", subaccount="SEA-HVC")) == "SEA-HVC"
    assert sim.seats()["in_use"] == 1
    adapter.close()
    assert sim.seats()["in_use"] == 0


def test_posts_everything_once_where_an_accountant_expects_it(store, conn, adapter, acu, sim):
    intake(store, conn, CUSTOMERS, VENDORS, INVOICES, PAYMENTS, BILLS)
    summary = post(store, conn, adapter)
    assert summary.failures == []
    assert (summary.counts["posted"], summary.counts["found_existing"]) == (9, 3)  # 3 parties matched by name

    # parties: key accounts and vendors matched by exact name, the rest created under derived ids
    assert store.lookup(conn.name, "customer", "9001") == "C000101"
    assert store.lookup(conn.name, "customer", "9002") == "ST9002"
    assert [store.lookup(conn.name, "vendor", v) for v in ("5101", "5104", "5111")] == ["FERGUSON", "V5104",
                                                                                        "LUMIERE"]
    created = acu.get("Customer", "ST9002", expand="MainContact,MainContact/Address")
    assert created["CustomerName"] == clip(LONG_NAME, 255) and created["CustomerName"].startswith("Ana Núñez 🌲")
    assert created["MainContact"]["Address"]["City"] == "Tacoma"
    assert created["MainContact"]["Address"]["Country"] == "US"
    assert len(created["MainContact"]["Address"]["AddressLine1"]) == 50
    assert acu.get("Vendor", "V5104")["VendorName"] == "Winsupply of Everett"

    # invoices: on the mapped accounts, branch and subaccount; released; paid by the payment
    inv = by_ref(acu, "Invoice", "INV-7001", expand="Details")
    assert (inv["Type"], inv["Customer"], inv["Status"], inv["Amount"]) == ("Invoice", "C000101", "Closed",
                                                                           Decimal("324.60"))
    assert (inv["LinkARAccount"], inv["LinkBranch"], inv["Date"][:10]) == ("12000", "SEATTLE", "2026-11-03")
    assert lines(inv) == [("SEATTLE", "40100", "SEA-HVC", Decimal("200")),
                          ("SEATTLE", "41000", "SEA-HVC", Decimal("100")),
                          ("SEATTLE", "22000", "SEA-HVC", Decimal("24.6"))]
    assert inv["Description"] == "Job J-7001"
    discounted = by_ref(acu, "Invoice", "INV-7002", expand="Details")
    assert (discounted["Customer"], discounted["Balance"]) == ("ST9002", Decimal("35"))
    assert lines(discounted) == [("TACOMA", "40100", "TAC-HVC", Decimal("135"))]
    memo = by_ref(acu, "Invoice", "INV-7003", expand="Details")
    assert (memo["Type"], memo["Amount"], memo["Status"]) == ("Credit Memo", Decimal("50"), "Open")
    assert lines(memo) == [("SEATTLE", "40200", "SEA-PLM", Decimal("50"))]
    assert store.lookup(conn.name, "invoice", "7003") == f"CRM {memo['ReferenceNbr']}"

    # payments: method and cash account by payment type, applied to the posted invoices
    pay = by_ref(acu, "Payment", "PMT-8001", expand="DocumentsToApply")
    assert (pay["CustomerID"], pay["PaymentMethod"], pay["CashAccount"], pay["PaymentAmount"], pay["Status"]) == (
        "C000101", "CHECK", "10300", Decimal("324.6"), "Closed")
    assert [(d["DocType"], d["ReferenceNbr"], d["AmountPaid"]) for d in pay["DocumentsToApply"]] == [
        ("Invoice", inv["ReferenceNbr"], Decimal("324.6"))]
    card = by_ref(acu, "Payment", "PMT-8002")
    assert (card["PaymentMethod"], card["CashAccount"], card["Branch"]) == ("CREDITCARD", "10200", "TACOMA")

    # bills: against the vendor, lines on inventory / freight with the unit's coding
    bill = by_ref(acu, "Bill", "B-6001", expand="Details")
    assert (bill["Vendor"], bill["Amount"], bill["Status"], bill["BranchID"]) == ("FERGUSON", Decimal("285"), "Open",
                                                                                  "SEATTLE")
    assert lines(bill) == [("SEATTLE", "13000", "SEA-HVC", Decimal("250")),
                           ("SEATTLE", "13000", "SEA-HVC", Decimal("20")),
                           ("SEATTLE", "60000", "SEA-HVC", Decimal("15"))]
    assert by_ref(acu, "Bill", "B-6002")["Vendor"] == "V5104"

    # the ledger agrees with what was posted, to the cent, and with ServiceTitan
    assert adapter.ledger_totals(DAY) == {
        ("invoice", "SEA-HVC"): Decimal("324.60"), ("invoice", "TAC-HVC"): Decimal("135.00"),
        ("invoice", "SEA-PLM"): Decimal("-50.00"), ("bill", "SEA-HVC"): Decimal("285.00"),
        ("bill", "TAC-PLM"): Decimal("80.00"), ("payment", "*"): Decimal("424.60")}
    assert all(row.difference == 0 for row in reconcile(store, conn.name, DAY, adapter))
    assert adapter.ledger_totals(date(2026, 11, 4)) == {}

    # a second run posts nothing new: nothing to claim, not one request to the ERP
    requests = sim.stats()["requests"]
    again = intake(store, conn, CUSTOMERS, VENDORS, INVOICES, PAYMENTS, BILLS)
    assert again.counts["unchanged"] == 12 and again.counts["new"] == 0
    assert post(store, conn, adapter, "r2").counts == {}
    assert sim.stats()["requests"] == requests
    posted = [document_from_json(r.source_type, r.payload["document"])
              for r in store.records(conn.name, statuses=["posted"]) if r.source_type not in ("customer", "vendor")]
    assert adapter.duplicate_external_refs(posted) == {}


def test_crash_after_the_erp_answered_is_found_not_reposted(store, conn, adapter, acu):
    intake(store, conn, CUSTOMERS, VENDORS, INVOICES[:1], PAYMENTS[:1], BILLS[:1])
    post(store, conn, adapter)
    keys = {t: store.lookup(conn.name, t, s) for t, s in (("invoice", "7001"), ("payment", "8001"),
                                                          ("bill", "6001"))}
    with store.transaction() as c:  # the ERP has the documents; our store lost the writes
        c.execute("UPDATE records SET status = 'pending', target_key = NULL "
                  "WHERE source_type IN ('invoice', 'payment', 'bill')")
        c.execute("DELETE FROM id_map WHERE entity IN ('invoice', 'payment', 'bill')")
    summary = post(store, conn, adapter, "r2")
    assert summary.counts["found_existing"] == 3 and summary.counts["posted"] == 0
    assert {t: store.lookup(conn.name, t, s) for t, s in (("invoice", "7001"), ("payment", "8001"),
                                                          ("bill", "6001"))} == keys
    for entity, ref in (("Invoice", "INV-7001"), ("Payment", "PMT-8001"), ("Bill", "B-6001")):
        by_ref(acu, entity, ref)  # still exactly one


def test_edit_updates_an_unreleased_document_and_holds_a_released_one(store, conn, adapter, acu):
    # the invoice reached the ERP but was never released (a failed release, or held by an accountant)
    held = acu.put("Invoice", {"Customer": "C000101", "CustomerOrder": "INV-7101", "Hold": True,
                               "Details": [{"Account": "40100", "Subaccount": "SEA-HVC", "Branch": "SEATTLE",
                                            "Qty": Decimal(1), "UnitPrice": Decimal("10.00")}]})
    v1 = st_invoice(7101, 9001, 1101, [item(1, "Service call", "1", "99.00", "99.00", "40100"),
                                       item(2, "Capacitor", "1", "45.50", "45.50", "41000")])
    intake(store, conn, CUSTOMERS[:1], invoices=[v1])
    summary = post(store, conn, adapter)
    # the customer is found; the held invoice is completed in place (updated + released), not duplicated
    assert (summary.counts["found_existing"], summary.counts["posted"]) == (1, 1)
    assert store.audit_trail(conn.name, "invoice", "7101")[-1]["outcome"] == "completed_existing"
    updated = acu.get("Invoice", held["id"], expand="Details")
    assert (updated["Status"], updated["Amount"], updated["ReferenceNbr"]) == ("Open", Decimal("144.5"),
                                                                               held["ReferenceNbr"])
    assert lines(updated) == [("SEATTLE", "40100", "SEA-HVC", Decimal("99")),
                              ("SEATTLE", "41000", "SEA-HVC", Decimal("45.5"))]

    v2 = st_invoice(7101, 9001, 1101, [item(1, "Service call", "1", "120.00", "120.00", "40100")])
    intake(store, conn, invoices=[v2])
    summary = post(store, conn, adapter, "r3")
    assert summary.counts["needs_review"] == 1
    assert summary.failures[0]["class"] == "conflict" and "was 144.50, now 120.00" in summary.failures[0]["message"]
    assert acu.get("Invoice", held["id"])["Amount"] == Decimal("144.5")  # the released invoice is untouched


def test_releases_running_in_the_background_are_confirmed_by_one_look_up(store, make_sim, caplog):
    """202 + Location releases: the stage's documents are confirmed by a $filter look-up, only the
    earliest still running is polled, and nothing is read back after its release."""
    slow = make_sim(tier="trial", release_seconds=0.5)
    conn = connection_for(slow)
    with closing(open_adapter(conn, vault_for(store, conn, slow))) as adapter:
        intake(store, conn, CUSTOMERS, invoices=INVOICES)
        with caplog.at_level(logging.DEBUG, logger="fieldledger.http"):
            summary = post(store, conn, adapter)
        assert summary.counts == {"posted": 4, "found_existing": 1} and not summary.failures, summary.counts
        for source_id in ("7001", "7002", "7003"):
            number = store.lookup(conn.name, "invoice", source_id).split()[1]
            assert adapter.client.get("Invoice", [INVOICE_TYPES[source_id], number])["Status"] == "Open"
    calls = [r.http["method"] + " " + r.http["path"].split("/24.200.001")[-1] for r in caplog.records
             if hasattr(r, "http")]
    polled = {c.rsplit("/", 1)[1] for c in calls if "/ReleaseInvoice/status/" in c}
    assert calls.count("PUT /Invoice") == 3 and calls.count("POST /Invoice/ReleaseInvoice") == 3
    assert len(polled) == 1, calls  # the earliest release; the look-up after it found the others done
    # the exactly-once look-up runs right before each small group is posted (at most one per
    # document, split across the posting workers), then the stage is confirmed by two look-ups
    assert calls[:calls.index("PUT /Invoice")].count("GET /Invoice") >= 1, calls  # asked before posting
    assert calls.count("GET /Invoice") <= 3 + 2, calls  # three documents, two confirming look-ups
    assert not [c for c in calls if c.startswith("GET /Invoice/Invoice/") or c.startswith("GET /Invoice/Credit")]


INVOICE_TYPES = {"7001": "Invoice", "7002": "Invoice", "7003": "Credit Memo"}


def test_release_failing_in_the_background_fails_the_record_until_a_retry_completes_it(store, make_sim):
    slow = make_sim(tier="trial", release_seconds=2.0)
    conn = connection_for(slow)
    with closing(open_adapter(conn, vault_for(store, conn, slow))) as adapter:
        settle = adapter.settle

        def a_person_holds_it_first():  # while its release is still running
            for (_, key) in list(adapter._releasing):
                adapter.client.put("Invoice", {"Type": "Invoice", "ReferenceNbr": key.split()[1], "Hold": True})
            return settle()

        adapter.settle = a_person_holds_it_first
        intake(store, conn, CUSTOMERS[:1], invoices=INVOICES[:1])
        summary = post(store, conn, adapter)
        assert [f["record"] for f in summary.failures] == ["invoice 7001"]
        assert "is on hold and cannot be released" in summary.failures[0]["message"]
        record = store.records(conn.name, source_type="invoice")[-1]
        assert record.status == "failed" and store.lookup(conn.name, "invoice", "7001") is None
        adapter.settle = settle
        with store.transaction() as c:
            c.execute("UPDATE records SET status = 'pending', next_attempt_at = NULL WHERE status = 'failed'")
        assert post(store, conn, adapter, "r2").counts["posted"] == 1
        rows = adapter.client.find_by_external_ref("Invoice", ["INV-7001"], select="CustomerOrder,Status")["INV-7001"]
        assert [r["Status"] for r in rows] == ["Open"]  # the held document was completed, not duplicated


def test_erp_validation_error_names_the_field(store, sim, vault, acu):
    conn = connection_for(sim, revenue_by_gl_account={"40100": "99999"})
    with closing(AcumaticaAdapter.open(conn, vault)) as adapter:
        intake(store, conn, CUSTOMERS[:1], invoices=INVOICES[:1])
        summary = post(store, conn, adapter)
    assert summary.counts["found_existing"] == 1 and summary.counts["failed"] == 1
    failure = summary.failures[0]
    assert failure["record"] == "invoice 7001" and failure["class"] == "erp_validation"
    assert "Details[1].Account (99999): 'Account' cannot be found in the system." in failure["message"]
    record = store.records(conn.name, source_type="invoice")[-1]
    assert (record.status, record.error_class) == ("failed", "erp_validation")
    assert acu.find_by_external_ref("Invoice", ["INV-7001"]) == {}


def test_party_look_ups_escape_names_and_batch(adapter, sim):
    hostile = Party(source_type="customer", source_id="1", name="O'Brien) or (1 eq 1", erp_id="ST1",
                    match_by_name=True)
    dental = Party(source_type="customer", source_id="2", name="O'Brien Family Dental", erp_id="ST2",
                   match_by_name=True)
    assert plain_matches(adapter, [hostile]) == {}
    assert plain_matches(adapter, [hostile, dental]) == {"2": "C000108"}
    many = [Party(source_type="vendor", source_id=str(i), name=f"Vendor {i}", erp_id=f"V{i}", match_by_name=True)
            for i in range(30)]
    before = sim.stats()["by_status"].get("200", 0)
    assert plain_matches(adapter, [*many, Party(source_type="vendor", source_id="5101", name="Ferguson Enterprises",
                                              erp_id="V5101", match_by_name=True)]) == {"5101": "FERGUSON"}
    assert sim.stats()["by_status"].get("200", 0) - before == 3  # 62 conditions, 25 per request


def test_duplicate_external_refs_are_reported_per_vendor_for_bills(store, conn, adapter, acu):
    intake(store, conn, CUSTOMERS[:1], VENDORS[:2], INVOICES[:1], bills=BILLS[:1])
    post(store, conn, adapter)
    acu.put("Invoice", {"Customer": "C000102", "CustomerOrder": "INV-7001", "Hold": False,
                        "Details": [{"Account": "40100", "Subaccount": "SEA-HVC", "Qty": Decimal(1),
                                     "UnitPrice": Decimal("5.00")}]})
    acu.put("Bill", {"Vendor": "V5104", "VendorRef": "B-6001", "Hold": False,
                     "Details": [{"Account": "13000", "Subaccount": "SEA-HVC", "Qty": Decimal(1),
                                  "UnitCost": Decimal("5.00")}]})
    docs = [document_from_json(r.source_type, r.payload["document"])
            for r in store.records(conn.name, statuses=["posted"]) if r.source_type in ("invoice", "bill")]
    duplicates = adapter.duplicate_external_refs(docs)
    assert list(duplicates) == ["INV-7001"] and len(duplicates["INV-7001"]) == 2
    assert all(key.startswith("INV ") for key in duplicates["INV-7001"])


def test_wire_helpers():
    assert clip("ab🌲c", 3) == "ab" and clip("ab🌲c", 4) == "ab🌲" and clip(None, 3) is None
    long_names = [f"VendorName eq '{'É' * 200} {i}'" for i in range(10)]
    batches = list(or_filters(long_names, 25))
    assert len(batches) > 1 and all(len(quote(b)) < 2048 for b in batches)
    assert sum(b.count(" eq ") for b in batches) == 10
    assert period_of("012025") == period_of("01-2025") == period_of("202501") == "202501"


def test_unknown_payment_type_is_a_mapping_problem():
    receipt = CashReceipt(source_id="1", reference="P-1", customer_id="9", date=DAY, amount=Decimal("5.00"),
                          payment_type="Financing", cash=Coding(account="10100"), ar=Coding(account="12000"))
    with pytest.raises(UnmappedPaymentType, match="'Financing' has no Acumatica payment method") as err:
        payment_method(receipt)
    assert classify(err.value) == "mapping"
