"""The bad-record catalogue, once for every ERP: each test states the input, the expected outcome
and the message the operator sees (the record's error class and message in the sync store, which
`fieldledger errors list/show` print). A subclass per ERP supplies the connection, an ``ErpView``
and the ERP's field limits; the class-scoped fixtures run the damaged day once and replay it once.

Not repeated here: an unmapped business unit (quarantined "business unit N (name) has no mapping",
fix "add mapping.business_units.N ... then `fieldledger replay`", posted once after the fix) is
tests/pipeline/test_quarantine_and_replay.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from posting.protocol import FIXES
from tests.badinput.scenario import (
    HOSTILE_NAME,
    LONG_LINE,
    LONG_NAME,
    LONG_REF,
    NEGATIVE_CENTS,
    UNICODE_LINE,
    UNICODE_NAME,
    UNKNOWN_ACCOUNT,
    BadDay,
    ErpView,
    break_day,
    busy_day,
    fix_day,
    latest,
    replay,
)
from tests.pipeline.runs import run_partitions


def utf16_prefix(text: str, units: int) -> str:
    """What an nvarchar(units) column keeps: whole characters, counted in UTF-16 code units."""
    out, used = "", 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            break
        out += ch
    return out


def posted_detail(store, connection: str, source_type: str, source_id: str) -> dict:
    [posted] = [a for a in store.audit_trail(connection, source_type, source_id) if a["step"] == "posted"]
    return posted["detail"]


class BadRecordCases:
    connection: str
    erp_kind: str
    credit_memo_type: str  # how the ERP shows a negative invoice
    name_limit: int
    line_limit: int
    reference_limit: int  # an invoice number

    def erp_view(self, stack) -> ErpView:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def erp(self, stack) -> ErpView:
        return self.erp_view(stack)

    @pytest.fixture(scope="class")
    def bad(self, stack) -> BadDay:
        bad = break_day(stack.info, self.connection, busy_day(stack.info, self.connection))
        assert run_partitions(self.connection, [bad.day], "test").failed_runs == []  # bad records never fail a run
        return bad

    @pytest.fixture(scope="class")
    def replayed(self, stack, bad) -> BadDay:
        fix_day(stack.info, bad)
        replay(stack.store, bad)
        return bad

    # --- first run: each bad record refused (or handled) with its reason --------------------------

    def test_customer_without_a_name_is_quarantined_and_its_invoice_waits(self, stack, bad, erp):
        """Input: a customer whose name is empty in ServiceTitan. Expected: the customer is quarantined
        (class mapping) "customer N: the customer has no name. Fix: give the customer a name in
        ServiceTitan, then replay"; its invoice fails as a dependency naming that customer; nothing posted."""
        customer = latest(stack.store, self.connection, "customer", bad.customer_id("nameless"))
        assert (customer.status, customer.error_class) == ("quarantined", "mapping")
        assert customer.error_message == (f"customer {bad.customer_id('nameless')}: the customer has no name. "
                                          "Fix: give the customer a name in ServiceTitan, then replay")
        invoice = latest(stack.store, self.connection, "invoice", bad.source_id("nameless"))
        assert (invoice.status, invoice.error_class) == ("failed", "dependency"), (invoice.status, invoice.error_message)
        assert f"customer {bad.customer_id('nameless')} is not in the ERP yet (its record is quarantined: " \
               f"customer {bad.customer_id('nameless')}: the customer has no name" in invoice.error_message
        assert erp.invoice(bad.number("nameless")) is None

    def test_invoice_without_lines_is_quarantined(self, stack, bad, erp):
        """Input: an invoice whose items are all 0.00 (and no tax) but whose total is not. Expected:
        quarantined, mapping: "invoice N totals T but has no lines. Fix: add the invoice's items in
        ServiceTitan, then replay"; nothing posted."""
        record = latest(stack.store, self.connection, "invoice", bad.source_id("no_lines"))
        total = Decimal(bad.roles["no_lines"]["subTotal"])
        assert (record.status, record.error_class) == ("quarantined", "mapping")
        assert record.error_message == (f"invoice {bad.source_id('no_lines')}: invoice {bad.number('no_lines')} "
                                        f"totals {total} but has no lines. Fix: add the invoice's items in "
                                        "ServiceTitan, then replay")
        assert erp.invoice(bad.number("no_lines")) is None

    def test_the_operator_sees_the_reason_and_the_fix_in_errors_show(self, stack, bad):
        """`fieldledger errors show ID` for the invoice without lines prints its class, the message
        above and what to do for that class."""
        from typer.testing import CliRunner

        from fieldledger.cli import app

        record = latest(stack.store, self.connection, "invoice", bad.source_id("no_lines"))
        shown = CliRunner().invoke(app, ["errors", "show", str(record.id)])
        assert shown.exit_code == 0, shown.output
        assert "mapping" in shown.output and record.error_message in shown.output
        assert FIXES["mapping"] in shown.output

    def test_zero_total_is_skipped_and_recorded(self, stack, bad, erp):
        """Input: an invoice of 0.00 (every item 0.00). Expected: status skipped (not a failure), audited
        "zero_amount" with the reason "invoice N totals 0.00"; nothing posted."""
        record = latest(stack.store, self.connection, "invoice", bad.source_id("zero"))
        assert (record.status, record.error_class) == ("skipped", None)
        [skip] = [a for a in stack.store.audit_trail(self.connection, "invoice", bad.source_id("zero"))
                  if a["step"] == "skipped"]
        assert skip["outcome"] == "zero_amount"
        assert skip["detail"]["reason"] == f"invoice {bad.number('zero')} totals 0.00"
        assert erp.invoice(bad.number("zero")) is None

    def test_negative_total_posts_as_a_credit_memo(self, stack, bad, erp):
        """Input: an invoice of -123.45 (a refund or adjustment in ServiceTitan). Expected: what an
        accountant keys by hand: a credit memo for 123.45 against the customer (Acumatica: document
        type Credit Memo; Vantagepoint: an AR invoice with negative amounts), posted, never quarantined."""
        record = latest(stack.store, self.connection, "invoice", bad.source_id("negative"))
        assert record.status == "posted", record.error_message
        doc_type, total, _ = erp.invoice(bad.number("negative"))
        assert (doc_type, total) == (self.credit_memo_type, Decimal(NEGATIVE_CENTS) / 100)

    def test_unknown_gl_account_is_quarantined(self, stack, bad, erp):
        """Input: an item on ServiceTitan GL 51000, which a mapping line sends to account 51500, an
        account the ERP does not have. Expected: every such invoice of the day quarantined, mapping:
        "account 51500 not open or not found in <erp>. Fix: add them in the ERP or change mapping in
        connections/<connection>.yaml, then replay"; never posted to another account."""
        for number in bad.unknown_gl:
            assert erp.invoice(number) is None, number
        record = latest(stack.store, self.connection, "invoice", bad.source_id("gl"))
        assert (record.status, record.error_class) == ("quarantined", "mapping")
        assert record.error_message == (
            f"invoice {bad.source_id('gl')}: account {UNKNOWN_ACCOUNT} not open or not found in {self.erp_kind}. "
            f"Fix: add them in the ERP or change mapping in connections/{self.connection}.yaml, then replay")

    def test_payment_applied_to_a_quarantined_invoice_waits_naming_it(self, stack, bad, erp):
        """Input: a payment applied to an invoice that is quarantined (no lines). Expected: the payment
        fails as a dependency, retried automatically, with "invoice N is not in the ERP yet (its record
        is quarantined: ... has no lines ...)"; neither is posted."""
        paid = bad.source_id("paid")
        invoice = latest(stack.store, self.connection, "invoice", paid)
        assert (invoice.status, invoice.error_class) == ("quarantined", "mapping")
        payment = latest(stack.store, self.connection, "payment", bad.payment["id"])
        assert (payment.status, payment.error_class) == ("failed", "dependency")
        assert payment.error_message.startswith(f"invoice {paid} is not in the ERP yet (its record is quarantined: "
                                                f"invoice {paid}: invoice {bad.number('paid')} totals ")
        assert "has no lines" in payment.error_message
        assert FIXES["dependency"].startswith("fix the record it depends on")
        assert erp.invoice(bad.number("paid")) is None

    def test_non_ascii_text_arrives_intact(self, stack, bad, erp):
        """Input: customer "Müller & Søn — Café", an item described "Kältemittel R‑410A geprüft ✓".
        Expected: posted; the ERP shows both exactly (no mojibake, no '?')."""
        assert len(erp.customers_named(UNICODE_NAME)) == 1
        _, _, lines = erp.invoice(bad.number("unicode"))
        assert UNICODE_LINE in lines, lines

    def test_long_text_is_clipped_to_the_erp_limits_and_kept_whole_in_the_store(self, stack, bad, erp):
        """Input: a 300-character customer name (303 UTF-16 units, an emoji across the limit) and a
        308-character item description. Expected: posted, each cut at the ERP's column limit on a whole
        character (UTF-16 code units, never half a surrogate pair); the "posted" audit row lists each
        cut field with its full text (posting/text_limits.py, the same for every ERP), and the record
        keeps the ServiceTitan payload."""
        clipped = utf16_prefix(LONG_NAME, self.name_limit)
        assert len(erp.customers_named(clipped)) == 1
        _, _, lines = erp.invoice(bad.number("long"))
        assert utf16_prefix(LONG_LINE, self.line_limit) in lines
        customer = latest(stack.store, self.connection, "customer", bad.customer_id("long"))
        assert customer.status == "posted" and customer.payload["source"]["name"] == LONG_NAME
        invoice = latest(stack.store, self.connection, "invoice", bad.source_id("long"))
        assert invoice.payload["document"]["lines"][0]["description"] == LONG_LINE
        # the "posted" audit rows say what was cut, with the full text
        assert posted_detail(stack.store, self.connection, "customer", bad.customer_id("long"))["clipped"] == [
            {"field": "name", "length": 303, "kept": self.name_limit, "full_text": LONG_NAME}]
        assert {"field": "lines[0].description", "length": len(LONG_LINE), "kept": self.line_limit,
                "full_text": LONG_LINE} in posted_detail(stack.store, self.connection, "invoice",
                                                         bad.source_id("long"))["clipped"]

    def test_reference_longer_than_the_erp_keeps_fails_before_anything_is_sent(self, stack, bad, erp):
        """Input: an invoice numbered with 45 characters. Expected: never cut (a cut number could match
        another invoice): the record fails, class erp_validation, "invoice N: its reference '...' is 45
        characters; <erp> keeps at most L and a reference is never cut (...). Fix: shorten it in
        ServiceTitan, then `fieldledger replay`", the same words for every ERP; nothing posted."""
        record = latest(stack.store, self.connection, "invoice", bad.source_id("long_ref"))
        assert (record.status, record.error_class) == ("failed", "erp_validation")
        assert record.error_message.startswith(
            f"invoice {bad.source_id('long_ref')}: its reference '{LONG_REF}' is 45 characters; {self.erp_kind} "
            f"keeps at most {self.reference_limit} and a reference is never cut (a cut one could match another "
            "document). Fix: shorten it in ServiceTitan, then `fieldledger replay`")
        assert erp.invoices([LONG_REF]) == {}

    def test_hostile_name_creates_exactly_one_customer(self, stack, bad, erp):
        """Input: a customer named "O'Brien) or (1 eq 1" (a filter injection). Expected: the lookup by
        name matches nothing else, one ERP customer is created with that exact name, the invoice posts."""
        assert len(erp.customers_named(HOSTILE_NAME)) == 1
        assert erp.invoice(bad.number("hostile")) is not None

    # --- after the fixes: replay posts every refused record exactly once -----------------------------

    def test_after_the_fixes_replay_posts_each_refused_record_exactly_once(self, stack, replayed, erp):
        """Fixes: the customer named again, the items restored, the invoice number shortened, the mapping
        corrected. Expected:
        `prepare_replay` + `run_partitions` post each once (audited "replayed" where re-mapped), a
        second replay posts nothing more."""
        bad = replayed
        numbers = {bad.number(r) for r in ("nameless", "no_lines", "paid", "long_ref")} | bad.unknown_gl
        for role in ("nameless", "no_lines", "paid", "gl", "long_ref"):
            record = latest(stack.store, self.connection, "invoice", bad.source_id(role))
            assert record.status == "posted", (role, record.error_message)
        assert latest(stack.store, self.connection, "customer", bad.customer_id("nameless")).status == "posted"
        payment = latest(stack.store, self.connection, "payment", bad.payment["id"])
        assert payment.status == "posted", payment.error_message
        steps = [a["step"] for a in stack.store.audit_trail(self.connection, "invoice", bad.source_id("gl"))]
        assert "replayed" in steps and steps[-1] == "posted"
        replay(stack.store, bad, "badinput-replay-again")  # replay is always safe
        counts = erp.invoices(numbers | {bad.number(r) for r in ("negative", "unicode", "long", "hostile")})
        assert counts == {n: 1 for n in counts} and set(counts) >= numbers, counts
        assert len(erp.customers_named(HOSTILE_NAME)) == 1
