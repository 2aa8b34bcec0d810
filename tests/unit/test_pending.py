"""The model service's bounded stores."""

from __future__ import annotations

import pickle
import random
import sys
import threading
from collections import OrderedDict
from datetime import UTC, datetime

from services.model.pending import BoundedMap, PendingEntry, PendingStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(event_id: str, deadline: float) -> PendingEntry:
    return PendingEntry(event_id, {"x": 1.0}, T0, deadline)


def test_added_entries_can_be_taken_once() -> None:
    store = PendingStore(capacity=10)
    store.add(entry("a", 100.0))
    assert "a" in store
    assert len(store) == 1
    taken = store.take("a")
    assert taken is not None
    assert taken.event_id == "a"
    assert "a" not in store
    assert store.take("a") is None


def test_store_is_bounded_and_evicts_the_oldest_first() -> None:
    store = PendingStore(capacity=3)
    evicted = [store.add(entry(f"e{n}", 100.0 + n)) for n in range(5)]
    assert [e.event_id if e else None for e in evicted] == [None, None, None, "e0", "e1"]
    assert len(store) == 3
    assert store.evicted == 2
    assert [e.event_id for e in store.entries()] == ["e2", "e3", "e4"]


def test_memory_stays_bounded_under_a_flood() -> None:
    store = PendingStore(capacity=100)
    for n in range(10_000):
        store.add(entry(f"e{n}", 1e12))  # deadlines far away: only eviction bounds the store
        list(store.expire(0.0))
    assert len(store) == 100
    assert store.evicted == 9_900
    assert len(store._deadlines) <= 2 * 100 + 1024 + 1  # the deadline heap is compacted too


def test_the_deadline_heap_stays_bounded_when_nothing_expires() -> None:
    # Out of time order, as the model service sees them (it only expires once a deadline
    # passes): evicted entries' deadlines sit under an earlier live one, never reaching the top.
    store = PendingStore(capacity=100)
    for n in range(10_000):
        store.add(entry(f"e{n}", 1e12 - n))
        assert store.next_deadline() == 1e12 - n
        if n % 2 == 0:
            store.take(f"e{n}")
    assert len(store) == 100
    assert len(store._deadlines) <= 2 * 100 + 1024 + 1


def test_expire_yields_exactly_the_entries_due_at_now() -> None:
    rng = random.Random(5)
    store = PendingStore(capacity=1000)
    deadlines = {f"e{n}": float(rng.randint(0, 100)) for n in range(200)}
    for event_id, deadline in deadlines.items():
        store.add(entry(event_id, deadline))
    due = [e.event_id for e in store.expire(50.0)]
    assert sorted(due) == sorted(k for k, d in deadlines.items() if d <= 50.0)
    assert len(due) == len(set(due))
    assert all(deadlines[e.event_id] > 50.0 for e in store.entries())
    assert list(store.expire(50.0)) == []


def test_expire_comes_in_deadline_order() -> None:
    store = PendingStore(capacity=10)
    for event_id, deadline in [("late", 30.0), ("early", 10.0), ("middle", 20.0)]:
        store.add(entry(event_id, deadline))
    assert [e.event_id for e in store.expire(100.0)] == ["early", "middle", "late"]


def test_taken_and_evicted_entries_never_expire() -> None:
    store = PendingStore(capacity=2)
    store.add(entry("taken", 1.0))
    store.take("taken")
    store.add(entry("evicted", 2.0))
    store.add(entry("kept-1", 3.0))
    store.add(entry("kept-2", 4.0))
    assert [e.event_id for e in store.expire(10.0)] == ["kept-1", "kept-2"]


def test_bounded_map_forgets_the_oldest_beyond_capacity() -> None:
    seen = BoundedMap[int](capacity=3)
    for n in range(5):
        seen.put(f"k{n}", n)
    assert len(seen) == 3
    assert "k0" not in seen
    assert "k1" not in seen
    assert seen.items() == [("k2", 2), ("k3", 3), ("k4", 4)]


def test_bounded_map_put_refreshes_an_existing_key() -> None:
    seen = BoundedMap[int](capacity=2)
    seen.put("a", 1)
    seen.put("b", 2)
    seen.put("a", 3)  # "a" is now the newest
    seen.put("c", 4)
    assert seen.items() == [("a", 3), ("c", 4)]


def test_a_reader_in_another_thread_never_sees_more_than_capacity() -> None:
    """The ``/metrics`` gauges read ``len`` from the HTTP thread while the service puts: room is
    made before an item goes in, so no switch between threads can show capacity + 1."""
    seen, peak, done = BoundedMap[int](capacity=100), [0], threading.Event()

    def read() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], len(seen))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(100_000):
            seen.put(f"k{n}", n)
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert peak[0] == 100


