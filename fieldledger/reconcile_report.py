"""Month-end reconciliation for the controller: for every day of a month and every business unit,
ServiceTitan totals vs ERP totals and the difference, to the cent, written as a CSV and a chart.

The per-day comparison is posting/reconcile.py's (the same one the reconciliation asset runs,
which reads ServiceTitan's API), with ServiceTitan's side summed from its records as extracted
(never from fieldledger's mapping of them); this module only walks the month, names each coding
key after the business units mapped to it, and renders. Amounts stay Decimal; the
chart converts to float only to draw.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from mappings.canonical import Coding
from mappings.connection import Connection
from posting.adapter import ErpAdapter
from posting.reconcile import ZERO, SourceRecords, reconcile
from resources.store import SyncStore

CSV_COLUMNS = ("connection", "day", "business_unit", "key", "document_type", "servicetitan", "erp", "difference")
SPECIAL_KEYS = {"*": "all units (payments)", "unmapped": "unmapped business units"}
DOCUMENT_LABELS = {"invoice": "AR invoices", "payment": "payments", "bill": "AP bills"}


class MonthError(ValueError):
    """A --month the command cannot use; the message says what to give instead."""


@dataclass(frozen=True)
class ReconLine:
    day: date
    business_unit: str
    key: str
    document_type: str
    servicetitan: Decimal
    erp: Decimal

    @property
    def difference(self) -> Decimal:
        return self.erp - self.servicetitan


@dataclass
class MonthReconciliation:
    connection: str
    month: str  # YYYY-MM
    days: list[date]
    lines: list[ReconLine] = field(default_factory=list)

    @property
    def differing(self) -> list[ReconLine]:
        return [line for line in self.lines if line.difference != ZERO]

    @property
    def unit_days(self) -> set[tuple[date, str]]:
        return {(line.day, line.business_unit) for line in self.lines}

    @property
    def differing_unit_days(self) -> set[tuple[date, str]]:
        return {(line.day, line.business_unit) for line in self.differing}

    @property
    def total_difference(self) -> Decimal:
        """Sum of the absolute differences: an excess on one unit does not hide a gap on another."""
        return sum((abs(line.difference) for line in self.lines), ZERO)

    def summary(self) -> str:
        return (f"{len(self.differing_unit_days)} of {len(self.unit_days)} business-unit-days differ, "
                f"total difference {self.total_difference}")

    def file_stem(self) -> str:
        return f"reconcile-{self.connection}-{self.month}"


def month_days(month: str, start: date | None = None, today: date | None = None,
               only: list[date] | None = None) -> list[date]:
    """The days of ``month`` (YYYY-MM) from the connection's start date up to today (UTC); with
    ``only``, just those days (each must be one of them)."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except ValueError:
        raise MonthError(f"--month takes a month as YYYY-MM (e.g. 2026-10), got {month!r}") from None
    today = today or datetime.now(UTC).date()
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    days = [first + timedelta(days=i) for i in range((following - first).days)]
    days = [d for d in days if d <= today and (start is None or d >= start)]
    if not days:
        raise MonthError(f"{month} has no day to reconcile: it is in the future or before the connection's start "
                         f"date {start}")
    if only:
        outside = sorted(set(only) - set(days))
        if outside:
            raise MonthError(f"--day {', '.join(map(str, outside))}: not a day of {month} up to today "
                             f"(from {days[0]} to {days[-1]})")
        days = sorted(set(only))
    return days


def unit_names(conn: Connection, adapter: ErpAdapter) -> dict[str, str]:
    """Coding key (Acumatica subaccount, Vantagepoint project) -> the business units mapped to it."""
    names: dict[str, list[str]] = defaultdict(list)
    for unit_id, unit in sorted(conn.mapping.business_units.items()):
        coding = Coding(account=unit.revenue_account or "", branch=unit.branch, subaccount=unit.subaccount,
                        project=unit.project, task=unit.task, organization=unit.organization)
        names[adapter.coding_key(coding)].append(f"{unit_id} {unit.name}" if unit.name else str(unit_id))
    return {key: " + ".join(units) for key, units in names.items()}


