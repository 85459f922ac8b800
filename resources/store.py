"""The sync store: per-record truth (inbox, record versions, id map, audit trail, secrets,
cursors) in PostgreSQL, beside Dagster's own storage.

Every state change of a record and its audit row are written in one transaction. Claims use
``FOR UPDATE SKIP LOCKED`` with a lease, so concurrent workers never take the same record and a
crashed worker's claims expire. This module knows nothing about ServiceTitan or the ERPs.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources as package_files
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

MIGRATION_LOCK_ID = 7_401_200_101  # advisory lock held while migrating

RECORD_STATUSES = ("pending", "posted", "skipped", "quarantined", "failed", "needs_review", "superseded")
OPEN_FAILURE_STATUSES = ("quarantined", "failed", "needs_review")
STRANDED_AFTER_SECONDS = 90.0  # a pending record unclaimed this long was left behind by a failed run


@dataclass(frozen=True)
class InboxEvent:
    id: int
    connection: str
    event_id: str
    event_type: str
    body: bytes
    headers: dict
    received_at: datetime
    state: str


@dataclass(frozen=True)
class Record:
    id: int
    connection: str
    source_type: str
    source_id: str
    content_hash: str
    business_date: date | None
    status: str
    target_key: str | None
    attempts: int
    error_class: str | None
    error_message: str | None
    payload: Any
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> Record:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def _where(**columns: Any) -> tuple[list[str], list[Any]]:
    """SQL conditions and their arguments for the filters given: ``column = %s`` for a value,
    ``column = ANY(%s)`` for a collection (an empty one matches nothing); None filters nothing."""
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in columns.items():
        if value is None:
            continue
        if isinstance(value, str | int | date):
            clauses.append(f"{column} = %s")
            args.append(value)
        else:
            clauses.append(f"{column} = ANY(%s)")
            args.append(list(value))
    return clauses, args


def content_hash(document: Any) -> str:
    """A stable hash of a JSON-able document (Decimal and dates rendered as strings)."""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _migrations() -> list[tuple[int, str, str]]:
    folder = package_files.files("resources") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


class SyncStore:
    """One pool of connections to the sync store database."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10):
        self.url = url
        self.pool = ConnectionPool(
            url, min_size=min_size, max_size=max_size, open=True, timeout=30,
            kwargs={"row_factory": dict_row, "autocommit": False},
            check=ConnectionPool.check_connection,
        )

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True, **pool_kw) -> SyncStore:
        if url is None:
            from resources.database import database_url

            url = database_url("fieldledger")
        store = cls(url, **pool_kw)
        if migrate:
            store.migrate()
        return store

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations in order, under an advisory lock; returns what was applied."""
        applied: list[str] = []
        with self.pool.connection() as conn:
            conn.autocommit = True
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r["version"] for r in conn.execute("SELECT version FROM schema_migrations")}
                for version, name, sql in _migrations():
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(sql)
                        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                    applied.append(name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
                conn.autocommit = False
        return applied

    def schema_version(self) -> int:
        with self.transaction() as conn:
            row = conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
            return row["v"] or 0

    def ping(self) -> bool:
        with self.transaction() as conn:
            return conn.execute("SELECT 1 AS ok").fetchone()["ok"] == 1

    # --- webhook inbox ---------------------------------------------------------------------

    def add_inbox_event(self, connection: str, event_id: str, event_type: str, body: bytes,
                        headers: dict | None = None) -> bool:
        """Store a webhook delivery; False when the same event was stored before (a duplicate).
        Committed before returning, so an acknowledged event survives a crash."""
        with self.transaction() as conn:
            row = conn.execute(
                "INSERT INTO inbox (connection, event_id, event_type, body, headers) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (connection, event_id) DO NOTHING RETURNING id",
                (connection, event_id, event_type, body, Jsonb(headers or {})),
            ).fetchone()
            return row is not None

    def pending_inbox_events(self, after_id: int = 0, limit: int = 500) -> list[InboxEvent]:
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM inbox WHERE state = 'pending' AND id > %s ORDER BY id LIMIT %s", (after_id, limit)
            ).fetchall()
        return [InboxEvent(**{k: (bytes(r[k]) if k == "body" else r[k]) for k in InboxEvent.__dataclass_fields__})
                for r in rows]

    def mark_inbox(self, ids: Sequence[int], state: str, detail: str | None = None) -> None:
        if not ids:
            return
        with self.transaction() as conn:
            conn.execute(
                "UPDATE inbox SET state = %s, processed_at = now(), detail = %s WHERE id = ANY(%s)",
                (state, detail, list(ids)),
            )

    # --- what the operator asks (fieldledger status / errors) ---------------------------------

    def activity(self, connection: str) -> dict[str, Any]:
        """The connection's last webhook received, last posting, and its pending and open-failure counts."""
        with self.transaction() as conn:
            event = conn.execute("SELECT max(received_at) AS t FROM inbox WHERE connection = %s",
                                 (connection,)).fetchone()
            posting = conn.execute("SELECT max(at) AS t FROM audit WHERE connection = %s AND step = 'posted'",
                                   (connection,)).fetchone()
            counts = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'pending') AS pending, "
                "count(*) FILTER (WHERE status = ANY(%s)) AS failures FROM records WHERE connection = %s",
                (list(OPEN_FAILURE_STATUSES), connection)).fetchone()
        return {"last_event": event["t"], "last_posting": posting["t"], "pending": counts["pending"],
                "open_failures": counts["failures"]}

    def open_failures(self, connection: str | None = None, error_class: str | None = None) -> list[dict[str, Any]]:
        """Records waiting on a person or a retry (quarantined, failed, needs_review), oldest day first."""
        clauses, args = _where(status=OPEN_FAILURE_STATUSES, connection=connection, error_class=error_class)
        with self.transaction() as conn:
            return conn.execute(
                f"SELECT id, connection, source_type, source_id, business_date, status, error_class, error_message, "
                f"attempts, next_attempt_at, updated_at FROM records WHERE {' AND '.join(clauses)} "
                "ORDER BY connection, business_date, id", args).fetchall()

    def inbox_counts(self) -> dict[tuple[str, str], int]:
        with self.transaction() as conn:
            rows = conn.execute("SELECT connection, state, count(*) AS n FROM inbox GROUP BY 1, 2").fetchall()
        return {(r["connection"], r["state"]): r["n"] for r in rows}

    # --- connection state ------------------------------------------------------------------

    def set_paused(self, connection: str, paused: bool, reason: str | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO connection_state (connection, paused, paused_reason, updated_at) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (connection) DO UPDATE SET paused = EXCLUDED.paused, "
                "paused_reason = EXCLUDED.paused_reason, updated_at = now()",
                (connection, paused, reason),
            )

    def paused_connections(self) -> dict[str, str | None]:
        with self.transaction() as conn:
            rows = conn.execute("SELECT connection, paused_reason FROM connection_state WHERE paused").fetchall()
        return {r["connection"]: r["paused_reason"] for r in rows}

    # --- record versions -------------------------------------------------------------------

    def upsert_version(self, connection: str, source_type: str, source_id: str, hash_: str,
                       business_date: date | None, payload: Any, run_id: str | None = None,
                       step: str = "extracted") -> tuple[Record, bool]:
        """Register one version of a source record; returns (row, created). A new version of a
        record supersedes its older, not-yet-posted versions. Audited."""
        with self.transaction() as conn:
            row = conn.execute(
                "INSERT INTO records (connection, source_type, source_id, content_hash, business_date, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (connection, source_type, source_id, content_hash) "
                "DO NOTHING RETURNING *",
                (connection, source_type, source_id, hash_, business_date, Jsonb(payload, dumps=_dumps)),
            ).fetchone()
            created = row is not None
            if created:
                conn.execute(
                    "UPDATE records SET status = 'superseded', updated_at = now() WHERE connection = %s "
                    "AND source_type = %s AND source_id = %s AND id <> %s "
                    "AND status IN ('pending', 'failed', 'quarantined')",
                    (connection, source_type, source_id, row["id"]),
                )
                self._audit(conn, connection, source_type, source_id, hash_, step, "ok", {}, run_id)
            else:
                row = conn.execute(
                    "SELECT * FROM records WHERE connection = %s AND source_type = %s AND source_id = %s "
                    "AND content_hash = %s",
                    (connection, source_type, source_id, hash_),
                ).fetchone()
        return Record.from_row(row), created

    def get_record(self, record_id: int) -> Record | None:
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM records WHERE id = %s", (record_id,)).fetchone()
        return Record.from_row(row) if row else None

    def records(self, connection: str, *, source_type: str | None = None, statuses: Iterable[str] | None = None,
                business_date: date | None = None, source_id: str | None = None) -> list[Record]:
        clauses, args = _where(connection=connection, source_type=source_type, status=statuses,
                               business_date=business_date, source_id=source_id)
        with self.transaction() as conn:
            rows = conn.execute(f"SELECT * FROM records WHERE {' AND '.join(clauses)} ORDER BY id", args).fetchall()
        return [Record.from_row(r) for r in rows]

    def latest_posted(self, connection: str, source_type: str, source_id: str) -> Record | None:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT * FROM records WHERE connection = %s AND source_type = %s AND source_id = %s "
                "AND status IN ('posted', 'skipped') AND target_key IS NOT NULL ORDER BY updated_at DESC LIMIT 1",
                (connection, source_type, source_id),
            ).fetchone()
        return Record.from_row(row) if row else None

    def records_by_target_key(self, connection: str, target_key: str, source_type: str | None = None,
                              statuses: Sequence[str] = ("posted",)) -> list[Record]:
        """Record versions recorded against one ERP key (e.g. to flag them when the ERP document
        was voided or deleted); ``source_type`` narrows it (an AR and an AP key can look alike)."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM records WHERE connection = %s AND status = ANY(%s) AND target_key = %s "
                "AND (%s::text IS NULL OR source_type = %s) ORDER BY id",
                (connection, list(statuses), target_key, source_type, source_type),
            ).fetchall()
        return [Record.from_row(r) for r in rows]

    def unlinked_records_named(self, connection: str, source_type: str, name: str) -> list[Record]:
        """The latest live version of each record of ``source_type`` whose mapped document is named
        exactly ``name``, that has no id-map entry and is not claimed by a worker right now."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (r.source_id) r.* FROM records r WHERE r.connection = %s "
                "AND r.source_type = %s AND r.status <> 'superseded' AND r.payload -> 'document' ->> 'name' = %s "
                "AND (r.claimed_until IS NULL OR r.claimed_until < now()) AND NOT EXISTS (SELECT 1 FROM id_map m "
                "WHERE m.connection = r.connection AND m.entity = r.source_type AND m.source_id = r.source_id) "
                "ORDER BY r.source_id, r.id DESC",
                (connection, source_type, name),
            ).fetchall()
        return [Record.from_row(r) for r in rows]

    def status_counts(self, connection: str | None = None) -> dict[str, int]:
        sql = "SELECT status, count(*) AS n FROM records"
        args: list = []
        if connection:
            sql += " WHERE connection = %s"
            args.append(connection)
        with self.transaction() as conn:
            rows = conn.execute(sql + " GROUP BY status", args).fetchall()
        return {r["status"]: r["n"] for r in rows}

    def claim(self, connection: str, worker: str, *, limit: int = 100, lease_seconds: int = 300,
              statuses: Sequence[str] = ("pending",), source_types: Sequence[str] | None = None,
              business_date: date | None = None, source_ids: Iterable[str] | None = None) -> list[Record]:
        """Take up to ``limit`` records for posting. Two workers never hold the same record: rows
        are locked with SKIP LOCKED and leased until ``claimed_until``."""
        clauses, args = _where(connection=connection, status=list(statuses), source_type=source_types or None,
                               business_date=business_date, source_id=None if source_ids is None else list(source_ids))
        clauses += ["(claimed_until IS NULL OR claimed_until < now())", "(next_attempt_at IS NULL OR next_attempt_at <= now())"]
        with self.transaction() as conn:
            rows = conn.execute(
                "UPDATE records SET claimed_by = %s, claimed_until = now() + make_interval(secs => %s) "
                f"WHERE id IN (SELECT id FROM records WHERE {' AND '.join(clauses)} ORDER BY id "
                "LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *",
                [worker, lease_seconds, *args, limit],
            ).fetchall()
        return sorted((Record.from_row(r) for r in rows), key=lambda r: r.id)

    @staticmethod
    def worker_id(label: str) -> str:
        """A claim owner id that says which process holds the claim: host:pid:label."""
        return f"{socket.gethostname()}:{os.getpid()}:{label}"

    def release_dead_claims(self) -> int:
        """Free claims held by processes of this host that no longer exist (a run killed mid-posting),
        so a replay right after a crash does not wait for their leases to expire."""
        host = socket.gethostname()
        with self.transaction() as conn:
            owners = [r["claimed_by"] for r in conn.execute(
                "SELECT DISTINCT claimed_by FROM records WHERE claimed_until > now() AND claimed_by LIKE %s",
                (f"{host}:%",)).fetchall()]
        dead = []
        for owner in owners:
            try:
                pid = int(owner.split(":")[1])
            except (IndexError, ValueError):
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                dead.append(owner)
            except PermissionError:
                pass
        if not dead:
            return 0
        with self.transaction() as conn:
            rows = conn.execute("UPDATE records SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ANY(%s)",
                                (dead,))
            return rows.rowcount

    def record_outcome(self, record_id: int, status: str, *, step: str, outcome: str,
                       target_key: str | None = None, error_class: str | None = None,
                       error_message: str | None = None, detail: dict | None = None, run_id: str | None = None,
                       id_map_entity: str | None = None, retry_in_seconds: float | None = None,
                       count_attempt: bool = True,
                       before_commit: Callable[[], None] | None = None) -> Record:
        """Set a record's status (and target key / error) and append its audit row in ONE
        transaction; also links the id map when a target key is known. ``before_commit`` exists
        for the crash test: it runs after both writes, before the commit."""
        if status not in RECORD_STATUSES:
            raise ValueError(f"unknown record status {status!r}")
        with self.transaction() as conn:
            row = conn.execute(
                "UPDATE records SET status = %s, target_key = COALESCE(%s, target_key), error_class = %s, "
                "error_message = %s, attempts = attempts + %s, claimed_by = NULL, claimed_until = NULL, "
                "next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => %s::float8) END, updated_at = now() "
                "WHERE id = %s RETURNING *",
                (status, target_key, error_class, error_message, 1 if count_attempt else 0,
                 retry_in_seconds, retry_in_seconds, record_id),
            ).fetchone()
            if row is None:
                raise KeyError(f"no record with id {record_id}")
            full_detail = dict(detail or {})
            if target_key:
                full_detail.setdefault("target_key", target_key)
            if error_class:
                full_detail.update(error_class=error_class, error_message=error_message)
            self._audit(conn, row["connection"], row["source_type"], row["source_id"], row["content_hash"],
                        step, outcome, full_detail, run_id)
            if target_key and id_map_entity:
                self._link(conn, row["connection"], id_map_entity, row["source_id"], target_key)
            if before_commit:
                before_commit()
        return Record.from_row(row)

    def due_retry_partitions(self, limit: int = 100, stranded_after: float = STRANDED_AFTER_SECONDS
                             ) -> list[tuple[str, date]]:
        """(connection, business day) pairs holding failed records whose backoff has passed, or
        pending records nobody has claimed for ``stranded_after`` seconds: their run stopped
        before posting them (a step failed when the database restarted, say) and nothing else
        would ever request their day again."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT connection, business_date FROM records WHERE business_date IS NOT NULL AND ("
                "(status = 'failed' AND next_attempt_at IS NOT NULL AND next_attempt_at <= now()) OR "
                "(status = 'pending' AND updated_at < now() - make_interval(secs => %s) "
                "AND (claimed_until IS NULL OR claimed_until < now()))) ORDER BY 1, 2 LIMIT %s", (stranded_after, limit),
            ).fetchall()
        return [(r["connection"], r["business_date"]) for r in rows]

    def requeue(self, connection: str, *, statuses: Sequence[str] = OPEN_FAILURE_STATUSES,
                record_ids: Sequence[int] | None = None, business_date: date | None = None,
                source_id: str | None = None, run_id: str | None = None) -> list[Record]:
        """Put failed records back to pending for a replay; each gets a 'replayed' audit row."""
        clauses, args = _where(connection=connection, status=list(statuses), id=record_ids,
                               business_date=business_date, source_id=source_id)
        with self.transaction() as conn:
            rows = conn.execute(
                "UPDATE records SET status = 'pending', next_attempt_at = NULL, claimed_by = NULL, "
                f"claimed_until = NULL, updated_at = now() WHERE {' AND '.join(clauses)} RETURNING *",
                args,
            ).fetchall()
            for r in rows:
                self._audit(conn, r["connection"], r["source_type"], r["source_id"], r["content_hash"],
                            "replayed", "requeued", {"previous_error": r["error_class"]}, run_id)
        return [Record.from_row(r) for r in rows]

    # --- id map ----------------------------------------------------------------------------

    def link(self, connection: str, entity: str, source_id: str, target_key: str) -> None:
        with self.transaction() as conn:
            self._link(conn, connection, entity, source_id, target_key)

    def lookup(self, connection: str, entity: str, source_id: str) -> str | None:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT target_key FROM id_map WHERE connection = %s AND entity = %s AND source_id = %s",
                (connection, entity, source_id),
            ).fetchone()
        return row["target_key"] if row else None

    def lookup_many(self, connection: str, entity: str, source_ids: Iterable[str]) -> dict[str, str]:
        ids = list(source_ids)
        if not ids:
            return {}
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT source_id, target_key FROM id_map WHERE connection = %s AND entity = %s AND source_id = ANY(%s)",
                (connection, entity, ids),
            ).fetchall()
        return {r["source_id"]: r["target_key"] for r in rows}

    @staticmethod
    def _link(conn, connection, entity, source_id, target_key) -> None:
        conn.execute(
            "INSERT INTO id_map (connection, entity, source_id, target_key) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (connection, entity, source_id) DO UPDATE SET target_key = EXCLUDED.target_key",
            (connection, entity, source_id, target_key),
        )

    # --- audit -----------------------------------------------------------------------------

    def audit(self, connection: str, source_type: str, source_id: str, step: str, outcome: str,
              detail: dict | None = None, run_id: str | None = None, content_hash: str | None = None) -> None:
        with self.transaction() as conn:
            self._audit(conn, connection, source_type, source_id, content_hash, step, outcome, detail or {}, run_id)

    def audit_trail(self, connection: str, source_type: str | None = None, source_id: str | None = None) -> list[dict]:
        clauses, args = _where(connection=connection, source_type=source_type, source_id=source_id)
        with self.transaction() as conn:
            return conn.execute(f"SELECT * FROM audit WHERE {' AND '.join(clauses)} ORDER BY id", args).fetchall()

    @staticmethod
    def _audit(conn, connection, source_type, source_id, hash_, step, outcome, detail, run_id) -> None:
        conn.execute(
            "INSERT INTO audit (connection, source_type, source_id, content_hash, step, outcome, detail, run_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (connection, source_type, str(source_id), hash_, step, outcome, Jsonb(detail, dumps=_dumps), run_id),
        )

    def latest_sources(self, connection: str, source_type: str, source_ids: Sequence[str]) -> dict[str, Any]:
        """The ServiceTitan record as last registered, per source id (absent ids: never seen).
        The catch-up compares export rows with these to skip days the webhooks already synced."""
        if not source_ids:
            return {}
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (source_id) source_id, payload -> 'source' AS source FROM records "
                "WHERE connection = %s AND source_type = %s AND source_id = ANY(%s) ORDER BY source_id, id DESC",
                (connection, source_type, list(source_ids))).fetchall()
        return {r["source_id"]: r["source"] for r in rows}

    # --- cursors ---------------------------------------------------------------------------

    def get_cursor(self, connection: str, name: str) -> str | None:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT value FROM cursors WHERE connection = %s AND name = %s", (connection, name)
            ).fetchone()
        return row["value"] if row else None

    def set_cursor(self, connection: str, name: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO cursors (connection, name, value, updated_at) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (connection, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                (connection, name, value),
            )

    # --- secrets (ciphertext only; the vault encrypts) --------------------------------------

    def put_secret(self, connection: str, name: str, ciphertext: bytes) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO secrets (connection, name, ciphertext, updated_at) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (connection, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated_at = now()",
                (connection, name, ciphertext),
            )

    def get_secret(self, connection: str, name: str) -> bytes | None:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT ciphertext FROM secrets WHERE connection = %s AND name = %s", (connection, name)
            ).fetchone()
        return bytes(row["ciphertext"]) if row else None

    def secret_rows(self, connection: str | None = None) -> list[dict]:
        sql, args = "SELECT connection, name, ciphertext, updated_at FROM secrets", []
        if connection:
            sql += " WHERE connection = %s"
            args.append(connection)
        with self.transaction() as conn:
            return conn.execute(sql + " ORDER BY connection, name", args).fetchall()

    def replace_secrets(self, rows: Iterable[tuple[str, str, bytes]]) -> int:
        """Rewrite many ciphertexts in one transaction (key rotation)."""
        n = 0
        with self.transaction() as conn:
            for connection, name, ciphertext in rows:
                conn.execute(
                    "UPDATE secrets SET ciphertext = %s WHERE connection = %s AND name = %s",
                    (ciphertext, connection, name),
                )
                n += 1
        return n


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def as_stored(value: Any) -> Any:
    """``value`` as it reads back from a JSONB payload (dates, Decimals and the like become text),
    for comparing a fresh record with the version the store holds."""
    return json.loads(_dumps(value))
