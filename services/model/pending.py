"""Bounded stores of the model service: pure logic, no Kafka.

:class:`PendingStore` holds what was predicted for each event until its label arrives or its
feedback window closes. :class:`BoundedMap` remembers ids (and labels) seen lately, to recognise
duplicates and late labels. Both are bounded by count, so memory stays flat whatever the label
rate.
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from schemas.events import Label
from services.model import journal

T = TypeVar("T")


@dataclass
class PendingEntry:
    """An event waiting for its label: its model inputs, predictions and deadline."""

    event_id: str
    x: dict[str, float]
    event_time: datetime
    deadline: float
    predictions: dict[str, tuple[int, object, float | None]] = field(default_factory=dict)
    """model name -> (model version, prediction, score)."""
    label: Label | None = None
    """The label, once it arrived; it is learned when stream time passes its ``label_time``."""
    class_probabilities: dict[str, dict[str, float]] | None = None
    """model name -> the class probabilities it predicted, kept for multiclass labels only (for
    log loss). A plain ``None`` default, so entries pickled before this field existed load."""
    segment: str | None = None
    """With ``[models] segment_by``: the segment whose models answered, and will learn."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as a tuple of its fields: a checkpoint pickles tens of thousands of them."""
        return PendingEntry, (self.event_id, self.x, self.event_time, self.deadline,
                              self.predictions, self.label, self.class_probabilities,
                              self.segment)


class PendingStore:
    """Pending entries in arrival order, at most ``capacity``; the oldest is evicted first."""

    def __init__(self, capacity: int, name: str = "pending") -> None:
        self._entries = BoundedMap[PendingEntry](capacity, name)
        self._deadlines: list[tuple[float, str]] = []
        self._capacity = capacity
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    def add(self, entry: PendingEntry) -> PendingEntry | None:
        """Store ``entry``; return the entry evicted to make room, if any."""
        forgotten = self._entries.put(entry.event_id, entry)
        heapq.heappush(self._deadlines, (entry.deadline, entry.event_id))
        if forgotten is not None:
            self.evicted += 1
        self._compact()
        return None if forgotten is None else forgotten[1]

    def take(self, event_id: str) -> PendingEntry | None:
        """Remove and return the entry of ``event_id``, if pending."""
        return self._entries.pop(event_id)

    def expire(self, now: float) -> Iterator[PendingEntry]:
        """Remove and yield entries whose deadline is at or before ``now`` (arrival order)."""
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, event_id = heapq.heappop(self._deadlines)
            entry = self._entries.get(event_id)
            if entry is not None and entry.deadline == deadline:
                self._entries.pop(event_id)
                yield entry
        self._compact()

    def _compact(self) -> None:
        """Drop the deadlines of entries taken or evicted once they outnumber the live ones.

        They are otherwise dropped only when they reach the top of the heap, which a deadline
        earlier than theirs (events arriving out of time order) can postpone indefinitely.
        """
        if len(self._deadlines) > 2 * len(self._entries) + 1024:
            self._rebuild_deadlines()

    def _rebuild_deadlines(self) -> None:
        self._deadlines = [(e.deadline, e.event_id) for e in self._entries.values()]
        heapq.heapify(self._deadlines)

    def get(self, event_id: str) -> PendingEntry | None:
        """The entry of ``event_id`` without removing it."""
        return self._entries.get(event_id)

    def attach_label(self, entry: PendingEntry, label: Label) -> None:
        """Give the pending ``entry`` its label (recorded for the next delta checkpoint)."""
        entry.label = label
        self._entries.touch(entry.event_id)

    def has_label(self, event_id: str) -> bool:
        """True if ``event_id`` is pending and its label has arrived."""
        entry = self._entries.get(event_id)
        return entry is not None and entry.label is not None

    def next_deadline(self) -> float | None:
        """The earliest deadline still pending, or None."""
        while self._deadlines:
            deadline, event_id = self._deadlines[0]
            entry = self._entries.get(event_id)
            if entry is not None and entry.deadline == deadline:
                return deadline
            heapq.heappop(self._deadlines)
        return None

    def entries(self) -> list[PendingEntry]:
        """A copy of the pending entries in arrival order."""
        return self._entries.values()

    def __getstate__(self) -> dict[str, object]:
        """The entries and counters; the deadline heap is rebuilt from the entries on load."""
        return {"entries": self._entries, "capacity": self._capacity, "evicted": self.evicted}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_entries" in state:  # pickled before this form: an OrderedDict and the heap
            self._entries = BoundedMap[PendingEntry](state["_capacity"])
            for event_id, entry in state["_entries"].items():
                self._entries.put(event_id, entry)
            self._capacity, self.evicted = state["_capacity"], state["evicted"]
        else:
            self._entries, self._capacity = state["entries"], state["capacity"]
            self.evicted = state["evicted"]
        self._entries.name = self._entries.name or "pending"
        self._rebuild_deadlines()


