"""Bounded stores of the model service: pure logic, no Kafka.

:class:`PendingStore` holds what was predicted for each event until its label arrives or its
feedback window closes. :class:`RecentIds` remembers ids seen lately, to recognise duplicates and
late labels. Both are bounded by count, so memory stays flat whatever the label rate.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from schemas.events import Label

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


class PendingStore:
    """Pending entries in arrival order, at most ``capacity``; the oldest is evicted first."""

    def __init__(self, capacity: int) -> None:
        self._entries: OrderedDict[str, PendingEntry] = OrderedDict()
        self._deadlines: list[tuple[float, str]] = []
        self._capacity = capacity
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    def add(self, entry: PendingEntry) -> PendingEntry | None:
        """Store ``entry``; return the entry evicted to make room, if any."""
        self._entries[entry.event_id] = entry
        heapq.heappush(self._deadlines, (entry.deadline, entry.event_id))
        if len(self._entries) > self._capacity:
            self.evicted += 1
            return self._entries.popitem(last=False)[1]
        return None

    def take(self, event_id: str) -> PendingEntry | None:
        """Remove and return the entry of ``event_id``, if pending."""
        return self._entries.pop(event_id, None)

    def expire(self, now: float) -> Iterator[PendingEntry]:
        """Remove and yield entries whose deadline is at or before ``now`` (arrival order)."""
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, event_id = heapq.heappop(self._deadlines)
            entry = self._entries.get(event_id)
            if entry is not None and entry.deadline == deadline:
                del self._entries[event_id]
                yield entry
        if len(self._deadlines) > 2 * len(self._entries) + 1024:
            self._deadlines = [(e.deadline, e.event_id) for e in self._entries.values()]
            heapq.heapify(self._deadlines)

    def get(self, event_id: str) -> PendingEntry | None:
        """The entry of ``event_id`` without removing it."""
        return self._entries.get(event_id)

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
        return list(self._entries.values())


class BoundedMap(Generic[T]):
    """An insertion-ordered map that forgets its oldest items beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self._items: OrderedDict[str, T] = OrderedDict()
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def put(self, key: str, value: T) -> tuple[str, T] | None:
        """Store ``value``; return the oldest item if it had to be forgotten to make room."""
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._capacity:
            return self._items.popitem(last=False)
        return None

    def pop(self, key: str) -> T | None:
        return self._items.pop(key, None)

    def get(self, key: str) -> T | None:
        """The value of ``key`` (None if absent), without changing its age."""
        return self._items.get(key)

    def oldest(self) -> tuple[str, T] | None:
        """The oldest item, without removing it; None when empty."""
        return next(iter(self._items.items()), None)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())


EarlyLabels = BoundedMap[tuple[Label, float]]
"""Labels that arrived before their features: label and the stream time it arrived."""
