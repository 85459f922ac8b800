"""Hub writes with Vantagepoint's rules: firms (clients and vendors, autonumbered firm numbers,
zero-padded vendor codes), projects (WBS levels, Org / client / ChargeType checks) and accounts
(cash-basis keys must be present, no Description). Reads are plain lists; see app.py."""

from __future__ import annotations

from simulators.vantagepoint.state import TenantState, blank, normalize_fields
from simulators.vantagepoint.wire import VPError

FIRM_FIELDS = (
    "ClientID", "Client", "Vendor", "Name", "SortName", "ClientInd", "VendorInd", "Status", "CurrentStatus",
    "Category", "Type", "Org", "Owner", "ParentID", "Memo", "WebSite", "PrimaryEmail", "PrimaryPhone",
    "PrimaryFax", "PrimaryAddress1", "PrimaryAddress2", "PrimaryCity", "PrimaryState", "PrimaryZip",
    "PrimaryCountry", "ExportInd", "AvailableForCRM", "ReadyForApproval", "ReadyForProcessing",
    "GovernmentAgency", "FedID", "TypeOfTIN", "CustomCurrencyCode", "HasHierarchy", "CreateUser", "CreateDate",
    "ModUser", "ModDate",
)
FIRM_GRIDS = ("CLAddress", "VEAccounting")
PROJECT_FIELDS = (
    "WBS1", "WBS2", "WBS3", "Name", "LongName", "ChargeType", "SubLevel", "Status", "RevType", "Org", "ClientID",
    "BillingClientID", "ContactID", "BillingContactID", "Principal", "ProjMgr", "Supervisor", "Fee", "StartDate",
    "EndDate", "ProjectType", "ProjectCurrencyCode", "BillingCurrencyCode", "ReadyForProcessing",
    "ReadyForApproval", "Closed", "ReadOnly", "CreateUser", "CreateDate", "ModUser", "ModDate",
)
ACCOUNT_FIELDS = (
    "Account", "Name", "Type", "Status", "Detail", "CashBasisAccount", "UnrealizedLossAccount",
    "UnrealizedGainAccount", "CashBasisRevaluation", "GlobalAccount", "AccountCurrencyCode",
)
_AUDIT = {"CreateUser", "CreateDate", "ModUser", "ModDate"}
_FIRM_READ_ONLY = _AUDIT | {"ClientID"}
_PROJECT_READ_ONLY = _AUDIT | {"SubLevel"}
_FLAG_FIELDS = ("ClientInd", "VendorInd")
NAME_LENGTH = 255
PROJECT_NAME_LENGTH = 40


def _flag(value: object) -> str | None:
    if value is True:
        return "Y"
    if value is False:
        return "N"
    text = str(value).strip().upper()
    return text if text in ("Y", "N") else None


def _pad_vendor(state: TenantState, value: str) -> str:
    width = state.settings.key_formats.vendor_length
    text = value.strip()
    return text.zfill(width) if text.isdigit() else text.upper()


def _next_vendor(state: TenantState) -> str:
    """The next free autonumbered vendor code (codes entered by hand are skipped)."""
    while state.firm_by_vendor(f"{state.next_vendor_number:06d}"):
        state.next_vendor_number += 1
    return f"{state.next_vendor_number:06d}"


def create_firm(state: TenantState, body: dict) -> dict:
    errors: list[str] = []
    grids = {k: body.pop(k) for k in list(body) if k.lower() in {g.lower() for g in FIRM_GRIDS}}
    fields = normalize_fields(body, FIRM_FIELDS, errors)
    for key in _FIRM_READ_ONLY & fields.keys():
        fields.pop(key)
    name = str(fields.get("Name") or "").strip()
    if not name:
        errors.append("Please provide a Name for table Firm")
    state.check_length("CL", "Name", name, NAME_LENGTH, errors)
    for key in ("Org", "Type", "Client"):
        if key in fields and str(fields[key] or "").strip() == "":
            errors.append("Please provide a Relationship for table Firm")
    for key in _FLAG_FIELDS:
        if key in fields:
            flag = _flag(fields[key])
            if flag is None:
                errors.append(f"'{fields[key]}' is not a valid value for {key}.")
            fields[key] = flag
    client_ind = fields.get("ClientInd") or "N"
    vendor_ind = fields.get("VendorInd") or "N"
    if client_ind != "Y" and vendor_ind != "Y":
        errors.append("Please provide a Relationship for table Firm")
    if vendor_ind == "Y" and not str(fields.get("Category") or "").strip():
        errors.append("Please provide a Vendor Type for table Firm")
    if str(fields.get("Client") or "").strip():
        errors.append("Firm Number value ignored, autonumber enabled and override is not allowed")
    vendor = ""
    with state.lock:
        if vendor_ind == "Y":
            requested = str(fields.get("Vendor") or "").strip()
            vendor = _pad_vendor(state, requested) if requested else _next_vendor(state)
            state.check_length("VE", "Vendor", vendor, state.settings.key_formats.vendor_length, errors)
            if state.firm_by_vendor(vendor):
                errors.append(f"Vendor Number already exists: {vendor}.")
        if fields.get("Status", "A") not in ("A", "I", "D"):
            errors.append(f"'{fields.get('Status')}' is not a valid value for Status.")
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        stamp = state.stamp()
        row = {name_: "" for name_ in FIRM_FIELDS}
        row.update(fields)
        row.update({
            "ClientID": state.ids.guid(), "Client": f"C{state.next_client_number:05d}", "Vendor": vendor,
            "Name": name, "SortName": fields.get("SortName") or name.upper(), "ClientInd": client_ind,
            "VendorInd": vendor_ind, "Status": fields.get("Status", "A"), "CreateUser": state.settings.username,
            "CreateDate": stamp, "ModUser": state.settings.username, "ModDate": stamp,
        })
        state.next_client_number += 1
        if vendor_ind == "Y" and vendor == f"{state.next_vendor_number:06d}":
            state.next_vendor_number += 1
        for grid, rows in grids.items():
            row[grid] = rows if isinstance(rows, list) else [rows]
        state.firms[row["ClientID"]] = row
        state.counts["firms_created"] += 1
        return row


