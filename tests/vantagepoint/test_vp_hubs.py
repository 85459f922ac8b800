"""Vantagepoint hubs over real sockets: the seed agrees with the contractor, list queries behave
as documented, firms and projects upsert without duplicates, and filter values from outside data
cannot widen a query."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from resources.http import ValidationError
from resources.vantagepoint import VantagepointClient
from simulators.contractor import SUMMIT, vantagepoint_org, vantagepoint_project
from tests.vantagepoint.days import CLOSED_DAY, OPEN_DAY, period_of


def test_seed_matches_the_contractor(vp):
    client = vp.client()
    orgs = {o.Org for o in client.list_organizations()}
    assert orgs == {vantagepoint_org(b) for b in SUMMIT.branches}
    projects = {p.WBS1: p for p in client.list_projects()}
    for unit in SUMMIT.business_units:
        project = projects[vantagepoint_project(SUMMIT, unit)]
        assert project.Org == vantagepoint_org(unit.branch) and project.ChargeType == "R"
        assert project.WBS2 == " " and project.WBS3 == " "
    firms = client.list_firms()
    names = {f.Name for f in firms}
    assert set(SUMMIT.key_accounts) <= names
    vendors = [f for f in firms if f.is_vendor]
    assert {f.Name for f in vendors} == {v.name for v in SUMMIT.vendors}
    assert all(len(f.Vendor) == 6 and f.Vendor.isdigit() for f in vendors)
    assert {a.Account for a in client.list_accounts()} >= {"12000", "20000", "40100", "10100"}
    assert {b.Code for b in client.list_banks()} == {"10100", "10200", "10300"}
    periods = client.list_periods()
    open_periods = [p for p in periods if not p.closed]
    assert len(open_periods) == 12 and max(p.Period for p in open_periods) == vp.period()
    assert all(p.closed for p in periods if p.Period < min(o.Period for o in open_periods))


def test_list_query_parameters(vp):
    raw = vp.raw()
    page1 = raw.get("firm", params={"pageSize": 5, "page": 1, "order": "Name_D", "fieldFilter": "name,ClientID"}).json()
    page2 = raw.get("firm", params={"pageSize": 5, "page": 2, "order": "Name_D", "fieldFilter": "name,ClientID"}).json()
    assert isinstance(page1, list) and len(page1) == 5 and set(page1[0]) == {"Name", "ClientID"}
    names = [r["Name"] for r in page1 + page2]
    assert names == sorted(names, key=str.casefold, reverse=True) and len(set(names)) == 10
    one = raw.get(f"firm/{page1[0]['ClientID']}")
    assert isinstance(one.json(), list) and len(one.json()) == 1  # arrays even for one record
    unknown = raw.get("firm", params={"filterHash[0][name]": "NoSuchColumn", "filterHash[0][value]": "x"})
    assert unknown.status_code == 400 and "NoSuchColumn" in unknown.json()["message"]
    assert raw.get("PSALedger/IN", params={"limit": 5}).status_code == 500  # only pageSize / q.maxrows there
    odata = raw.get("firm", params={"$filter": "Name eq 'Red Rocks Hospitality'", "$top": "5"}).json()
    assert [r["Name"] for r in odata] == ["Red Rocks Hospitality"]


def test_filter_values_cannot_widen_a_query(vp):
    client = vp.client()
    assert client.find_firms_by_name("O'Brien) or (1 eq 1") == []
    assert client.find_firms_by_name("x&filterHash[1][name]=Status&filterHash[1][value]=A") == []
    assert client.find_firms_by_name("%") == []
    found = client.find_firms_by_name("Niño's Taquería Group")
    assert [f.Name for f in found] == ["Niño's Taquería Group"]
    with pytest.raises(ValueError):
        VantagepointClient.filters(("Name", "like", "O'Brien"))
    # A naive $filter built by string concatenation is refused rather than widened.
    raw = vp.raw()
    naive = raw.get("firm", params={"$filter": "Name eq 'O'Brien) or (1 eq 1'"})
    assert naive.status_code == 400


def test_upsert_firm_creates_once_and_finds_existing(vp):
    client = vp.client()
    created = client.upsert_firm("O'Brien Family Dental", client=True, fields={"PrimaryCity": "Denver"})
    assert created.action == "created" and created.firm.is_client and created.firm.Client.startswith("C")
    again = client.upsert_firm("O'Brien Family Dental", client=True, fields={"PrimaryCity": "Denver"})
    assert again.action == "unchanged" and again.firm.ClientID == created.firm.ClientID

    key_account = client.upsert_firm("Red Rocks Hospitality", client=True)
    assert key_account.action == "unchanged"  # pre-existing in the ERP, matched by exact name
    both = client.upsert_firm("Red Rocks Hospitality", vendor=True)
    assert both.action == "updated" and both.firm.is_vendor and both.firm.is_client
    assert len(both.firm.Vendor) == 6 and both.firm.Vendor.isdigit()

    vendor = client.upsert_firm("Front Range Fasteners", vendor=True)
    assert vendor.action == "created" and vendor.firm.Vendor.isdigit()
    assert client.find_vendor(vendor.firm.Vendor).ClientID == vendor.firm.ClientID
    assert len(client.find_firms_by_name("Red Rocks Hospitality")) == 1


def test_firm_rules_come_back_as_clear_errors(vp):
    raw = vp.raw()
    no_relation = raw.post("firm", json={"Name": "Nobody", "ClientInd": "N", "VendorInd": "N"})
    assert no_relation.status_code == 400
    assert "Please provide a Relationship for table Firm" in no_relation.json()["message"]
    no_type = raw.post("firm", json={"Name": "Vendor Without Type", "VendorInd": "Y"})
    assert "Please provide a Vendor Type for table Firm" in no_type.json()["message"]
    unknown = raw.post("firm", json={"Name": "X", "ClientInd": "Y", "FirmID": "1"})
    assert unknown.json()["message"] == "Field FirmID does not exist."
    too_long = raw.post("firm", json={"Name": "N" * 300, "ClientInd": "Y"})
    assert "would be truncated" in too_long.json()["message"] and "column 'Name'" in too_long.json()["message"]
    padded = raw.post("firm", json={"Name": "Padded Vendor", "VendorInd": "Y", "Category": "SUP", "Vendor": "56"})
    assert padded.status_code == 201 and padded.json()[0]["Vendor"] == "000056"
    assert padded.headers["Location"].endswith(padded.json()[0]["ClientID"])
    dup = raw.post("firm", json={"Name": "Other", "VendorInd": "Y", "Category": "SUP", "Vendor": "000056"})
    assert dup.json()["message"] == "Vendor Number already exists: 000056."


def test_hubs_poll_by_moddate(vp):
    client = vp.client()
    start = datetime.now(UTC) - timedelta(seconds=1)
    client.upsert_firm("Poll Target LLC", client=True)
    project = client.upsert_project("2026-DEN-CUS", "Denver Custom Work", "01:DEN",
                                    client.find_firms_by_name("Poll Target LLC")[0].ClientID)
    assert project.ChargeType == "R" and project.Org == "01:DEN"
    until = datetime.now(UTC) + timedelta(seconds=1)
    assert [f.Name for f in client.list_firms(start, until)] == ["Poll Target LLC"]
    assert [p.WBS1 for p in client.list_projects(start, until)] == ["2026-DEN-CUS"]
    assert client.list_firms(until) == []
    renamed = client.upsert_project("2026-DEN-CUS", "Denver Custom Jobs", "01:DEN")
    assert renamed.Name == "Denver Custom Jobs"
    bad_org = vp.raw().post("project", json={"WBS1": "X-1", "Name": "x", "ChargeType": "R", "Org": "99:ZZZ",
                                             "ClientID": project.ClientID})
    assert bad_org.status_code == 400 and "Organization 99:ZZZ does not exist." in bad_org.json()["message"]


def test_period_for_refuses_closed_periods(vp):
    client = vp.client()
    assert client.period_for(OPEN_DAY) == period_of(OPEN_DAY)
    with pytest.raises(ValidationError, match="closed"):
        client.period_for(CLOSED_DAY)
    with pytest.raises(ValidationError, match="no accounting period"):
        client.period_for(date(OPEN_DAY.year + 3, 1, 1))


def test_vision_autoposting_and_api_404(vp):
    raw = vp.raw()
    vision_url = vp.info["base_url"][: -len("/api")] + "/vision/AccountConfiguration/CFGAutoPosting"
    vision = httpx.get(vision_url, headers=raw.headers)
    assert vision.status_code == 200 and vision.json()["AcctsReceivable"] == "12000"
    assert raw.get("AccountConfiguration/CFGAutoPosting").status_code == 404
