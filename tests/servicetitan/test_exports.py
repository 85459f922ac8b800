"""Export feeds: continuation tokens, changes during a paged read, cursors in the sync store."""

from __future__ import annotations

import httpx

T = 1000001


def test_export_includes_inactive_and_deleted_rows(st_factory):
    running = st_factory()
    client = running.client()
    listed = {i.id for i in client.invoices()}  # all active states, deleted ones excluded
    victim = next(iter(sorted(listed)))
    with running.control() as ctl:
        assert ctl.delete(f"/_sim/records/{T}/invoices/{victim}").json()["deleted"] is True
    exported = {}
    for inv in client.export_invoices():
        exported[inv.id] = inv
    assert set(exported) == listed
    assert exported[victim].active is False
    assert victim not in {i.id for i in client.invoices()}
    assert list(client.invoices(ids=[victim])) == []


def test_records_modified_during_a_paged_read_come_on_a_later_page(st_factory):
    running = st_factory(export_page_size=200)
    client = running.client()
    pages = client.export_pages("invoices")
    first = next(pages)
    assert first.has_more and len(first.records) == 200
    touched = first.records[5]["id"]
    with running.control() as ctl:
        ctl.post(f"/_sim/records/{T}/invoices/{touched}/touch", json={}).raise_for_status()
    later = [r for page in pages for r in page.records]
    again = [r for r in later if r["id"] == touched]
    assert len(again) == 1
    assert again[0]["modifiedOn"] > first.records[5]["modifiedOn"]
    seen = [r["id"] for r in first.records] + [r["id"] for r in later]
    assert len(seen) == len(set(seen)) + 1  # only the touched one twice


def test_cursor_in_the_sync_store_resumes_after_the_last_page(st_factory, store):
    running = st_factory(export_page_size=300)
    client = running.client()
    first = [p.id for p in client.export_payments(store=store, connection="cascade-hvac")]
    token = store.get_cursor("cascade-hvac", "st_export_payments")
    assert first and token
    with running.control() as ctl:
        events = ctl.post("/_sim/live/tick", json={"count": 3, "tenant": T, "eventTypes": ["payment.created"]}).json()
    new_ids = {e["id"] for e in events["events"] if e["eventType"] == "payment.created"}
    assert len(new_ids) == 3
    resumed = {p.id for p in client.export_payments(store=store, connection="cascade-hvac")}
    assert new_ids <= resumed
    assert len(resumed) < 20  # only what changed since the cursor (plus the recent-change window)
    assert store.get_cursor("cascade-hvac", "st_export_payments") != token


def test_recent_changes_wait_out_the_lag_without_include_recent_changes(st_factory):
    running = st_factory()
    client = running.client()
    token = None
    for page in client.export_pages("customers", include_recent_changes=False):
        token = page.continue_from
    with running.control() as ctl:
        created = ctl.post("/_sim/live/tick", json={"count": 1, "tenant": T,
                                                    "eventTypes": ["customer.updated"]}).json()["events"][0]["id"]
    lagging = [r["id"] for p in client.export_pages("customers", token, include_recent_changes=False) for r in p.records]
    assert created not in lagging
    fresh = [r["id"] for p in client.export_pages("customers", token, include_recent_changes=True) for r in p.records]
    assert created in fresh
    running.sim.clock.advance(901)
    after_lag = [r["id"] for p in client.export_pages("customers", token, include_recent_changes=False)
                 for r in p.records]
    assert created in after_lag


def test_export_from_a_date_and_bad_tokens(st):
    client = st.client()
    every = list(client.export_invoices())
    cut = sorted(i.modified_on for i in every)[len(every) // 2]
    since = {i.id for i in client.export_invoices(from_token=cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))}
    assert since == {i.id for i in every if i.modified_on >= cut}
    with st.raw() as http:
        r = http.get(f"/accounting/v2/tenant/{T}/export/invoices", params={"from": "garbage!"})
    assert r.status_code == 400 and "from" in r.json()["errors"]
    assert isinstance(r, httpx.Response)
