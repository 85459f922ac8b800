"""The sync store: per-record truth (inbox, record versions, id map, audit trail, secrets,
cursors) in PostgreSQL, beside Dagster's own storage.

Every state change of a record and its audit row are written in one transaction. Claims use
``FOR UPDATE SKIP LOCKED`` with a lease, so concurrent workers never take the same record and a
crashed worker's claims expire. This module knows nothing about ServiceTitan or the ERPs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
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
CLAIM_LEASE_SECONDS = 300.0  # a claim's lease; renewed by its holder's heartbeat while it works

log = logging.getLogger("fieldledger.store")

RECORD_STATUSES = ("pending", "posted", "skipped", "quarantined", "failed", "needs_review", "superseded")
OPEN_FAILURE_STATUSES = ("quarantined", "failed", "needs_review")
DEMAND_TYPES = ("invoice", "payment", "bill")  # the reads a day's extraction is made of
STRANDED_AFTER_SECONDS = 90.0  # a pending record unclaimed this long was left behind by a failed run


def retried_on_deadlock(method: Callable) -> Callable:
    """Run a one-transaction store method again when PostgreSQL ends it as a deadlock victim (or a
    serialization failure): the transaction was rolled back whole, so running it again is safe.
    Two workers' claims, a heartbeat and an outcome can meet on the same rows in a different
    order; the loser must not fail a run for it."""
    @functools.wraps(method)
    def again(*args, **kwargs):
        for attempt in range(4):
            try:
                return method(*args, **kwargs)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 3:
                    raise
                log.info("%s lost a deadlock; running it again", method.__name__)
                time.sleep(random.uniform(0.01, 0.1) * (attempt + 1))
        raise AssertionError("unreachable")

    return again


def stranded_interval() -> float:
    """Seconds a pending record or a changed day waits before it counts as left behind:
    FIELDLEDGER_STRANDED_AFTER_SECONDS (tests shorten it), else STRANDED_AFTER_SECONDS."""
    return float(os.environ.get("FIELDLEDGER_STRANDED_AFTER_SECONDS") or STRANDED_AFTER_SECONDS)


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
    claimed_by: str | None = None  # the holder of the document's claim, and its fencing token
    claim_token: int | None = None

    @property
    def fence(self) -> tuple[str, int] | None:
        """(holder, token) of the claim this version was taken under, None when not claimed."""
        return (self.claimed_by, self.claim_token) if self.claimed_by and self.claim_token else None

    @classmethod
    def from_row(cls, row: dict) -> Record:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


class ClaimLost(Exception):
    """The claim a worker posts under has lapsed or passed to another worker (fencing): it may
    neither post the document nor record an outcome for it."""

    def __init__(self, record_id: int, holder: str | None, token: int | None):
        self.record_id = record_id
        super().__init__(f"record {record_id}: the claim held by {holder} (token {token}) has lapsed or was taken "
                         "over; the current holder posts it")


def claim_lease_seconds() -> float:
    """The claim lease: FIELDLEDGER_CLAIM_LEASE_SECONDS (tests shorten it), else CLAIM_LEASE_SECONDS."""
    value = os.environ.get("FIELDLEDGER_CLAIM_LEASE_SECONDS")
    return float(value) if value else CLAIM_LEASE_SECONDS


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
        """Each record of ``source_type`` whose latest live version is named exactly ``name`` (an
        older name does not count: a party renamed since is someone else's namesake no more), that
        has no id-map entry and whose document nobody has claimed right now."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM (SELECT DISTINCT ON (r.source_id) r.* FROM records r WHERE r.connection = %s "
                "AND r.source_type = %s AND r.status <> 'superseded' ORDER BY r.source_id, r.id DESC) r "
                "WHERE r.payload -> 'document' ->> 'name' = %s "
                "AND NOT EXISTS (SELECT 1 FROM document_claims d WHERE d.connection = r.connection AND "
                "d.source_type = r.source_type AND d.source_id = r.source_id AND d.claimed_until > now()) "
                "AND NOT EXISTS (SELECT 1 FROM id_map m "
                "WHERE m.connection = r.connection AND m.entity = r.source_type AND m.source_id = r.source_id) "
                "ORDER BY r.source_id",
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

    @retried_on_deadlock
    def claim(self, connection: str, worker: str, *, limit: int = 100, lease_seconds: float | None = None,
              statuses: Sequence[str] = ("pending",), source_types: Sequence[str] | None = None,
              business_date: date | None = None, source_ids: Iterable[str] | None = None) -> list[Record]:
        """Take up to ``limit`` records for posting. A claim is a lease on the DOCUMENT (connection,
        source type, source id), whatever its versions, with a fencing token that changes with
        every holder: two workers never hold one document, even when an edit in ServiceTitan
        adds a version while one of them posts it. The holder renews its leases (``heartbeat``)
        while it works and checks them before each post (``hold``) and each outcome."""
        lease = float(lease_seconds if lease_seconds is not None else claim_lease_seconds())
        clauses, args = _where(connection=connection, status=list(statuses), source_type=source_types or None,
                               business_date=business_date, source_id=None if source_ids is None else list(source_ids))
        clauses += ["(claimed_until IS NULL OR claimed_until < now())", "(next_attempt_at IS NULL OR next_attempt_at <= now())",
                    "NOT EXISTS (SELECT 1 FROM document_claims d WHERE d.connection = records.connection AND "
                    "d.source_type = records.source_type AND d.source_id = records.source_id AND d.claimed_until > now())"]
        with self.transaction() as conn:
            candidates = conn.execute(
                f"SELECT id, source_type, source_id FROM records WHERE {' AND '.join(clauses)} ORDER BY id "
                "LIMIT %s FOR UPDATE SKIP LOCKED", [*args, limit]).fetchall()
            latest = {(r["source_type"], r["source_id"]): r["id"] for r in candidates}  # one version per document
            if not latest:
                return []
            types, ids = [k[0] for k in latest], [k[1] for k in latest]
            won = conn.execute(
                "INSERT INTO document_claims AS d (connection, source_type, source_id, claimed_by, claim_token, "
                "lease_seconds, claimed_until) SELECT %s, t, i, %s, nextval('claim_tokens'), %s, "
                "now() + make_interval(secs => %s) FROM unnest(%s::text[], %s::text[]) AS u(t, i) "
                "ON CONFLICT (connection, source_type, source_id) DO UPDATE SET claimed_by = EXCLUDED.claimed_by, "
                "claim_token = EXCLUDED.claim_token, lease_seconds = EXCLUDED.lease_seconds, "
                "claimed_until = EXCLUDED.claimed_until WHERE d.claimed_until < now() "
                "RETURNING source_type, source_id, claim_token",
                (connection, worker, lease, lease, types, ids)).fetchall()
            tokens = {latest[(w["source_type"], w["source_id"])]: w["claim_token"] for w in won}
            if not tokens:
                return []
            rows = conn.execute(
                "UPDATE records r SET claimed_by = %s, claimed_until = now() + make_interval(secs => %s), "
                "claim_token = u.token FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, token) WHERE r.id = u.id "
                "RETURNING r.*", (worker, lease, list(tokens), list(tokens.values()))).fetchall()
        return sorted((Record.from_row(r) for r in rows), key=lambda r: r.id)

    @retried_on_deadlock
    def hold(self, record: Record) -> bool:
        """Check right before posting that this worker still holds the record's document claim
        (same holder, same fencing token, lease not lapsed), renewing the lease; False when not:
        the document may not be posted by this worker. Records taken without a claim pass."""
        if record.fence is None:
            return True
        holder, token = record.fence
        with self.transaction() as conn:
            row = conn.execute(
                "UPDATE document_claims SET claimed_until = now() + make_interval(secs => lease_seconds) "
                "WHERE connection = %s AND source_type = %s AND source_id = %s AND claimed_by = %s "
                "AND claim_token = %s AND claimed_until > now() RETURNING claimed_until",
                (record.connection, record.source_type, record.source_id, holder, token)).fetchone()
        if row is not None:  # the record's copy of the lease in a transaction of its own (lock order: see renew_claims)
            with self.transaction() as conn:
                conn.execute("UPDATE records SET claimed_until = %s WHERE id = %s AND claim_token = %s",
                             (row["claimed_until"], record.id, token))
        return row is not None

    @retried_on_deadlock
    def renew_claims(self, worker: str) -> int:
        """Extend every unexpired claim ``worker`` holds by its lease; a lapsed one stays lapsed
        (another worker may hold it now). Returns how many documents it still holds."""
        with self.transaction() as conn:
            renewed = conn.execute(
                "UPDATE document_claims SET claimed_until = now() + make_interval(secs => lease_seconds) "
                "WHERE claimed_by = %s AND claimed_until > now()", (worker,)).rowcount
        # The records' copy of the leases in a second transaction: record_outcome locks a record and
        # then ends its document claim; holding claims while waiting for records here deadlocked with it.
        with self.transaction() as conn:
            conn.execute(
                "UPDATE records r SET claimed_until = d.claimed_until FROM document_claims d "
                "WHERE r.claimed_by = %s AND d.claimed_by = r.claimed_by AND d.claim_token = r.claim_token "
                "AND d.connection = r.connection AND d.source_type = r.source_type AND d.source_id = r.source_id",
                (worker,))
        return renewed

    @contextmanager
    def heartbeat(self, worker: str, lease_seconds: float | None = None) -> Iterator[None]:
        """Renew ``worker``'s claims every third of the lease while the block runs, so a slow ERP
        never lets them lapse under a live worker; a dead worker stops renewing and its claims
        expire (or release_dead_claims frees them)."""
        period = float(lease_seconds if lease_seconds is not None else claim_lease_seconds()) / 3
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(period):
                try:
                    self.renew_claims(worker)
                except Exception as exc:  # noqa: BLE001 - a beat that fails must not end the heartbeat:
                    # the next one tries again, and hold() fences the posts meanwhile
                    log.warning("claim heartbeat of %s failed: %s", worker, type(exc).__name__)

        thread = threading.Thread(target=beat, name=f"claims-{worker}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=30)

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
            conn.execute("DELETE FROM document_claims WHERE claimed_by = ANY(%s)", (dead,))
            rows = conn.execute("UPDATE records SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ANY(%s)",
                                (dead,))
            return rows.rowcount

    @retried_on_deadlock
    def record_outcome(self, record_id: int, status: str, *, step: str, outcome: str,
                       target_key: str | None = None, error_class: str | None = None,
                       error_message: str | None = None, detail: dict | None = None, run_id: str | None = None,
                       id_map_entity: str | None = None, retry_in_seconds: float | None = None,
                       count_attempt: bool = True, fence: tuple[str, int] | None = None,
                       before_commit: Callable[[], None] | None = None) -> Record:
        """Set a record's status (and target key / error) and append its audit row in ONE
        transaction; also links the id map when a target key is known, and ends the document's
        claim. With ``fence`` (holder, token: Record.fence) the outcome is written only while that
        claim is still held and unexpired, else ClaimLost. A version superseded meanwhile stays
        superseded unless it was posted (a failure of an old version must not bring it back).
        ``before_commit`` exists for the crash test: it runs after both writes, before the commit."""
        if status not in RECORD_STATUSES:
            raise ValueError(f"unknown record status {status!r}")
        with self.transaction() as conn:
            held = conn.execute(
                "SELECT r.claim_token, d.claimed_by AS holder, d.claim_token AS token, d.claimed_until > now() AS live "
                "FROM records r LEFT JOIN document_claims d ON d.connection = r.connection "
                "AND d.source_type = r.source_type AND d.source_id = r.source_id WHERE r.id = %s FOR UPDATE OF r",
                (record_id,)).fetchone()
            if held is None:
                raise KeyError(f"no record with id {record_id}")
            if fence is not None and (held["holder"], held["token"], held["live"]) != (fence[0], fence[1], True):
                raise ClaimLost(record_id, *fence)
            row = conn.execute(
                "UPDATE records SET status = CASE WHEN status = 'superseded' AND %s NOT IN ('posted', 'skipped') "
                "THEN 'superseded' ELSE %s END, target_key = COALESCE(%s, target_key), error_class = %s, "
                "error_message = %s, attempts = attempts + %s, claimed_by = NULL, claimed_until = NULL, "
                "claim_token = NULL, next_attempt_at = CASE WHEN %s::float8 IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => %s::float8) END, updated_at = now() "
                "WHERE id = %s RETURNING *",
                (status, status, target_key, error_class, error_message, 1 if count_attempt else 0,
                 retry_in_seconds, retry_in_seconds, record_id),
            ).fetchone()
            token = fence[1] if fence is not None else held["claim_token"]
            if token is not None:
                conn.execute("DELETE FROM document_claims WHERE connection = %s AND source_type = %s "
                             "AND source_id = %s AND claim_token = %s",
                             (row["connection"], row["source_type"], row["source_id"], token))
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

    def due_retry_partitions(self, limit: int = 100, stranded_after: float | None = None,
                             connections: Sequence[str] | None = None) -> list[tuple[str, date]]:
        """(connection, business day) pairs holding failed records whose backoff has passed, or
        pending records nobody has claimed for ``stranded_after`` seconds: their run stopped
        before posting them (a step failed when the database restarted, say) and nothing else
        would ever request their day again. Fair across connections: the days are dealt round
        robin (each connection's oldest first), so one connection with many due days never
        crowds the others out of ``limit``. ``connections`` keeps only those (the active ones)."""
        if stranded_after is None:
            stranded_after = stranded_interval()
        only = "" if connections is None else "AND connection = ANY(%(connections)s) "
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT connection, business_date FROM (SELECT connection, business_date, row_number() OVER "
                "(PARTITION BY connection ORDER BY business_date) AS turn FROM (SELECT DISTINCT connection, "
                "business_date FROM records WHERE business_date IS NOT NULL " + only + "AND ("
                "(status = 'failed' AND next_attempt_at IS NOT NULL AND next_attempt_at <= now()) OR "
                "(status = 'pending' AND updated_at < now() - make_interval(secs => %(stranded)s) "
                "AND (claimed_until IS NULL OR claimed_until < now())))) AS due) AS dealt "
                "ORDER BY turn, connection LIMIT %(limit)s",
                {"stranded": stranded_after, "limit": limit, "connections": list(connections or [])},
            ).fetchall()
        return [(r["connection"], r["business_date"]) for r in rows]

    def creation_intents(self, connection: str, source_type: str,
                         source_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """source_id -> the ERP keys (casefolded) that carried the party's name when fieldledger
        last set out to create it (its latest 'creating' audit row), for the ids that have one."""
        if not source_ids:
            return {}
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (source_id) source_id, detail FROM audit WHERE connection = %s "
                "AND source_type = %s AND source_id = ANY(%s) AND step = 'creating' ORDER BY source_id, id DESC",
                (connection, source_type, list(source_ids))).fetchall()
        return {r["source_id"]: frozenset(str(k).casefold() for k in (r["detail"] or {}).get("namesakes") or [])
                for r in rows}

    # --- sync demand (migrations/0003_sync_demand.sql) ----------------------------------------

    def now(self) -> datetime:
        """The database's clock: the one clock that every process's demand and extraction times
        are compared on, whatever host they run on."""
        with self.transaction() as conn:
            return conn.execute("SELECT now() AS t").fetchone()["t"]

    def want_sync(self, connection: str, days: Iterable[date], at: datetime | None = None) -> None:
        """Note that these days of the connection changed (known at ``at``, else now): wanted until
        an extraction that began after that moment is registered (``satisfy_sync``)."""
        days = sorted(set(days))
        if not days:
            return
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sync_demand (connection, day, wanted_at) SELECT %s, d, COALESCE(%s, now()) "
                "FROM unnest(%s::date[]) AS d ON CONFLICT (connection, day) DO UPDATE SET "
                "wanted_at = GREATEST(sync_demand.wanted_at, EXCLUDED.wanted_at)",
                (connection, at, days))

    def satisfy_sync(self, connection: str, day: date, began: datetime) -> None:
        """A run registered the day's records from an extraction that began at ``began``: every
        change known before then is in the store."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sync_demand SET satisfied_at = GREATEST(COALESCE(satisfied_at, %(b)s), %(b)s), "
                "requests = CASE WHEN %(b)s >= wanted_at THEN 0 ELSE requests END "
                "WHERE connection = %(c)s AND day = %(d)s", {"b": began, "c": connection, "d": day})

    def open_demand(self, connection: str | None = None) -> list[tuple[str, date, datetime]]:
        """(connection, day, wanted since) of every day wanted and not yet satisfied."""
        only = "" if connection is None else "AND connection = %(c)s "
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT connection, day, wanted_at FROM sync_demand WHERE (satisfied_at IS NULL OR "
                "satisfied_at < wanted_at) " + only + "ORDER BY connection, day", {"c": connection}).fetchall()
        return [(r["connection"], r["day"], r["wanted_at"]) for r in rows]

    def due_demand(self, stranded_after: float, connections: Sequence[str], limit: int = 100) -> list[tuple[str, date]]:
        """Wanted days nothing satisfied within ``stranded_after`` seconds (their run was skipped,
        failed or never submitted), each asked again no sooner than ``stranded_after`` doubled per
        earlier request (at most 32 times it): a day whose extraction keeps failing is not hammered."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT connection, day FROM sync_demand WHERE connection = ANY(%(c)s) AND "
                "(satisfied_at IS NULL OR satisfied_at < wanted_at) AND "
                "wanted_at < now() - make_interval(secs => %(s)s) AND (requested_at IS NULL OR "
                "requested_at < now() - make_interval(secs => %(s)s * power(2, least(requests, 5)))) "
                "ORDER BY wanted_at LIMIT %(n)s",
                {"c": list(connections), "s": stranded_after, "n": limit}).fetchall()
        return [(r["connection"], r["day"]) for r in rows]

    def demand_requested(self, pairs: Iterable[tuple[str, date]]) -> None:
        with self.transaction() as conn:
            for connection, day in pairs:
                conn.execute("UPDATE sync_demand SET requests = requests + 1, requested_at = now() "
                             "WHERE connection = %s AND day = %s", (connection, day))

    def extraction_began(self, connection: str, day: date, run_id: str) -> datetime | None:
        """When this run's extraction of the day began: the earliest of its three document reads
        (their 'extracted' audit rows), None unless this run read all three (a re-execution that
        reused an earlier run's reads proves nothing about changes since)."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT source_type, min((detail->>'began')::timestamptz) AS began FROM audit WHERE run_id = %s "
                "AND connection = %s AND source_type = ANY(%s) AND source_id = '*' AND step = 'extracted' "
                "AND detail->>'day' = %s AND detail ? 'began' GROUP BY source_type",
                (run_id, connection, list(DEMAND_TYPES), str(day))).fetchall()
        began = {r["source_type"]: r["began"] for r in rows}
        return min(began.values()) if set(DEMAND_TYPES) <= set(began) else None

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

    def linked_sources(self, connection: str, entity: str, target_keys: Iterable[str]) -> dict[str, str]:
        """ERP key -> the ServiceTitan id linked to it (keys compared case-insensitively, as the
        ERPs do): whose a party found by name already is."""
        keys = sorted({k.casefold() for k in target_keys})
        if not keys:
            return {}
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (lower(target_key)) target_key, source_id FROM id_map WHERE connection = %s "
                "AND entity = %s AND lower(target_key) = ANY(%s) ORDER BY lower(target_key), source_id",
                (connection, entity, keys),
            ).fetchall()
        return {r["target_key"]: r["source_id"] for r in rows}

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
        self.set_cursors(connection, {name: value})

    def set_cursors(self, connection: str, values: dict[str, str]) -> None:
        """Several of a connection's cursors at once: all move or none (one transaction)."""
        with self.transaction() as conn:
            for name, value in values.items():
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
