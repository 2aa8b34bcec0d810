"""Incremental checkpoints: the whole state now and then, and in between only what changed.

A checkpoint pickles the model handler's state. Most of it is small (the models, counters, the
queue of labels to learn), but the bounded stores (pending events, remembered ids, labels
awaiting their features) hold up to hundreds of thousands of entries each: pickling them whole
at every commit costs about a second and 30 MB once they are full.

A *named* store (:class:`~services.model.pending.BoundedMap` with a ``name``) records the changes
made to it since the last checkpoint. :func:`dump` pickles a state either *full*, every store
whole, or as a *delta*, where each named store that has recorded its changes since the previous
dump pickles those changes instead. :func:`load` unpickles a full state and then its deltas, in
order; each delta's changes are replayed onto the stores of the state before it, so the result
equals the state the last delta was taken from.

Contract:
- every change to a named store goes through its methods (``put``, ``pop``, and ``touch`` after
  changing a value in place);
- a delta is valid only on top of the dump taken just before it, by the same process (a failed
  checkpoint must therefore end the process: it restarts from what was committed);
- within one state, store names are unique.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol


class JournalError(ValueError):
    """A delta does not fit the state it is loaded onto (its base store is missing)."""


class Journaled(Protocol):
    """A store that records its changes for delta checkpoints."""

    name: str

    def restart_journal(self) -> None:
        """Record changes from now on, as changes since the dump just taken."""

    def replay(self, changes: Any) -> None:
        """Apply changes recorded by another instance of this store (without recording them)."""


@dataclass
class _Dump:
    delta: bool
    stores: list[Journaled] = field(default_factory=list)


_dumping: ContextVar[_Dump | None] = ContextVar("streamml_journal_dumping", default=None)
_loading: ContextVar[dict[str, Journaled] | None] = ContextVar("streamml_journal_loading",
                                                               default=None)


def dumping_delta(store: Journaled) -> bool:
    """Called by a named store as it is pickled: True if it should pickle its changes only."""
    current = _dumping.get()
    if current is None:
        return False
    current.stores.append(store)
    return current.delta


def loaded(store: Journaled) -> None:
    """Called by a named store unpickled whole: later deltas of this load apply to it."""
    stores = _loading.get()
    if stores is not None and store.name:
        stores[store.name] = store


def replayed(name: str, changes: Any) -> Journaled:
    """Unpickles a store's changes: applies them to the store of that name loaded before."""
    stores = _loading.get()
    store = None if stores is None else stores.get(name)
    if store is None:
        raise JournalError(f"a delta checkpoint changes the store {name!r}, which no earlier "
                           "checkpoint of this load holds")
    store.replay(changes)
    return store


def dump(state: Any, delta: bool) -> bytes:
    """Pickle ``state``, full or as a delta on the previous dump; named stores then record their
    changes from now on."""
    current = _Dump(delta)
    token = _dumping.set(current)
    try:
        pickled = pickle.dumps(state, protocol=5)
    finally:
        _dumping.reset(token)
    for store in current.stores:
        store.restart_journal()
    return pickled


def load(pickles: Iterable[bytes]) -> Any:
    """The state of a full dump followed by its deltas, in the order they were taken."""
    token = _loading.set({})
    state: Any = None
    try:
        for pickled in pickles:
            state = pickle.loads(pickled)  # noqa: S301 - our own checkpoints
    finally:
        _loading.reset(token)
    return state
