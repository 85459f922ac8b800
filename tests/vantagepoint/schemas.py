"""JSON Schemas of every Vantagepoint response fieldledger reads, written from the reconstructed
brief (../shared/reference/deltek-vantagepoint-api.md; Vantagepoint publishes no OpenAPI document
we hold). Each names the fields fieldledger relies on with the types the brief gives; other fields
may come (a firm has ~123). ``brief_names`` lets a test check every name here is in the brief."""

from __future__ import annotations

from collections.abc import Iterator

STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
YN = {"enum": ["Y", "N"]}
STATUS = {"enum": ["A", "I", "D"]}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$"}  # naive, ms
OPT_DATE = {"anyOf": [DATE, {"const": ""}, {"type": "null"}]}
PERIOD = {"type": "integer", "minimum": 190001, "maximum": 999912}


def row(required: dict, optional: dict | None = None) -> dict:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def rows(schema: dict) -> dict:
    """List and single-record GETs answer a JSON array (brief section 4)."""
    return {"type": "array", "items": schema}


SCHEMAS: dict[str, dict] = {
    # 3.1 token; 3.3 OAuth error; 3.5 401; 8.1 REST error
    "token": row({"access_token": STR, "token_type": {"enum": ["bearer", "Bearer"]}, "expires_in": INT,
                  "refresh_token": STR}),
    "oauth_error": row({"error": {"enum": ["invalid_grant", "invalid_client", "unauthorized_client",
                                           "unsupported_grant_type"]}}, {"error_description": STR}),
    "denied": row({"Message": {"const": "Authorization has been denied for this request."}}),
    "error": row({"message": STR, "detail": STR}),
    # 6.1 firm, 6.3 project, 6.4 organization and key formats, 6.5 accounts, banks, periods
    "firm": row({"ClientID": {"type": "string", "pattern": "^[0-9A-F]{32}$"}, "Client": STR, "Vendor": STR,
                 "Name": STR, "ClientInd": YN, "VendorInd": YN, "Status": STATUS, "ModDate": DATE},
                {"Category": STR, "CreateDate": DATE}),
    "project": row({"WBS1": STR, "WBS2": STR, "WBS3": STR, "Name": STR, "ChargeType": {"enum": ["R", "H", "P"]},
                    "SubLevel": YN, "Status": STATUS, "Org": STR, "ClientID": STR, "ModDate": DATE}),
    "organization": row({"Org": STR, "Name": STR, "Status": STATUS}),
    "key_formats": row({"AccountLength": INT, "VendorLength": INT, "RefnoLength": INT, "WBS1Length": INT,
                        "OrgLevels": INT, "OrgDelimiter": STR}),
    "account": row({"Account": STR, "Name": STR, "Type": {"type": "integer", "minimum": 1, "maximum": 10},
                    "Status": {"enum": ["A", "I"]}}),
    "bank": row({"Code": STR, "Description": STR, "Account": STR}, {"Company": STR, "Org": STR}),
    "period": row({"Period": PERIOD, "FmtPeriod": STR, "AccountPdStart": DATE, "AccountPdEnd": DATE,
                   "ActiveCompanyClosed": YN, "AllCompaniesClosed": YN}),
    # 6.6 / 12.3 DataEntry: control create answer, masters, landings
    "control": row({"Batch": STR, "Period": PERIOD, "Total": NUM, "SumTotal": NUM, "DiffTotal": NUM, "Posted": YN}),
    "master": row({"Batch": STR, "TransDate": DATE, "Status": STR, "StatusDescription": STR, "ModDate": DATE}),
    "landing": row({"Batch": STR, "Posted": YN, "PostStatus": STR, "PostSeq": INT, "Total": NUM,
                    "Period": INT, "PostDate": OPT_DATE}),
    # 6.12 PSALedger
    "ledger": row({"TransType": {"enum": ["IN", "CR", "AP", "JE"]}, "SubType": STR, "Batch": STR, "Period": PERIOD,
                   "PostSeq": INT, "PKey": STR, "WBS1": STR, "WBS2": STR, "WBS3": STR, "Account": STR, "Org": STR,
                   "RefNo": STR, "Invoice": STR, "Vendor": STR, "Voucher": STR, "BankCode": STR, "Amount": NUM,
                   "TransDate": DATE, "PostDate": DATE}),
    # 6.11 / 12.4 PostTransFile: a JSON string holding these '|'-joined lists
    "post_result": row({"typeList": STR, "batchList": STR, "retList": {"type": "string", "pattern": r"^-?\d+(\|-?\d+)*$"},
                        "periodList": STR, "postseqList": STR, "msg": STR}),
}


def brief_names() -> Iterator[str]:
    """Every field name the schemas use."""
    for schema in SCHEMAS.values():
        yield from schema["properties"]