def test_a_bounded_map_of_capacity_zero_keeps_nothing() -> None:
    seen = BoundedMap[int](capacity=0)
    assert seen.put("a", 1) == ("a", 1)
    assert len(seen) == 0
    assert seen.oldest() is None


def test_bounded_map_pop_removes_and_returns() -> None:
    seen = BoundedMap[str](capacity=2)
    seen.put("a", "x")
    assert seen.pop("a") == "x"
    assert seen.pop("a") is None
    assert len(seen) == 0


def test_bounded_map_oldest_peeks_without_removing() -> None:
    seen = BoundedMap[int](capacity=3)
    assert seen.oldest() is None
    seen.put("a", 1)
    seen.put("b", 2)
    assert seen.oldest() == ("a", 1)
    assert len(seen) == 2
    seen.pop("a")
    assert seen.oldest() == ("b", 2)


def test_bounded_map_survives_pickling_with_its_order_and_capacity() -> None:
    seen = BoundedMap[int](capacity=3)
    for key, value in [("é-1", 1), ("", 2), ("a-much-longer-event-id-" * 10, 3)]:
        seen.put(key, value)
    restored: BoundedMap[int] = pickle.loads(pickle.dumps(seen))  # noqa: S301
    assert restored.items() == seen.items()
    restored.put("new", 4)  # still bounded by the same capacity
    assert [key for key, _ in restored.items()] == ["", "a-much-longer-event-id-" * 10, "new"]


def test_a_bounded_map_pickled_in_the_earlier_form_still_loads() -> None:
    earlier = BoundedMap[bool](capacity=2)
    earlier.put("a", True)
    restored = BoundedMap[bool](capacity=1)
    restored.__setstate__(dict(vars(earlier)))  # what pickle gave before the compact form
    assert restored.items() == [("a", True)]
    restored.put("b", False)
    restored.put("c", True)
    assert restored.items() == [("b", False), ("c", True)]


def test_bounded_map_matches_a_plain_ordered_model_under_random_operations() -> None:
    rng = random.Random(4)
    seen, model = BoundedMap[int](capacity=50), OrderedDict[str, int]()
    for step in range(20_000):
        key, action = f"k{rng.randrange(120)}", rng.random()
        if action < 0.6:
            forgotten = seen.put(key, step)
            model[key] = step
            model.move_to_end(key)
            expected = model.popitem(last=False) if len(model) > 50 else None
            assert forgotten == expected
        elif action < 0.9:
            assert seen.pop(key) == model.pop(key, None)
        else:
            assert seen.oldest() == next(iter(model.items()), None)
        if step % 5_000 == 0:
            seen = pickle.loads(pickle.dumps(seen))  # noqa: S301
    assert seen.items() == list(model.items())


def test_a_pickled_pending_store_keeps_its_entries_order_and_deadlines() -> None:
    store = PendingStore(capacity=3)
    for n, deadline in enumerate([30.0, 10.0, 20.0, 40.0]):  # the first is evicted
        store.add(entry(f"e-{n}", deadline))
    store.get("e-2").predictions["m"] = (1, True, 0.75)  # type: ignore[union-attr]
    restored: PendingStore = pickle.loads(pickle.dumps(store))  # noqa: S301
    assert restored.entries() == store.entries()
    assert restored.evicted == 1
    assert [e.event_id for e in restored.expire(25.0)] == ["e-1", "e-2"]
    restored.add(entry("e-9", 50.0))
    restored.add(entry("e-10", 50.0))
    assert [e.event_id for e in restored.entries()] == ["e-3", "e-9", "e-10"]
    restored.add(entry("e-11", 50.0))  # still bounded by its capacity of 3
    assert [e.event_id for e in restored.entries()] == ["e-9", "e-10", "e-11"]


def test_a_pending_store_pickled_in_the_earlier_form_still_loads() -> None:
    earlier = {"_entries": OrderedDict([("a", entry("a", 5.0)), ("b", entry("b", 1.0))]),
               "_deadlines": [(1.0, "b"), (5.0, "a")], "_capacity": 2, "evicted": 4}
    restored = PendingStore(capacity=1)
    restored.__setstate__(earlier)
    assert [e.event_id for e in restored.entries()] == ["a", "b"]
    assert restored.evicted == 4
    assert [e.event_id for e in restored.expire(2.0)] == ["b"]
    restored.add(entry("c", 9.0))
    restored.add(entry("d", 9.0))  # capacity 2: "a" goes
    assert [e.event_id for e in restored.entries()] == ["c", "d"]