def update_firm(state: TenantState, client_id: str, body: dict) -> dict:
    errors: list[str] = []
    with state.lock:
        row = state.firms.get(client_id.upper())
        if row is None:
            raise VPError(f"Firm {client_id} was not found.", status=404)
        grids = {k: body.pop(k) for k in list(body) if k.lower() in {g.lower() for g in FIRM_GRIDS}}
        fields = normalize_fields(body, FIRM_FIELDS, errors)
        if "ClientID" in fields and str(fields["ClientID"]).upper() != row["ClientID"]:
            errors.append("ClientID cannot be changed.")
        for key in _FIRM_READ_ONLY & fields.keys():
            fields.pop(key)
        if "Client" in fields and fields["Client"] != row["Client"]:
            errors.append("Firm Number value ignored, autonumber enabled and override is not allowed")
        for key in _FLAG_FIELDS:
            if key in fields:
                flag = _flag(fields[key])
                if flag is None:
                    errors.append(f"'{fields[key]}' is not a valid value for {key}.")
                fields[key] = flag
        if "Name" in fields:
            if not str(fields["Name"] or "").strip():
                errors.append("Please provide a Name for table Firm")
            state.check_length("CL", "Name", fields["Name"], NAME_LENGTH, errors)
        vendor_ind = fields.get("VendorInd", row["VendorInd"])
        if vendor_ind == "Y" and not row.get("Vendor"):
            requested = str(fields.get("Vendor") or "").strip()
            vendor = _pad_vendor(state, requested) if requested else _next_vendor(state)
            if state.firm_by_vendor(vendor):
                errors.append(f"Vendor Number already exists: {vendor}.")
            if not str(fields.get("Category") or row.get("Category") or "").strip():
                errors.append("Please provide a Vendor Type for table Firm")
            fields["Vendor"] = vendor
            if vendor == f"{state.next_vendor_number:06d}":
                state.next_vendor_number += 1
        elif "Vendor" in fields and _pad_vendor(state, str(fields["Vendor"])) != row.get("Vendor"):
            errors.append("Vendor Number cannot be changed.")
        if fields.get("ClientInd", row["ClientInd"]) != "Y" and vendor_ind != "Y":
            errors.append("Please provide a Relationship for table Firm")
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        row.update(fields)
        for grid, rows in grids.items():
            row[grid] = rows if isinstance(rows, list) else [rows]
        row["ModDate"] = state.stamp()
        row["ModUser"] = state.settings.username
        state.counts["firms_updated"] += 1
        return row


def delete_firm(state: TenantState, client_id: str) -> None:
    with state.lock:
        if client_id.upper() not in state.firms:
            raise VPError(f"Firm {client_id} was not found.", status=404)
        if any(p.get("ClientID") == client_id.upper() for p in state.projects.values()):
            raise VPError("The firm is referenced by projects and cannot be deleted.")
        del state.firms[client_id.upper()]


def _check_project_refs(state: TenantState, fields: dict, errors: list[str]) -> None:
    if "ChargeType" in fields and fields["ChargeType"] not in ("R", "H", "P"):
        errors.append(f"'{fields['ChargeType']}' is not a valid Charge Type (R, H or P).")
    if "Org" in fields and fields["Org"] not in state.orgs:
        errors.append(f"Organization {fields['Org']} does not exist." if fields["Org"] else "Organization is required.")
    for key in ("ClientID", "BillingClientID"):
        value = str(fields.get(key) or "").strip()
        if value:
            firm = state.firms.get(value.upper())
            if firm is None or firm["ClientInd"] != "Y":
                errors.append(f"{key} {value} is not an existing client firm.")
    if "Status" in fields and fields["Status"] not in ("A", "I", "D"):
        errors.append(f"'{fields['Status']}' is not a valid value for Status.")
    if "Name" in fields:
        state.check_length("PR", "Name", fields["Name"], PROJECT_NAME_LENGTH, errors)


