"""List endpoints: paging limits, ids, filters, and the client's date windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

T = 1000001


def _all_raw(http, path, **params):
    rows, page = [], 1
    while True:
        body = http.get(path, params={**params, "page": page, "pageSize": 5000}).json()
        rows.extend(body["data"])
        if not body["hasMore"]:
            return rows
        page += 1


def test_ids_over_50_is_a_400_and_the_client_batches(st):
    with st.raw() as http:
        ids = [r["id"] for r in _all_raw(http, f"/crm/v2/tenant/{T}/customers", active="Any")][:120]
        r = http.get(f"/crm/v2/tenant/{T}/customers", params={"ids": ",".join(map(str, ids[:51]))})
        assert r.status_code == 400
        assert "Ids" in r.json()["errors"]
        assert http.get(f"/crm/v2/tenant/{T}/customers", params={"ids": ",".join(map(str, ids[:50]))}).status_code == 200
    client = st.client()
    got = [c.id for c in client.customers(ids=ids)]
    assert sorted(got) == sorted(ids)
    assert client.http.stats["requests"] == 3  # 50 + 50 + 20


def test_page_size_limits(st, st_factory):
    url = f"/accounting/v2/tenant/{T}/invoices"
    with st.raw() as http:
        r = http.get(url, params={"pageSize": 5001})
        assert r.status_code == 400 and "PageSize" in r.json()["errors"]
        assert http.get(url, params={"pageSize": 0}).status_code == 400
        body = http.get(url, params={"pageSize": 5000}).json()
        assert body["pageSize"] == 5000 and body["totalCount"] is None
        default = http.get(url).json()
        assert default["page"] == 1 and default["pageSize"] == 50 and len(default["data"]) == 50
        assert default["hasMore"] is True
        with_total = http.get(url, params={"includeTotal": "true", "page": 10_000}).json()
        assert with_total["data"] == [] and with_total["hasMore"] is False and with_total["totalCount"] > 0
        # unknown parameters are ignored silently, as ServiceTitan does
        assert http.get(url, params={"phoneNumber": "555"}).json()["data"] == default["data"]
    lenient = st_factory(page_size_over_max="clamp")
    with lenient.raw() as http:
        assert http.get(url, params={"pageSize": 9000}).json()["pageSize"] == 5000


def test_pages_cover_every_record_once(st):
    with st.raw() as http:
        total = http.get(f"/accounting/v2/tenant/{T}/invoices",
                         params={"includeTotal": "true", "activeState": "All"}).json()["totalCount"]
    client = st.client(page_size=97)
    ids = [i.id for i in client.invoices()]
    assert len(ids) == len(set(ids)) == total


def test_active_filters(st):
    with st.raw() as http:
        url = f"/accounting/v2/tenant/{T}/invoices"
        active = http.get(url, params={"includeTotal": "true"}).json()["totalCount"]
        inactive = http.get(url, params={"includeTotal": "true", "activeState": "InactiveOnly"}).json()
        everything = http.get(url, params={"includeTotal": "true", "activeState": "All"}).json()["totalCount"]
        assert inactive["totalCount"] > 0 and all(not r["active"] for r in inactive["data"])
        assert active + inactive["totalCount"] == everything
        assert http.get(url, params={"activeState": "Sometimes"}).status_code == 400


def test_invoice_date_window_matches_the_full_list(st):
    client = st.client()
    everything = list(client.invoices())
    today = datetime.now(UTC).date()
    lo, hi = today - timedelta(days=10), today - timedelta(days=3)
    expected = {i.id for i in everything if lo <= i.invoice_date.date() < hi}
    got = [i.id for i in client.invoices(invoiced_on_or_after=lo, invoiced_before=hi)]
    assert expected and sorted(got) == sorted(expected)


def test_payment_and_bill_windows_are_exact(st):
    client = st.client()
    today = datetime.now(UTC).date()
    lo, hi = today - timedelta(days=20), today - timedelta(days=5)
    payments = list(client.payments())
    expected = {p.id for p in payments if lo <= p.date.date() < hi}
    assert expected and {p.id for p in client.payments(paid_on_or_after=lo, paid_before=hi)} == expected
    bills = list(client.inventory_bills())
    expected_bills = {b.id for b in bills if lo <= b.bill_date.date() < hi}
    assert expected_bills
    assert {b.id for b in client.inventory_bills(bill_date_on_or_after=lo, bill_date_before=hi)} == expected_bills


def test_modified_window_and_applied_to_filter(st):
    client = st.client()
    payments = list(client.payments())
    since = sorted(p.modified_on for p in payments)[-40]
    recent = {p.id for p in client.payments(modified_on_or_after=since)}
    assert recent == {p.id for p in payments if p.modified_on >= since}
    multi = next(p for p in payments if len(p.applied_to) > 1)
    invoice_ids = [a.applied_to for a in multi.applied_to]
    found = {p.id for p in client.payments(applied_to_invoice_ids=invoice_ids)}
    assert multi.id in found


def test_vendors_take_ids_as_an_array(st):
    from simulators.contractor import CASCADE

    client = st.client()
    wanted = [v.id for v in CASCADE.vendors[:3]]
    assert sorted(v.id for v in client.vendors(ids=wanted)) == wanted


def test_naive_datetimes_are_refused():
    import pytest

    from resources.servicetitan import format_time

    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))
    assert format_time(date(2026, 1, 2)) == "2026-01-02T00:00:00Z"
