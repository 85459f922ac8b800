"""The inbox writer's group commit against the real sync store: one row the database refuses fails
alone (issue 22, break 8), everyone else in its batch is committed and told so."""

from __future__ import annotations

import asyncio

from receiver.inbox_writer import InboxWriter, Unstorable
from tests.receiver.webhook_deliveries import CONNECTION, inbox_rows

BAD = {7: ("evt\x00007", {}), 21: ("evt-021", {"x-servicetitan-note": "a\u0000b"})}  # text / jsonb refuse NUL


async def _write_all(url: str) -> list:
    writer = InboxWriter(url, writers=1, max_batch=500)
    await writer.open()
    try:
        adds = []
        for n in range(60):
            event_id, headers = BAD.get(n, (f"evt-{n:03d}", {}))
            adds.append(writer.add(CONNECTION, event_id, "invoice.created", b'{"n": %d}' % n, headers))
        return await asyncio.gather(*adds, return_exceptions=True)
    finally:
        await writer.close()


def test_a_row_the_database_refuses_fails_alone(database_url, store):
    """Input: 60 deliveries queued together (one group commit), two of which PostgreSQL cannot hold
    (a NUL in the text event id, a NUL in the jsonb headers). Expected: those two raise
    ``Unstorable`` naming the database's reason; the other 58 are committed and answered "new".
    Before: the one INSERT failed and every delivery of the batch was told StoreUnavailable (503)."""
    results = asyncio.run(_write_all(database_url))
    for n, result in enumerate(results):
        if n in BAD:
            assert isinstance(result, Unstorable), (n, result)
            assert "the sync store cannot hold this delivery" in str(result)
        else:
            assert result is True, (n, result)
    assert sorted(r["event_id"] for r in inbox_rows(store)) == [f"evt-{n:03d}" for n in range(60) if n not in BAD]


def test_duplicates_in_one_batch_are_stored_once(database_url, store):
    async def twice() -> list:
        writer = InboxWriter(database_url, writers=1)
        await writer.open()
        try:
            return await asyncio.gather(*(writer.add(CONNECTION, "same", "invoice.created", b"{}", {})
                                          for _ in range(2)))
        finally:
            await writer.close()

    assert sorted(asyncio.run(twice())) == [False, True]
    assert len(inbox_rows(store)) == 1
