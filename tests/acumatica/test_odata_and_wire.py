"""Unit tests of the pure parts: the simulator's $filter parser, and the client's value-object
wrapping, OData literal escaping, 422 error collection and Acumatica error classification."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from resources.acumatica import (
    SeatLimitError,
    classify_response,
    field_errors,
    odata_string,
    unwrap_values,
    wrap_values,
)
from resources.http import ConflictError, NotFoundError, ValidationError
from simulators.acumatica.odata import FilterError, compile_filter

RECORDS = [
    {"Name": "O'Brien Family Dental", "Amount": Decimal("10.50"), "Active": True,
     "When": datetime(2025, 3, 1, 12, tzinfo=UTC), "Main": {"City": "Seattle"}},
    {"Name": "Harbor View", "Amount": Decimal("99"), "Active": False,
     "When": datetime(2025, 4, 1, tzinfo=UTC), "Main": {"City": "Tacoma"}},
]
KNOWN = {"Name", "Amount", "Active", "When", "Main/City"}


def run(text: str) -> list[str]:
    def getter(path, rec):
        value = rec
        for part in path.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    pred = compile_filter(text, getter, lambda p: p in KNOWN)
    return [r["Name"] for r in RECORDS if pred(r)]


@pytest.mark.parametrize("text,expected", [
    ("Name eq 'O''Brien Family Dental'", ["O'Brien Family Dental"]),
    ("Amount gt 50", ["Harbor View"]),
    ("Amount le 10.5M", ["O'Brien Family Dental"]),
    ("Active eq true or Amount eq 99", ["O'Brien Family Dental", "Harbor View"]),
    ("(Active eq false and Amount ge 99) or Name eq 'nobody'", ["Harbor View"]),
    ("When gt datetimeoffset'2025-03-15T00:00:00+00:00'", ["Harbor View"]),
    ("When lt datetimeoffset'2025-03-01T05:00:00-08:00'", ["O'Brien Family Dental"]),
    ("When ge date'2025-04-01'", ["Harbor View"]),
    ("substringof('family', Name)", ["O'Brien Family Dental"]),
    ("startswith(Name,'Harb') eq true", ["Harbor View"]),
    ("endswith(Name,'Dental') eq false", ["Harbor View"]),
    ("Main/City eq 'seattle'", ["O'Brien Family Dental"]),
    ("Name ne 'Harbor View'", ["O'Brien Family Dental"]),
])
def test_filter_parser(text, expected):
    assert run(text) == expected


@pytest.mark.parametrize("text", [
    "Name eq 'unterminated", "Name eq", "Nope eq 1", "Name eq 'a' or", "(Name eq 'a'", "Name like 'a'",
    "tolower(Name) eq 'a'", "Name eq 'a' and not Active",
])
def test_filter_parser_rejects(text):
    with pytest.raises(FilterError):
        run(text)


def test_escaped_literal_cannot_widen_the_query():
    hostile = "O'Brien) or (1 eq 1"
    assert run(f"Name eq {odata_string(hostile)}") == []
    assert odata_string("a''b") == "'a''''b'"


def test_wrap_and_unwrap_round_trip():
    record = {"id": "5e0e2d5c-0000-0000-0000-000000000001", "CustomerName": "Café Olé", "Amount": Decimal("12.30"),
              "Precise": Decimal("0.1000000000000000055511151231257827"), "Hold": False, "Empty": None,
              "Date": datetime(2025, 1, 2, tzinfo=UTC), "MainContact": {"Email": "a@b.c"},
              "Details": [{"Account": "40100", "Qty": Decimal(2)}]}
    wire = wrap_values(record)
    assert wire["CustomerName"] == {"value": "Café Olé"} and wire["id"] == record["id"]
    assert wire["Amount"] == {"value": 12.3} and wire["Precise"] == {"value": "0.1000000000000000055511151231257827"}
    assert wire["Empty"] == {"value": None} and wire["Date"] == {"value": "2025-01-02T00:00:00+00:00"}
    assert wire["MainContact"] == {"Email": {"value": "a@b.c"}}
    assert wire["Details"][0]["Qty"] == {"value": 2.0}
    back = unwrap_values({"id": "x", "rowNumber": 1, "note": {"value": ""}, "Amount": {"value": Decimal("12.3")},
                          "Customer": {}, "MainContact": {"Email": {"value": "a@b.c"}, "id": "y"},
                          "Details": [{"Account": {"value": "40100"}}], "_links": {"self": "/x"}})
    assert back == {"id": "x", "rowNumber": 1, "note": "", "Amount": Decimal("12.3"), "Customer": None,
                    "MainContact": {"Email": "a@b.c", "id": "y"}, "Details": [{"Account": "40100"}],
                    "_links": {"self": "/x"}}


def test_field_errors_walks_entity_fields_details_and_linked():
    echoed = {"error": "Inserting 'AP Invoice' record raised at least one error.",
              "Vendor": {"value": "V1", "error": "'Vendor' cannot be found in the system."},
              "Amount": {"value": 5},
              "Details": [{"Account": {"value": "1"}}, {"Project": {"value": "P", "error": "Project 'P' cannot be found."}}],
              "MainContact": {"Email": {"value": "bad", "error": "Invalid email."}}}
    assert field_errors(echoed) == [
        "record: Inserting 'AP Invoice' record raised at least one error.",
        "Vendor (V1): 'Vendor' cannot be found in the system.",
        "Details[2].Project (P): Project 'P' cannot be found.",
        "MainContact.Email (bad): Invalid email.",
    ]


@pytest.mark.parametrize("status,body,expected", [
    (500, '{"exceptionType":"PX.Api.ContractBased.NoEntitySatisfiesTheConditionException"}', NotFoundError),
    (500, '{"exceptionType":"PX.Api.ContractBased.OutcomeEntityHasErrorsException"}', ConflictError),
    (500, '{"exceptionMessage":"API Login Limit","exceptionType":"PX.Data.PXException"}', SeatLimitError),
    (429, "The custom error module does not recognize this error. API Login Limit", SeatLimitError),
    (500, '{"exceptionMessage":"is on hold","exceptionType":"PX.Data.PXException"}', ValidationError),
    (500, '{"message":"An error has occurred."}', None),
    (503, "Service Unavailable", None),
    (200, "{}", None),
])
def test_classify_response(status, body, expected):
    assert classify_response(httpx.Response(status, text=body)) is expected
