"""The Dagster UI as an operator sees it, in a real browser: the ServiceTitan -> mapping -> ERP ->
reconciliation lineage, the materialized partitions of both demo connections, and a failed check
that says what is wrong and how to fix it. Writes the README's screenshots to docs/images/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GROUPS = ("servicetitan", "mapping", "erp", "reconciliation")
WAIT = 60_000  # ms: the first page of a cold webserver loads the code location's data


def dependency_edges() -> int:
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    return sum(len(graph.get(key).parent_keys) for key in graph.get_all_asset_keys())


def asset_keys() -> list[str]:
    from pipelines.definitions import defs

    return sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())


def fit_whole_graph(page) -> dict:
    """Zoom the lineage so every group is inside the canvas below the toolbar, centred; returns the
    graph's bounds on screen. (Dagster's own fit ignores the toolbar drawn over the canvas.)"""
    canvas = page.locator("[data-svg-viewport='1']")
    box = canvas.bounding_box()
    canvas.dblclick(position={"x": 20, "y": box["height"] - 20})  # double-click on the background: fit
    toolbar = page.locator("[class*=topbarWrapper]").bounding_box()
    top, bottom = toolbar["y"] + toolbar["height"], box["y"] + box["height"]

    def bounds() -> dict:
        return page.evaluate("""() => {
            const r = [...document.querySelectorAll('[data-svg-viewport] svg foreignObject')]
                .map(e => e.getBoundingClientRect()).filter(b => b.width > 2);
            return {top: Math.min(...r.map(b => b.top)), bottom: Math.max(...r.map(b => b.bottom)),
                    left: Math.min(...r.map(b => b.left)), right: Math.max(...r.map(b => b.right))};
        }""")

    zoom_out = page.get_by_role("button", name="zoom_out", exact=True)
    for _ in range(4):
        wait_until_still(page, bounds)
        b = bounds()
        if b["bottom"] - b["top"] <= bottom - top - 20:
            break
        zoom_out.click()
    b = bounds()
    shift = (top + (bottom - top - (b["bottom"] - b["top"])) / 2) - b["top"]
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] - 20)
    page.mouse.wheel(0, -shift / 0.7)  # the wheel pans the canvas at 0.7 px per unit
    wait_until_still(page, bounds)
    return bounds() | {"canvas_top": top, "canvas_bottom": bottom, "canvas_left": box["x"],
                       "canvas_right": box["x"] + box["width"]}


def wait_until_still(page, measure, tries: int = 40) -> None:
    """Wait for the canvas's zoom/pan animation to end (two equal measurements in a row)."""
    last = None
    for _ in range(tries):
        now = measure()
        if now == last:
            return
        last = now
        page.wait_for_timeout(100)


def _open_until_shown(page, url: str, text: str, attempts: int = 3) -> None:
    """Open ``url`` until ``text`` is on it: on a loaded machine the lineage page sometimes stays
    empty behind an alert (its first asset-graph query outlived the page's wait; seen in a
    suite run under faketime at 2027-01-01), and a reload asks again."""
    for attempt in range(attempts):
        page.goto(url) if attempt == 0 else page.reload()
        try:
            expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=WAIT)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def test_asset_graph_shows_the_lineage_from_servicetitan_to_the_erp(page, ui):
    expanded = ",".join(f"global%40global%3A{group}" for group in GROUPS)
    _open_until_shown(page, f"{ui.url}/asset-groups?expanded={expanded}", "st_invoices")
    for key in ("st_invoices", "st_payments", "mapped_documents", "erp_postings", "reconciliation"):
        expect(page.get_by_text(key, exact=True).first).to_be_visible(timeout=WAIT)
    page.get_by_role("button", name="panel_show_right", exact=True).click()  # hide the sidebar: room for the graph
    graph = fit_whole_graph(page)
    assert graph["top"] >= graph["canvas_top"] and graph["bottom"] <= graph["canvas_bottom"], graph
    assert graph["left"] >= graph["canvas_left"] and graph["right"] <= graph["canvas_right"], graph
    for group in GROUPS:
        expect(page.get_by_text(group, exact=True).filter(visible=True).first).to_be_in_viewport()
    for key in asset_keys():
        label = key if len(key) <= 16 else re.compile(f"^{key[:7]}.*{key[-8:]}$")  # long names are elided
        expect(page.get_by_text(label).filter(visible=True).first).to_be_in_viewport()
    # every dependency is drawn: ServiceTitan -> mapping -> ERP -> reconciliation, across the groups
    expect(page.locator("[data-svg-viewport='1'] svg path[marker-end]")).to_have_count(dependency_edges())
    screenshot(page, "asset-graph")


GREEN = "[style*='accent-green']"


def row(partition_list, key: str):
    """One row (connection or day) of the asset's partition lists."""
    return partition_list.locator("[class*=assetListRow]").filter(has=partition_list.page.locator(f"[title='{key}']"))


def test_partitions_of_both_connections_show_the_days_materialized(page, ui):
    page.goto(f"{ui.url}/assets/erp_postings?view=partitions")
    materialized = sum(len(days) for days in ui.days.values())
    expect(page.get_by_text(f"Materialized ({materialized})")).to_be_visible(timeout=WAIT)
    first = min(d for days in ui.days.values() for d in days)
    last = max(d for days in ui.days.values() for d in days)
    span = page.get_by_placeholder(re.compile("^ex: "))
    span.fill(f"[{first - timedelta(days=10)}...{last + timedelta(days=1)}]")
    span.press("Enter")
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()  # show only what was materialized
    expect(page.get_by_text(f"{materialized} Partitions Selected")).to_be_visible()
    connections, days_list = (page.locator("[class*=assetListContainer]").nth(i) for i in (0, 1))
    for connection, days in sorted(ui.days.items(), reverse=True):
        expect(row(connections, connection).locator(GREEN)).to_have_count(1)
        row(connections, connection).click()
        expect(days_list.locator("[class*=assetListRow]")).to_have_count(len(days))
        for day in days:
            expect(row(days_list, str(day)).locator(GREEN)).to_have_count(1)  # materialized: a green dot
    day = ui.days["cascade-hvac"][-2]
    row(days_list, str(day)).click()
    expect(page.locator(f"[title='cascade-hvac|{day}']")).to_be_visible()  # the partition's own panel
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible()
    expect(page.get_by_text("day_posted_total", exact=True)).to_be_visible()
    screenshot(page, "partitions")


def test_failed_check_is_shown_with_its_reason_and_fix(page, ui):
    page.goto(f"{ui.url}/assets/mapped_documents?view=checks")
    check = page.get_by_text("mapping_complete", exact=True).first
    expect(check).to_be_visible(timeout=WAIT)
    check.click()
    reason = f"{len(ui.quarantined)} record(s) of {ui.quarantined_day} quarantined: business unit 1106 " \
             "(Bellevue HVAC) has no mapping"
    expect(page.get_by_text(reason)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^(mapping_complete\s*)+Failed$"))).to_be_visible()  # in the list of checks
    expect(page.get_by_text("Evaluation result", exact=True).locator("xpath=..")).to_contain_text("Failed")
    invoices = "|".join(r.source_id for r in ui.quarantined if r.source_type == "invoice")
    expect(page.get_by_text(re.compile(f"^invoice ({invoices})$")).first).to_be_visible()
    expect(page.get_by_text("add mapping.business_units.1106 to connections/cascade-hvac.yaml").first) \
        .to_be_visible()
    screenshot(page, "failed-check")
