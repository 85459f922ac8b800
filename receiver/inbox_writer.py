"""The receiver's durable write path into the sync store's ``inbox`` table, with group commit.

Why not ``SyncStore.add_inbox_event``: it is synchronous (one pooled connection and one
INSERT + COMMIT per event, i.e. one WAL flush per delivery), which caps throughput and would tie
up a thread per waiting request. Here each delivery waits on a future while a few writer tasks
take every event queued so far, insert them in one statement (``ON CONFLICT DO NOTHING``), commit
once, and then release all their waiters. A waiter hears "stored" or "duplicate" only after the
commit returned, so an acknowledged event survives a crash. The table and its unique key
(connection, event_id) are the sync store's; this module writes the same columns.

Row isolation: when a grouped INSERT fails, the batch is written again row by row, each under its
own savepoint in one transaction, so one row the database refuses fails alone (``Unstorable``, a
4xx for that sender: redelivering the same bytes would fail the same way) while its neighbours are
committed and acknowledged. Only a store that is down fails everyone (``StoreUnavailable``, 503).
Measured with bench/receiver_load.py on the 2-core VM: one commit per delivery tops out near
2,500/s; group commit sustains 3,000/s at p99 ~30 ms. (fsync costs 25 µs on that VM; where it
costs milliseconds the per-delivery path falls much further, the grouped one far less.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg_pool import AsyncConnectionPool

from resources.redaction import redact

log = logging.getLogger("fieldledger.receiver")

INSERT_BATCH = (
    "INSERT INTO inbox (connection, event_id, event_type, body, headers, detail) "
    "SELECT c, e, t, b, h::jsonb, d FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], %s::text[], "
    "%s::text[]) AS u(c, e, t, b, h, d) "
    "ON CONFLICT (connection, event_id) DO NOTHING RETURNING connection, event_id"
)
INSERT_ONE = (
    "INSERT INTO inbox (connection, event_id, event_type, body, headers, detail) "
    "VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (connection, event_id) DO NOTHING RETURNING id"
)


class StoreUnavailable(RuntimeError):
    """The inbox write did not commit (or we cannot tell): the delivery must not be acknowledged."""


class Unstorable(ValueError):
    """The database refused this one delivery's row (its neighbours were stored); the message says why."""


@dataclass
class _Pending:
    connection: str
    event_id: str
    event_type: str
    body: bytes
    headers: str
    detail: str | None
    done: asyncio.Future


_STOP = object()


class InboxWriter:
    """Queue → batched INSERT … ON CONFLICT DO NOTHING → COMMIT → answer each waiter."""

    def __init__(self, url: str, *, writers: int = 2, max_batch: int = 500, wait_timeout: float = 10.0,
                 on_commit: Callable[[int], None] | None = None):
        self.url = url
        self.writers = writers
        self.max_batch = max_batch
        self.wait_timeout = wait_timeout
        self.on_commit = on_commit
        self.pool: AsyncConnectionPool | None = None
        self._queue: asyncio.Queue | None = None
        self._tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        self.pool = AsyncConnectionPool(
            self.url, min_size=self.writers + 1, max_size=self.writers + 1, open=False, timeout=5,
            kwargs={"autocommit": False},
        )
        await self.pool.open(wait=True, timeout=30)
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._run(), name=f"inbox-writer-{i}") for i in range(self.writers)]

    async def close(self) -> None:
        """Write everything already queued, then stop the writers and close the pool."""
        if self._queue is not None:
            for _ in self._tasks:
                self._queue.put_nowait(_STOP)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        if self.pool is not None:
            await self.pool.close()

    async def add(self, connection: str, event_id: str, event_type: str, body: bytes, headers: dict,
                  detail: str | None = None) -> bool:
        """Store one delivery; True when new, False for a duplicate. Returns only after COMMIT.
        Raises StoreUnavailable when the write failed or took longer than ``wait_timeout``, and
        Unstorable when the database refused this row alone."""
        if self._queue is None or not self._tasks:
            raise StoreUnavailable("the inbox writer is not running")
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(connection, event_id, event_type, body, json.dumps(headers), detail, done))
        try:
            return await asyncio.wait_for(asyncio.shield(done), self.wait_timeout)
        except TimeoutError:
            done.add_done_callback(lambda f: f.cancelled() or f.exception())  # nobody waits any more
            raise StoreUnavailable(f"the inbox write did not commit within {self.wait_timeout:g} s") from None

    async def ping(self, timeout: float = 2.0) -> bool:
        if self.pool is None:
            return False
        try:
            async with self.pool.connection(timeout=timeout) as conn:
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout)
                await conn.rollback()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    async def _run(self) -> None:
        assert self._queue is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        first_of: dict[tuple[str, str], _Pending] = {}
        repeats: list[_Pending] = []
        for item in batch:
            key = (item.connection, item.event_id)
            if key in first_of:
                repeats.append(item)  # the same event twice in one batch: the later ones are duplicates
            else:
                first_of[key] = item
        unique = list(first_of.values())
        try:
            inserted, refused = await self._insert(unique)
        except Exception as exc:  # noqa: BLE001 - every waiter must hear about it
            log.error("inbox write of %d deliveries failed: %s", len(batch), redact(f"{exc.__class__.__name__}: {exc}"))
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(StoreUnavailable("the inbox write failed"))
            return
        if self.on_commit:
            self.on_commit(len(batch) - len(refused))
        for item in [*first_of.values(), *repeats]:  # repeats of a stored event are duplicates
            key = (item.connection, item.event_id)
            if item.done.done():
                continue
            if key in refused:
                item.done.set_exception(Unstorable(refused[key]))
            else:
                item.done.set_result(key in inserted and item is first_of[key])

    async def _insert(self, items: list[_Pending]) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
        """Insert and commit ``items``: ({keys inserted}, {key: why the database refused it})."""
        assert self.pool is not None
        async with self.pool.connection() as conn:
            try:
                cursor = await conn.execute(INSERT_BATCH, (
                    [i.connection for i in items], [i.event_id for i in items], [i.event_type for i in items],
                    [i.body for i in items], [i.headers for i in items], [i.detail for i in items],
                ))
                inserted = {(row[0], row[1]) for row in await cursor.fetchall()}
                await conn.commit()
                return inserted, {}
            except (psycopg.DataError, psycopg.IntegrityError):  # a row it cannot hold: write them one by one
                await conn.rollback()
            return await self._insert_each(conn, items)

    @staticmethod
    async def _insert_each(conn, items: list[_Pending]) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
        inserted: set[tuple[str, str]] = set()
        refused: dict[tuple[str, str], str] = {}
        for item in items:
            key = (item.connection, item.event_id)
            try:
                async with conn.transaction():  # a savepoint: a refused row rolls back alone
                    cursor = await conn.execute(INSERT_ONE, (item.connection, item.event_id, item.event_type,
                                                             item.body, item.headers, item.detail))
                    if await cursor.fetchone() is not None:
                        inserted.add(key)
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                diag = exc.diag.message_primary or exc.__class__.__name__
                refused[key] = f"the sync store cannot hold this delivery ({diag})"
                log.error("inbox row for connection %r refused by the database: %s", item.connection, redact(diag))
        await conn.commit()
        return inserted, refused
