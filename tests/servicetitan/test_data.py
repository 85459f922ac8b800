"""Seeded data agrees with simulators.contractor and looks like a contractor's year."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from simulators.contractor import (
    CASCADE,
    CONTRACTORS,
    GL_ACCOUNTS,
    ITEM_TYPE_ACCOUNTS,
    PAYMENT_TYPES,
)
from simulators.runtime import SimOptions
from simulators.servicetitan import ServiceTitanSim, build


def test_reference_data_is_the_contractors(st):
    for contractor in CONTRACTORS:
        client = st.client(contractor.key)
        units = {u.id: u.name for u in client.business_units()}
        assert units == {u.id: u.name for u in contractor.business_units}
        assert {g.number: g.name for g in client.gl_accounts()} == {a.number: a.name for a in GL_ACCOUNTS}
        assert {v.id: v.name for v in client.vendors()} == {v.id: v.name for v in contractor.vendors}
        names = {c.name for c in client.customers()}
        assert set(contractor.key_accounts) <= names
        assert any(any(ord(ch) > 127 for ch in n) for n in names)
        payments = list(client.payments())
        assert {p.type for p in payments} == {t.name for t in PAYMENT_TYPES}
        cash = {t.name: t.cash_account for t in PAYMENT_TYPES}
        assert all(p.general_ledger_account.number == cash[p.type] for p in payments)


def test_invoices_carry_the_right_gl_accounts_and_reconcile(st):
    client = st.client()
    trade_account = {u.id: u.trade.revenue_account for u in CASCADE.business_units}
    invoices = list(client.invoices())
    kinds = Counter()
    for inv in invoices:
        assert inv.sub_total == sum(i.total for i in inv.items)
        assert inv.total == inv.sub_total + inv.sales_tax
        for item in inv.items:
            expected = {"Service": trade_account[inv.business_unit.id], "Material": ITEM_TYPE_ACCOUNTS["Material"],
                        "Equipment": ITEM_TYPE_ACCOUNTS["Equipment"], "Unspecified": ITEM_TYPE_ACCOUNTS["Membership"],
                        "PriceModifier": ITEM_TYPE_ACCOUNTS["Discount"]}[item.type]
            assert item.general_ledger_account.number == expected
        kinds["zero" if inv.total == 0 else "credit" if inv.total < 0 else "normal"] += 1
        kinds["multi-line"] += len(inv.items) > 1
        kinds["taxed"] += inv.sales_tax > 0
    assert all(kinds[k] > 0 for k in ("zero", "credit", "normal", "multi-line", "taxed")), kinds
    payments = list(client.payments())
    applied: dict[int, Decimal] = {}
    per_invoice = Counter()
    for p in payments:
        assert p.total == sum(a.applied_amount for a in p.applied_to) + p.unapplied_amount
        for a in p.applied_to:
            applied[a.applied_to] = applied.get(a.applied_to, Decimal(0)) + a.applied_amount
            per_invoice[a.applied_to] += 1
    by_id = {i.id: i for i in invoices}
    for invoice_id, amount in applied.items():
        assert by_id[invoice_id].balance == by_id[invoice_id].total - amount
    assert any(len(p.applied_to) > 1 for p in payments), "no payment over several invoices"
    assert any(n > 1 for n in per_invoice.values()), "no invoice with several payments"
    assert any(by_id[i].balance > 0 for i in applied), "no partial payment"


def test_bills_come_from_received_purchase_orders(st):
    client = st.client()
    pos = {p.id: p for p in client.purchase_orders()}
    bills = list(client.inventory_bills())
    assert bills
    for bill in bills:
        po = pos[bill.purchase_order_id]
        assert po.status in ("Received", "PartiallyReceived")
        assert bill.bill_amount == sum((i.quantity * i.cost).quantize(Decimal("0.01")) for i in bill.items)
        assert all(i.receipt_item_id and i.general_ledger_account.number in ("13000", "50000") for i in bill.items)


def test_same_seed_same_data_and_credentials():
    opts = {"invoices_per_day": 4, "days": 40, "customers": 60}
    a = ServiceTitanSim(SimOptions(seed=3, options=dict(opts)))
    b = ServiceTitanSim(SimOptions(seed=3, options=dict(opts)))
    assert a.info("http://x") == b.info("http://x")
    for tenant in a.tenants:
        rows_a = [(r.id, r.total, r.customer_id, r.day) for r in a.tenants[tenant].tables["invoices"].rows.values()]
        rows_b = [(r.id, r.total, r.customer_id, r.day) for r in b.tenants[tenant].tables["invoices"].rows.values()]
        old = min(len(rows_a), len(rows_b)) - 30  # today's invoices depend on the hour of the build
        assert rows_a[:old] == rows_b[:old]
    c = ServiceTitanSim(SimOptions(seed=4, options=dict(opts)))
    assert c.info("http://x")["client_secret"] != a.info("http://x")["client_secret"]


def test_build_contract_and_info_keys():
    sim = build(SimOptions(options={"invoices_per_day": 2, "days": 10, "customers": 30}))
    assert sim.name == "servicetitan"
    info = sim.info("http://127.0.0.1:9")
    assert {"base_url", "auth_url", "tenant", "client_id", "client_secret", "app_key", "webhook_secret",
            "tenants"} <= set(info)
    assert info["tenant"] == CASCADE.tenant_id and info["auth_url"] == info["base_url"]
    assert set(info["tenants"]) == {c.key for c in CONTRACTORS}
    assert info["client_id"].startswith("cid.") and info["app_key"].startswith("ak1.")
