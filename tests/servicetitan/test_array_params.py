"""Array-typed query parameters travel the spec's way: the ServiceTitan OpenAPI documents type
``statuses``/``reviewStatuses``/``assignedToIds``/``invoiceConfigurations`` (invoices),
``syncStatuses`` (inventory bills) and ``ids`` (vendors) as arrays with the OpenAPI defaults
(form style, explode: true), so a list is ``statuses=Pending&statuses=Posted``. Every value
counts; a comma-joined value is one (invalid) element, as ASP.NET binds it."""

from __future__ import annotations

from collections import Counter

import pytest

T = 1000001
INVOICES = f"/accounting/v2/tenant/{T}/invoices"
BILLS = f"/accounting/v2/tenant/{T}/inventory-bills/paginated"
VENDORS = f"/inventory/v2/tenant/{T}/vendors"


@pytest.fixture(scope="module")
def older():
    """A tenant with history old enough that the seed marks some invoices and bills Posted."""
    from tests.servicetitan.conftest import _start

    running = _start(days=100, invoices_per_day=2, customers=60, purchase_orders_per_day=2)
    yield running
    running.sim.stop_background()
    running.served.stop()


def _ids(http, path, params) -> set[int]:
    body = http.get(path, params=[*params, ("pageSize", 5000)])
    assert body.status_code == 200, body.text
    assert not body.json()["hasMore"]
    return {row["id"] for row in body.json()["data"]}


def _by(rows: list[dict], field: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for row in rows:
        out.setdefault(row[field], set()).add(row["id"])
    return out


def test_repeated_statuses_keep_every_value(older):
    with older.raw() as http:
        everything = http.get(INVOICES, params={"activeState": "All", "pageSize": 5000}).json()["data"]
        by_status = _by(everything, "syncStatus")
        assert {"Pending", "Posted"} <= set(by_status), Counter(r["syncStatus"] for r in everything)
        both = _ids(http, INVOICES, [("activeState", "All"), ("statuses", "Pending"), ("statuses", "Posted")])
        assert both == by_status["Pending"] | by_status["Posted"]
        assert _ids(http, INVOICES, [("activeState", "All"), ("statuses", "Posted")]) == by_status["Posted"]
        # enum names bind case-insensitively, as .NET parses them
        assert _ids(http, INVOICES, [("activeState", "All"), ("statuses", "posted")]) == by_status["Posted"]


def test_review_statuses_and_other_invoice_arrays_filter(older):
    with older.raw() as http:
        everything = http.get(INVOICES, params={"activeState": "All", "pageSize": 5000}).json()["data"]
        by_review = _by(everything, "reviewStatus")
        present = sorted(by_review)
        asked = [("activeState", "All"), *(("reviewStatuses", s) for s in present)]
        assert _ids(http, INVOICES, asked) == {r["id"] for r in everything}
        absent = "OnHold" if "OnHold" not in by_review else "Rejected"
        assert absent not in by_review
        assert _ids(http, INVOICES, [("activeState", "All"), ("reviewStatuses", absent)]) == set()
        configurations = _by(everything, "invoiceConfiguration")
        for name, ids in configurations.items():
            assert _ids(http, INVOICES, [("activeState", "All"), ("invoiceConfigurations", name)]) == ids
        assigned = {r["assignedTo"]["id"] for r in everything if r.get("assignedTo")}
        probe = max(assigned, default=0) + 1
        assert _ids(http, INVOICES, [("activeState", "All"), ("assignedToIds", str(probe))]) == set()


def test_repeated_bill_sync_statuses(older):
    with older.raw() as http:
        everything = http.get(BILLS, params={"pageSize": 5000}).json()["data"]
        by_status = _by(everything, "syncStatus")
        assert {"Pending", "Posted"} <= set(by_status), Counter(r["syncStatus"] for r in everything)
        both = _ids(http, BILLS, [("syncStatuses", "Pending"), ("syncStatuses", "Posted")])
        assert both == by_status["Pending"] | by_status["Posted"]
        assert _ids(http, BILLS, [("syncStatuses", "Pending")]) == by_status["Pending"]


@pytest.mark.parametrize(("path", "name", "value"), [
    (INVOICES, "statuses", "Pending,Posted"),
    (INVOICES, "statuses", "Unknown"),
    (BILLS, "syncStatuses", "Pending,Posted"),
    (VENDORS, "ids", "1,2"),
    (INVOICES, "assignedToIds", "x"),
])
def test_an_element_that_does_not_bind_is_a_400_naming_the_parameter(older, path, name, value):
    with older.raw() as http:
        r = http.get(path, params={name: value})
    assert r.status_code == 400, r.text
    assert name in r.json()["errors"]


def test_vendor_ids_repeat_and_the_client_sends_them_so(older):
    from simulators.contractor import CASCADE

    wanted = sorted(v.id for v in CASCADE.vendors[:3])
    with older.raw() as http:
        assert _ids(http, VENDORS, [("active", "Any"), *(("ids", str(i)) for i in wanted)]) == set(wanted)
    client = older.client()
    assert sorted(v.id for v in client.vendors(ids=wanted)) == wanted


def test_a_string_parameter_given_twice_binds_its_first_value(older):
    """``ids`` of invoices is a comma-delimited string, not an array: ASP.NET binds the first."""
    with older.raw() as http:
        everything = http.get(INVOICES, params={"activeState": "All", "pageSize": 5000}).json()["data"]
        a, b, c = sorted(r["id"] for r in everything)[:3]
        got = _ids(http, INVOICES, [("activeState", "All"), ("ids", f"{a},{b}"), ("ids", str(c))])
    assert got == {a, b}
