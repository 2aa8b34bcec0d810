"""Delta checkpoints: a full dump and the deltas after it load to the state of the last delta."""

from __future__ import annotations

import pickle
import random
import uuid
from datetime import UTC, datetime

import pytest

from schemas.events import Label
from services.model import journal
from services.model.pending import BoundedMap, PendingEntry, PendingStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def churn(store: BoundedMap[int], rng: random.Random, steps: int, keys: int) -> None:
    """Random puts (new and existing keys, so evictions too) and pops."""
    for _ in range(steps):
        key = f"k{rng.randrange(keys)}"
        if rng.random() < 0.75:
            store.put(key, rng.randrange(1_000))
        else:
            store.pop(key)


def test_every_prefix_of_a_chain_loads_to_the_state_it_was_taken_from() -> None:
    rng = random.Random(11)
    store = BoundedMap[int](capacity=300, name="ids")
    state = {"ids": store, "counter": 0}
    dumps, expected = [], []
    for number in range(12):
        churn(store, rng, steps=400, keys=500)
        state["counter"] = number
        dumps.append(journal.dump(state, delta=number > 0))
        expected.append((store.items(), number))
    for length in range(1, len(dumps) + 1):
        loaded = journal.load(dumps[:length])
        assert (loaded["ids"].items(), loaded["counter"]) == expected[length - 1]
    restored: BoundedMap[int] = journal.load(dumps)["ids"]
    for key in ("new-1", "new-2"):  # the same capacity and age order: the same evictions
        assert restored.put(key, 1) == store.put(key, 1)


def test_a_value_changed_in_place_and_touched_is_in_the_next_delta() -> None:
    store = PendingStore(capacity=10)
    store.add(PendingEntry("e-1", {"x": 1.0}, T0, deadline=30.0))
    full = journal.dump({"pending": store}, delta=False)
    entry = store.get("e-1")
    assert entry is not None
    store.attach_label(entry, Label(event_id="e-1", label_time=T0, label=1))
    delta = journal.dump({"pending": store}, delta=True)
    restored: PendingStore = journal.load([full, delta])["pending"]
    assert restored.has_label("e-1")
    assert [e.event_id for e in restored.expire(31.0)] == ["e-1"]  # deadlines rebuilt


def test_a_delta_holds_the_changes_not_the_store() -> None:
    store = BoundedMap[int](capacity=100_000, name="ids")
    for n in range(100_000):
        store.put(str(uuid.UUID(int=n)), n)
    full = journal.dump({"ids": store}, delta=False)
    for n in range(100_000, 100_100):  # 100 new ids, each evicting the oldest
        store.put(str(uuid.UUID(int=n)), n)
    delta = journal.dump({"ids": store}, delta=True)
    print(f"full {len(full):,} bytes, delta of 100 puts {len(delta):,} bytes")
    assert len(delta) < len(full) / 100
    assert journal.load([full, delta])["ids"].items() == store.items()


def test_stores_without_a_name_and_new_named_ones_are_pickled_whole_in_a_delta() -> None:
    plain, named = BoundedMap[int](capacity=5), BoundedMap[int](capacity=5, name="a")
    plain.put("p", 1)
    full = journal.dump({"plain": plain, "named": named}, delta=False)
    plain.put("q", 2)
    later = BoundedMap[int](capacity=5, name="b")  # created after the full dump
    later.put("r", 3)
    delta = journal.dump({"plain": plain, "named": named, "later": later}, delta=True)
    loaded = journal.load([full, delta])
    assert loaded["plain"].items() == [("p", 1), ("q", 2)]
    assert loaded["later"].items() == [("r", 3)]


def test_a_delta_without_the_full_dump_before_it_is_refused() -> None:
    store = BoundedMap[int](capacity=5, name="ids")
    journal.dump({"ids": store}, delta=False)
    store.put("a", 1)
    delta = journal.dump({"ids": store}, delta=True)
    with pytest.raises(journal.JournalError, match="ids"):
        journal.load([delta])


def test_pickling_outside_a_checkpoint_neither_uses_nor_restarts_the_journal() -> None:
    store = BoundedMap[int](capacity=5, name="ids")
    full = journal.dump({"ids": store}, delta=False)
    store.put("a", 1)
    copy = pickle.loads(pickle.dumps(store))  # noqa: S301 - e.g. a test's or a tool's copy
    assert copy.items() == [("a", 1)]
    store.put("b", 2)
    delta = journal.dump({"ids": store}, delta=True)
    assert journal.load([full, delta])["ids"].items() == [("a", 1), ("b", 2)]


def test_a_pending_store_from_before_stores_had_names_is_journaled_after_its_restore() -> None:
    old_entries = BoundedMap[PendingEntry](capacity=5_000)  # pickled unnamed, as before
    for n in range(2_000):
        old_entries.put(f"e-{n}", PendingEntry(f"e-{n}", {"x": float(n)}, T0, float(n)))
    store = PendingStore(capacity=1)
    store.__setstate__({"entries": pickle.loads(pickle.dumps(old_entries)),  # noqa: S301
                        "capacity": 5_000, "evicted": 0})
    full = journal.dump({"pending": store}, delta=False)
    store.add(PendingEntry("new", {"x": 1.0}, T0, 9_999.0))
    delta = journal.dump({"pending": store}, delta=True)
    assert len(delta) < len(full) / 20
    assert journal.load([full, delta])["pending"].get("new") is not None
