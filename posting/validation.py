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
    period = doc.date.strftime("%Y%m")
    if period in ref.closed_periods:
        problems.append(f"period {period} (closed)")
    return problems


def describe(problems: list[str], erp_kind: str) -> str:
    return f"{', '.join(problems)} not open or not found in {erp_kind}"
