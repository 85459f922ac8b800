"""Checks a mapped document's GL coding against what exists in the ERP, so nothing is posted to
an account, subaccount, branch, project or organization the ERP does not have."""

from __future__ import annotations

from mappings.canonical import Party, document_from_json
from posting.adapter import ReferenceData


def coding_problems(source_type: str, document: dict, ref: ReferenceData, dimensions: tuple[str, ...]) -> list[str]:
    doc = document_from_json(source_type, document)
    if isinstance(doc, Party):
        return []
    codings = []
    for name in ("header", "cash", "ar"):
        if hasattr(doc, name):
            codings.append(getattr(doc, name))
    codings += [line.coding for line in getattr(doc, "lines", ())]
    problems: list[str] = []
    for coding in codings:
        for p in ref.problems(coding, dimensions):
            if p not in problems:
                problems.append(p)
    # A closed period is not a coding problem: the ERP refuses the posting (class erp_validation,
    # "reopen the period or correct the date"), and it posts on replay once the period is open.
    return problems


def describe(problems: list[str], erp_kind: str) -> str:
    return f"{', '.join(problems)} not open or not found in {erp_kind}"


def closed_period_message(record: str, day, period: str, erp: str, fix: str) -> str:
    """The error of a document dated in a closed financial period (class erp_validation, checked
    before posting): which record, which period holds its date, and what to do."""
    return f"{record}: financial period {period} (holding {day}) is closed in {erp}: {fix}; nothing was posted"
