"""The secret-leak sweep: every secret value and token the stack ever held, searched for in every
place a person or a process could read it — log files, Dagster's storage (event log with all
materialization and check metadata, runs, ticks), the sync store (audit, records and their error
messages, inbox) and the CLI's output.

Tokens are many (each sign-in makes new ones), places are large, so instead of searching every
place for every token, each place is cut into runs of token characters and the runs are looked
up through an index of the secrets' first characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

TOKEN_CHARS = rb"[A-Za-z0-9._~+/=@-]"
RUN = re.compile(TOKEN_CHARS + rb"{8,}")
PREFIX = 8
MIN_SECRET = 12  # shorter values (none today) would be searched with plain `in`


@dataclass
class SweepReport:
    places: int = 0
    bytes: int = 0
    secrets: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # place kind -> count of places
    hits: list[tuple[str, str]] = field(default_factory=list)  # (place, secret label)


class Needles:
    def __init__(self, secrets: dict[str, str]):
        self.labels: dict[bytes, str] = {}
        self.plain: dict[bytes, str] = {}  # values that could hide outside a token-character run
        self.index: dict[bytes, list[bytes]] = {}
        for label, value in secrets.items():
            raw = value.encode()
            if len(raw) < MIN_SECRET or not re.fullmatch(TOKEN_CHARS + b"+", raw):
                self.plain[raw] = label
                continue
            self.labels[raw] = label
            self.index.setdefault(raw[:PREFIX], []).append(raw)

    def found_in(self, data: bytes) -> set[str]:
        hits = {label for raw, label in self.plain.items() if raw in data}
        for run in set(RUN.findall(data)):
            for i in range(len(run) - PREFIX + 1):
                for raw in self.index.get(run[i:i + PREFIX], ()):
                    if run.startswith(raw, i):
                        hits.add(self.labels[raw])
        return hits


def sweep(secrets: dict[str, str], places: Iterable[tuple[str, str, bytes]]) -> SweepReport:
    """``places``: (kind, name, content). Returns where any secret appeared."""
    needles = Needles(secrets)
    report = SweepReport(secrets=len(secrets))
    for kind, name, data in places:
        report.places += 1
        report.bytes += len(data)
        report.by_kind[kind] = report.by_kind.get(kind, 0) + 1
        for label in sorted(needles.found_in(data)):
            report.hits.append((f"{kind}: {name}", label))
    return report


def database_tables(url: str, skip: tuple[str, ...] = ()) -> Iterable[tuple[str, bytes]]:
    """(table, every row as COPY text) for every table of a database's public schema."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]
        for table in tables:
            if table in skip:
                continue
            columns = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
            # bytea (webhook bodies) as its own bytes, not COPY's hex
            select = ", ".join(f"encode(\"{c}\", 'escape')" if t == "bytea" else f'"{c}"' for c, t in columns)
            chunks = []
            with conn.cursor().copy(f'COPY (SELECT {select} FROM "{table}") TO STDOUT') as copy:
                for chunk in copy:
                    chunks.append(bytes(chunk))
            yield table, b"".join(chunks)
