"""The simulated tenant's financial calendar (FinancialYear setup, FinancialPeriod per year with
monthly Details) and the rule that refuses documents dated in a closed period.

Acumatica keeps a period's status per module: Status (Inactive / Open / Closed / Locked) for GL
and ClosedInAR / ClosedInAP / ... flags set by closing the period in that subledger. An AR
document (invoice, payment) is refused in a period closed in AR, an AP bill in one closed in AP,
and both in a period that is closed, locked or inactive. The messages follow Acumatica's own
("The 01-2024 financial period of the CASCADE company is closed in Accounts Receivable."); the
refusal is a 422 with the error on the document's period field, as other field errors are.

Seeded calendar: monthly periods from three years before the simulator's start year to the year
after it; the ``open_months`` (option ``open_periods_months``, default 24) months ending in the
start month and every later month are open, earlier months closed everywhere. /_sim/period
closes or reopens one period per module (a person running Close Financial Periods).
"""

from __future__ import annotations

import uuid
from calendar import monthrange
from datetime import date, datetime, timedelta

MODULE_FLAGS = {"AR": "ClosedInAR", "AP": "ClosedInAP"}
MODULE_NAMES = {"AR": "Accounts Receivable", "AP": "Accounts Payable"}
ALL_FLAGS = ("ClosedInAR", "ClosedInAP", "ClosedInCA", "ClosedInFA", "ClosedInIN")


def period_id(day: date) -> str:
    """'MMYYYY', as the contract API shows financial period ids (PostPeriod '112026')."""
    return f"{day.month:02d}{day.year}"


def shown(pid: str) -> str:
    """'112026' -> '11-2026', as Acumatica's messages write a period."""
    return f"{pid[:2]}-{pid[2:]}"


def seed_calendar(start: date, at: datetime, open_months: int = 24) -> tuple[dict, list[dict]]:
    """(FinancialYear setup record, FinancialPeriod records)."""
    first_open = start.year * 12 + start.month - 1 - (open_months - 1)
    years = []
    for year in range(start.year - 3, start.year + 2):
        details = []
        for month in range(1, 13):
            begin = date(year, month, 1)
            closed = year * 12 + month - 1 < first_open
            details.append({
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"finperiod:{year}{month:02d}")),
                "FinancialPeriodID": period_id(begin), "PeriodNbr": f"{month:02d}",
                "Description": begin.strftime("%B"), "StartDate": begin,
                "EndDate": begin + timedelta(days=monthrange(year, month)[1] - 1),
                "LengthInDays": monthrange(year, month)[1], "AdjustmentPeriod": False,
                "Status": "Closed" if closed else "Open", **{flag: closed for flag in ALL_FLAGS},
            })
        years.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"finyear:{year}")), "FinancialYear": str(year),
                      "NbrOfPeriods": 12, "StartDate": date(year, 1, 1), "UserDefinedPeriods": False,
                      "CreatedDateTime": at, "LastModifiedDateTime": at, "Details": details})
    setup = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "finyear:setup")), "FirstFinancialYear": str(start.year - 3),
             "FinancialYearStartsOn": date(start.year - 3, 1, 1), "FirstPeriodStartDate": date(start.year - 3, 1, 1),
             "NbrOfFinancialPeriods": 12, "PeriodType": "Month", "HasAdjustmentPeriod": False,
             "UserDefinedPeriods": False, "BelongsToNextYear": False, "AdjustToPeriodStart": False,
             "YearEndCalculationMethod": "Fixed Length", "CreatedDateTime": at, "LastModifiedDateTime": at,
             "Details": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"finyear:setup:{m}")), "PeriodNbr": f"{m:02d}",
                          "Description": date(2000, m, 1).strftime("%B")} for m in range(1, 13)]}
    return setup, years


def find_period(years: dict, pid: str) -> dict | None:
    """The FinancialPeriod detail row of 'MMYYYY' among the FinancialPeriod records."""
    for year in years.values():
        if year.get("FinancialYear") == pid[2:]:
            return next((d for d in year.get("Details") or [] if d.get("FinancialPeriodID") == pid), None)
    return None


def refusal(years: dict, pid: str, module: str, company: str) -> str | None:
    """Why a document of ``module`` ('AR' or 'AP') cannot be posted to period 'MMYYYY', or None."""
    row = find_period(years, pid)
    if row is None:
        return f"The financial period for the {shown(pid)} date is not defined in the system."
    status = row.get("Status")
    if status == "Inactive":
        return f"The {shown(pid)} financial period is inactive in the {company} company."
    if status in ("Closed", "Locked"):
        return f"The {shown(pid)} financial period is {status.lower()} in the {company} company."
    if row.get(MODULE_FLAGS[module]):
        return f"The {shown(pid)} financial period of the {company} company is closed in {MODULE_NAMES[module]}."
    return None