def reconcile_month(store: SyncStore, conn: Connection, month: str, adapter: ErpAdapter,
                    on_day: Callable[[date], None] | None = None, today: date | None = None,
                    source: SourceRecords | None = None, only: list[date] | None = None) -> MonthReconciliation:
    """``source``: where ServiceTitan's records come from (posting.reconcile.from_servicetitan for
    its API, as the CLI does); by default its records exactly as they were extracted, never our
    mapping of them. ``only``: just these days of the month."""
    days = month_days(month, conn.start_date, today, only)
    names = unit_names(conn, adapter)
    report = MonthReconciliation(conn.name, month, days)
    for day in days:
        for row in reconcile(store, conn, day, adapter, source):
            unit = names.get(row.key) or SPECIAL_KEYS.get(row.key) or row.key
            report.lines.append(ReconLine(day, unit, row.key, row.source_type, row.servicetitan, row.erp))
        if on_day:
            on_day(day)
    return report


# --- files -----------------------------------------------------------------------------------


def write_csv(report: MonthReconciliation, path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for line in report.lines:
            writer.writerow([report.connection, line.day.isoformat(), line.business_unit, line.key,
                             line.document_type, str(line.servicetitan), str(line.erp), str(line.difference)])
    return path


def write_chart(report: MonthReconciliation, path: Path) -> Path:
    """Per day: ServiceTitan vs ERP totals for each document type, and the differences (red when
    not zero). Floats only here, for drawing; the numbers a person relies on are in the CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    types = [t for t in DOCUMENT_LABELS if any(line.document_type == t for line in report.lines)] or ["invoice"]
    totals: dict[tuple[str, date], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    diffs: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for line in report.lines:
        pair = totals[(line.document_type, line.day)]
        pair[0] += line.servicetitan
        pair[1] += line.erp
        diffs[line.day] += line.difference
    x = list(range(len(report.days)))
    labels = [str(d.day) for d in report.days]
    fig, axes = plt.subplots(len(types) + 1, 1, figsize=(max(10, len(x) * 0.45), 2.8 * (len(types) + 1)),
                             sharex=True, squeeze=False)
    width = 0.4
    for ax, doc_type in zip(axes[:-1, 0], types, strict=True):
        st = [float(totals[(doc_type, d)][0]) for d in report.days]
        erp = [float(totals[(doc_type, d)][1]) for d in report.days]
        ax.bar([i - width / 2 for i in x], st, width, label="ServiceTitan", color="#4477aa")
        ax.bar([i + width / 2 for i in x], erp, width, label="ERP", color="#ee9944")
        ax.set_ylabel("USD")
        ax.set_title(DOCUMENT_LABELS[doc_type], loc="left", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    ax = axes[-1, 0]
    values = [float(diffs[d]) for d in report.days]
    bars = ax.bar(x, values, 0.6, color=["#cc3311" if diffs[d] != ZERO else "#999999" for d in report.days])
    ax.bar_label(bars, labels=[str(diffs[d]) if diffs[d] != ZERO else "" for d in report.days], fontsize=8,
                 color="#cc3311")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.margins(y=0.15)
    ax.set_ylabel("USD")
    ax.set_title(f"difference (ERP - ServiceTitan): {report.summary()}", loc="left", fontsize=10)
    ax.set_xticks(x, labels)
    ax.set_xlabel(f"day of {report.month}")
    # cents on the axes: a difference of a few cents read "0 0 0 -0 -0" with whole dollars
    money_axis = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value + 0.0:,.2f}")
    for axis in axes[:, 0]:
        axis.yaxis.set_major_formatter(money_axis)
    fig.suptitle(f"{report.connection}, {report.month}: ServiceTitan vs ERP totals per day")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_reports(report: MonthReconciliation, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = report.file_stem()
    return write_csv(report, out_dir / f"{stem}.csv"), write_chart(report, out_dir / f"{stem}.png")