class BoundedMap(Generic[T]):
    """An insertion-ordered map that forgets its oldest items beyond ``capacity``.

    Built for hundreds of thousands of ids that a checkpoint pickles every second: the items
    live in a plain dict (its order is the map's order; iterating it is an order of magnitude
    faster than an ``OrderedDict``), and a queue of keys finds the oldest one. A key put again or
    popped leaves a stale copy in the queue, skipped when it reaches the front. It pickles as one
    string of keys and one list of values; keep values small (ints, bools) or give them a cheap
    ``__reduce__``.

    A map with a ``name`` is journaled (:mod:`services.model.journal`): once a checkpoint has
    pickled it, it records its puts and pops, and a delta checkpoint pickles only those. A value
    changed in place must be :meth:`touch`-ed to be part of the next delta. Evictions are not
    recorded: replaying the same puts with the same capacity evicts the same items.
    """

    def __init__(self, capacity: int, name: str = "") -> None:
        self._items: dict[str, T] = {}
        self._capacity = capacity
        self._queue: deque[str] = deque()  # keys, oldest first, stale copies included
        self._stale: dict[str, int] = {}  # key -> stale copies of it in the queue
        self.name = name
        self._journal: list[tuple[int, str, Any]] | None = None  # changes since the last dump

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def put(self, key: str, value: T) -> tuple[str, T] | None:
        """Store ``value``; return the oldest item if it had to be forgotten to make room."""
        if self._journal is not None:
            self._journal.append((_PUT, key, value))
        if self._items.pop(key, _MISSING) is not _MISSING:
            self._stale[key] = self._stale.get(key, 0) + 1
        forgotten: tuple[str, T] | None = None
        if len(self._items) >= self._capacity:
            # Room is made before the new item goes in: a reader in another thread (the
            # ``/metrics`` gauges) never sees more than ``capacity`` items.
            if not self._items:
                return key, value  # capacity 0: nothing is kept
            oldest = self._front()
            forgotten = oldest, self._items.pop(oldest)
        self._items[key] = value
        self._queue.append(key)
        if len(self._queue) > 2 * len(self._items) + 1024:
            self._queue = deque(self._items)
            self._stale.clear()
        return forgotten

    def pop(self, key: str) -> T | None:
        if key not in self._items:
            return None
        if self._journal is not None:
            self._journal.append((_POP, key, None))
        self._stale[key] = self._stale.get(key, 0) + 1
        return self._items.pop(key)

    def touch(self, key: str) -> None:
        """Record that the value of ``key`` was changed in place (its age stays)."""
        if self._journal is not None and key in self._items:
            self._journal.append((_TOUCH, key, self._items[key]))

    def get(self, key: str) -> T | None:
        """The value of ``key`` (None if absent), without changing its age."""
        return self._items.get(key)

    def oldest(self) -> tuple[str, T] | None:
        """The oldest item, without removing it; None when empty."""
        if not self._items:
            return None
        key = self._front()
        self._queue.appendleft(key)
        return key, self._items[key]

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def values(self) -> list[T]:
        return list(self._items.values())

    def _front(self) -> str:
        """Take the oldest live key off the queue (the map must not be empty)."""
        while True:
            key = self._queue.popleft()
            stale = self._stale.get(key)
            if stale is None:
                return key
            if stale == 1:
                del self._stale[key]
            else:
                self._stale[key] = stale - 1

    def restart_journal(self) -> None:
        """Record changes from now on (called after a checkpoint pickled this map)."""
        self._journal = [] if self.name else None

    def replay(self, changes: list[tuple[int, str, Any]]) -> None:
        """Apply the changes another instance recorded (from a delta checkpoint)."""
        recording, self._journal = self._journal, None
        for kind, key, value in changes:
            if kind == _PUT:
                self.put(key, value)
            elif kind == _POP:
                self.pop(key)
            elif key in self._items:
                self._items[key] = value
        self._journal = recording

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Whole, or the changes since the last checkpoint when pickled for a delta one."""
        if self.name and journal.dumping_delta(self) and self._journal is not None:
            return journal.replayed, (self.name, self._journal)
        return _restored_map, (self.__getstate__(),)

    def __getstate__(self) -> dict[str, object]:
        keys = list(self._items)
        return {"capacity": self._capacity, "keys": "".join(keys), "name": self.name,
                "key_lengths": array("I", map(len, keys)), "values": list(self._items.values())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_items" in state:  # pickled before the compact form: an OrderedDict of the items
            items = dict(state["_items"])
            capacity = state["_capacity"]
        else:
            text: str = state["keys"]
            keys, start = [], 0
            for length in state["key_lengths"]:
                keys.append(text[start:start + length])
                start += length
            items = dict(zip(keys, state["values"], strict=True))
            capacity = state["capacity"]
        self._items, self._capacity = items, capacity
        self._queue, self._stale = deque(items), {}
        self.name, self._journal = state.get("name", ""), None
        journal.loaded(self)


def named(store: BoundedMap[T], name: str) -> BoundedMap[T]:
    """``store``, journaled under ``name`` (a store restored from a checkpoint written before
    stores had names has none)."""
    store.name = name
    return store


def _restored_map(state: dict[str, Any]) -> BoundedMap[Any]:
    restored: BoundedMap[Any] = BoundedMap.__new__(BoundedMap)
    restored.__setstate__(state)
    return restored


_MISSING: Any = object()
_PUT, _POP, _TOUCH = 0, 1, 2
