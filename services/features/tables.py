"""Entity state tables and their changelogs: what makes a restarted worker give the same vectors.

A stage's table maps an entity key to its state. Every event's state change happens in memory;
the changelog gets the state of each changed entity once per producer flush (faust flushes the
producer before it commits offsets, when partitions are revoked and when it stops), written by
:class:`Checkpoint` in this order:

1. it copies the changed states (one synchronous step, so they are consistent);
2. it waits until every output sent so far (vectors, internal hops, dead letters) is on the
   broker, and raises if one could not be delivered (then nothing is committed);
3. it sends the copies to the changelogs and waits for them too.

Each state also records, per source topic, the offset of the last event whose outputs were sent
(:func:`passed`, :func:`mark_passed`). So a state in a changelog implies that the outputs of every
event up to its offsets are durable: after a restart, an event at or below them is skipped (its
outputs are already there), whatever the commit interval and however many events an entity had
since the last commit. An event above them is processed; if its own change is already in the
state (it was absorbed but its outputs were not yet sent), the event memory of
:func:`~services.features.pipeline.advance` gives it the same aggregates without counting it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from services.features.aggregates import EntityState

YIELD_EVERY = 32
Headers = list[tuple[str, bytes]]
ProducerSend = Callable[
    [str, bytes | None, bytes | None, int | None, float | None, Headers | None],
    Awaitable[Awaitable[Any]],
]
"""faust's ``Producer.send(topic, key, value, partition, timestamp, headers)``: it enqueues the
record and returns its delivery future."""


class DeliveryFailed(RuntimeError):
    """An output could not be delivered: the worker must not commit past it."""


class Outbox:
    """Sends raw records through the worker's producer and follows their deliveries.

    Records go straight to faust's producer (which hands them to aiokafka's batches), not through
    faust topic objects: the worker's records are bytes already, and that path costs a good
    share of the worker's time per event.
    """

    def __init__(self, send: Callable[[], ProducerSend]) -> None:
        self._send = send
        self._pending: set[asyncio.Future[Any]] = set()
        self._error: BaseException | None = None

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Enqueue one record (``partition`` None: by the key's hash); do not wait for it."""
        delivery = await self._send()(topic, key, value, partition, None, headers)
        future = asyncio.ensure_future(delivery)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None and self._error is None:
            self._error = future.exception()

    async def settle(self) -> None:
        """Wait for every record sent so far; raise :class:`DeliveryFailed` if one was lost."""
        waiting = list(self._pending)
        if waiting:
            await asyncio.wait(waiting)
        if self._error is not None:
            raise DeliveryFailed(f"an output was not delivered: {self._error!r}") from self._error


def passed(state: EntityState | None, source: str, offset: int) -> bool:
    """Whether the event at ``offset`` of ``source`` is at or below the state's mark for it."""
    if state is None:
        return False
    marks: dict[str, int] = state.get("offsets", {})
    return offset <= marks.get(source, -1)


def mark_passed(state: EntityState, source: str, offset: int) -> None:
    """Record that the outputs of the events of ``source`` up to ``offset`` have been sent."""
    state.setdefault("offsets", {})[source] = offset


class StageTable:
    """Entity states of one stage by entity key (bytes), backed by a faust table's changelog."""

    def __init__(self, table: faust.Table[bytes, Any]) -> None:
        self._table = table
        self._changed: dict[bytes, int] = {}

    def get(self, key: bytes) -> EntityState | None:
        """The entity's state, or None if it has none."""
        state: EntityState | None = self._table.data.get(key)
        return state

    def put(self, key: bytes, state: EntityState, partition: int) -> None:
        """Keep ``state`` for ``key``; its changelog record goes to ``partition``."""
        self._table.data[key] = state
        self._changed[key] = partition

    def __len__(self) -> int:
        return len(self._table.data)

    def copy_changed(self) -> list[tuple[bytes, int, bytes]]:
        """(key, partition, serialised state) of every entity changed since the last copy."""
        changed, self._changed = self._changed, {}
        data = self._table.data
        return [(key, partition, orjson.dumps(data[key])) for key, partition in changed.items()]

    async def write(self, copies: list[tuple[bytes, int, bytes]], outbox: Outbox) -> None:
        """Send ``copies`` to the changelog, letting the agents run every few records (a send
        that finds room in its batch does not give up the event loop)."""
        topic = self._table.changelog_topic.get_topic_name()
        for count, (key, partition, value) in enumerate(copies, 1):
            await outbox.send(topic, key, value, partition)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)


class Checkpoint:
    """The flush hook that writes the changed states of ``tables`` (see the module docstring)."""

    def __init__(self, tables: list[StageTable], outbox: Outbox) -> None:
        self.tables = tables
        self.outbox = outbox
        self._one_at_a_time = asyncio.Lock()

    async def __call__(self) -> None:
        """Raises :class:`DeliveryFailed` before writing any state if an output was lost: the
        flush fails, so faust does not commit.

        Checkpoints run one at a time (a commit and a rebalance may both flush): an older copy
        of a state must never reach the changelog after a newer one.
        """
        async with self._one_at_a_time:
            copies = [table.copy_changed() for table in self.tables]
            await self.outbox.settle()
            for table, changed in zip(self.tables, copies, strict=True):
                await table.write(changed, self.outbox)
            await self.outbox.settle()
