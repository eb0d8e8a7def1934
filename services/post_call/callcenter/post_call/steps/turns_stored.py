"""Wake the summary step the moment the transcript step commits a turn (PostgreSQL NOTIFY).

The transcript step sends ``pg_notify(channel, call_id)`` in the transaction that stores a turn, so
the notification is delivered at commit, to every process listening. A summary waiting for a
call's transcript registers before it counts the stored turns, so no commit can slip between the
count and the wait. No notification (the transcript step is down, the listener connection died)
only means the wait ends at its deadline and the old retry path takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import asyncpg

from callcenter.common.logging import get_logger

log = get_logger(__name__)


def channel_for(schema: str) -> str:
    """The notification channel of one database schema (channels are database-wide)."""
    return f"cc_turns_stored_{schema}"[:63]


async def notify_turns_stored(
    conn: asyncpg.Connection, *, channel: str, call_ids: list[str]
) -> None:
    """Queue one notification per call; PostgreSQL delivers them when the transaction commits."""
    await conn.execute(
        "SELECT pg_notify($1, c) FROM unnest($2::text[]) AS c", channel, list(call_ids)
    )


class TurnsStoredListener:
    """One listening connection per process; waiters keyed by call id."""

    def __init__(self, *, db: asyncpg.Pool, channel: str) -> None:
        self._db = db
        self._channel = channel
        self._conn: asyncpg.Connection | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        #: How many summaries are waiting for a turn right now.
        self.waiting = 0

    @property
    def listening(self) -> bool:
        """True while the listening connection is open."""
        return self._conn is not None and not self._conn.is_closed()

    async def start(self) -> None:
        """Take a connection from the pool and LISTEN on it."""
        conn = await self._db.acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except Exception:
            await self._db.release(conn)
            raise
        self._conn = conn

    async def close(self) -> None:
        """Stop listening and give the connection back."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._db.release(conn)

    def watch(self, call_id: str) -> contextlib.AbstractContextManager[asyncio.Event]:
        """An event set whenever a turn of ``call_id`` is committed, while the block runs."""
        return self.watch_any([call_id])

    @contextlib.contextmanager
    def watch_any(self, call_ids: list[str]) -> Iterator[asyncio.Event]:
        """One event set whenever a turn of any of ``call_ids`` is committed, while the block runs."""
        event = asyncio.Event()
        for call_id in call_ids:
            self._waiters.setdefault(call_id, set()).add(event)
        try:
            yield event
        finally:
            for call_id in call_ids:
                waiters = self._waiters.get(call_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[call_id]

    async def wait(self, committed: asyncio.Event, *, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for ``committed`` (from :meth:`watch`); False at the deadline."""
        self.waiting += 1
        try:
            await asyncio.wait_for(committed.wait(), timeout_s)
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        return True

    def _on_notify(self, conn: asyncpg.Connection, pid: int, channel: str, payload: object) -> None:
        for event in self._waiters.get(str(payload), ()):
            event.set()