def create_project(state: TenantState, body: dict) -> dict:
    errors: list[str] = []
    fields = normalize_fields(body, PROJECT_FIELDS, errors)
    for key in _PROJECT_READ_ONLY & fields.keys():
        fields.pop(key)
    wbs1 = str(fields.get("WBS1") or "").strip()
    wbs2, wbs3 = blank(fields.get("WBS2")), blank(fields.get("WBS3"))
    if not wbs1:
        errors.append("Please provide a WBS1 for table Projects")
    state.check_length("PR", "WBS1", wbs1, state.settings.key_formats.wbs1_length, errors)
    if not str(fields.get("Name") or "").strip():
        errors.append("Please provide a Name for table Projects")
    with state.lock:
        parent = state.project(wbs1) if wbs2 != " " else None
        if wbs2 != " " and parent is None:
            errors.append(f"Project {wbs1} does not exist; create the project before its phases.")
        if wbs3 != " " and state.project(wbs1, wbs2) is None:
            errors.append(f"Phase {wbs1}/{wbs2} does not exist; create the phase before its tasks.")
        inherited = {k: parent[k] for k in ("ChargeType", "Org", "ClientID", "BillingClientID")} if parent else {}
        merged = {**inherited, **fields}
        if not merged.get("ChargeType"):
            errors.append("Please provide a Charge Type for table Projects")
        if not merged.get("Org"):
            errors.append("Organization is required.")
        if merged.get("ChargeType") == "R" and not str(merged.get("ClientID") or "").strip():
            errors.append("Please provide a Client for table Projects")
        _check_project_refs(state, {**merged, "Org": merged.get("Org", "")}, errors)
        if state.project(wbs1, wbs2, wbs3) is not None:
            errors.append(f"Record {wbs1} already exists and cannot be added.")
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        stamp = state.stamp()
        row = {name: "" for name in PROJECT_FIELDS}
        row.update(merged)
        row.update({
            "WBS1": wbs1, "WBS2": wbs2, "WBS3": wbs3, "SubLevel": "N", "Status": merged.get("Status", "A"),
            "LongName": merged.get("LongName") or merged.get("Name"), "CreateUser": state.settings.username,
            "CreateDate": stamp, "ModUser": state.settings.username, "ModDate": stamp,
        })
        state.projects[state.project_key(wbs1, wbs2, wbs3)] = row
        if wbs2 != " ":
            upper = state.project(wbs1) if wbs3 == " " else state.project(wbs1, wbs2)
            if upper is not None and upper["SubLevel"] != "Y":
                upper["SubLevel"] = "Y"
                upper["ModDate"] = stamp
        state.counts["projects_created"] += 1
        return row


def update_project(state: TenantState, wbs1: str, body: dict) -> dict:
    errors: list[str] = []
    fields = normalize_fields(body, PROJECT_FIELDS, errors)
    with state.lock:
        wbs2, wbs3 = blank(fields.pop("WBS2", " ")), blank(fields.pop("WBS3", " "))
        row = state.project(wbs1, wbs2, wbs3)
        if row is None:
            raise VPError(f"Project {wbs1} was not found.", status=404)
        if "WBS1" in fields and str(fields.pop("WBS1")).strip().upper() != row["WBS1"].upper():
            errors.append("WBS1 cannot be changed.")
        for key in _PROJECT_READ_ONLY & fields.keys():
            fields.pop(key)
        _check_project_refs(state, fields, errors)
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        row.update(fields)
        row["ModDate"] = state.stamp()
        row["ModUser"] = state.settings.username
        return row


def create_account(state: TenantState, body: dict) -> dict:
    errors: list[str] = []
    fields = normalize_fields(body, ACCOUNT_FIELDS, errors)
    for key in ("CashBasisAccount", "UnrealizedLossAccount", "UnrealizedGainAccount", "CashBasisRevaluation"):
        if key not in fields:
            errors.append(f"Column:{key} does not exist.")
    number = str(fields.get("Account") or "").strip()
    if not number:
        errors.append("Please provide an Account for table CA")
    state.check_length("CA", "Account", number, state.settings.key_formats.account_length, errors)
    try:
        account_type = int(fields.get("Type") or 0)
    except (TypeError, ValueError):
        account_type = 0
    if not 1 <= account_type <= 10:
        errors.append(f"'{fields.get('Type')}' is not a valid account Type (1-10).")
    with state.lock:
        if number in state.accounts:
            errors.append("Record Accounting already exists and cannot be added.")
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        row = {name: "" for name in ACCOUNT_FIELDS}
        row.update(fields)
        row.update({"Account": number, "Type": account_type, "Status": fields.get("Status") or "A", "Detail": "1"})
        state.accounts[number] = row
        return row
