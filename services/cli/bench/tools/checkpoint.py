"""Cost of the model service's checkpoints once its stores are full: full against delta.

Builds the stores the model handler checkpoints at their default capacities (2 x 500,000
remembered ids; pending events as many as one feedback window holds at the given rate), then
applies one commit interval of traffic, as the handler does per event (an id remembered, an
entry added, its label attached, the entry taken and its id resolved), and times
:func:`services.model.checkpoint.dump_state` both ways. No broker involved.

    .venv/bin/streamml bench checkpoint [--rate 1000] [--window 30] [--interval 1]

Prints a table and writes it as JSON to ``bench/results/checkpoint-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.events import Label
from services.model.checkpoint import dump_state
from services.model.pending import BoundedMap, PendingEntry, PendingStore
from services.model.settings import ModelOptions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Stores:
    """The handler's four journaled stores, filled to their steady state."""

    def __init__(self, options: ModelOptions, pending: int) -> None:
        self.pending = PendingStore(options.pending_capacity)
        self.early = BoundedMap[Any](options.early_label_capacity, "early")
        self.predicted = BoundedMap[int](options.remembered_ids, "predicted")
        self.resolved = BoundedMap[bool](options.remembered_ids, "resolved")
        self.count = 0
        self.rng = random.Random(7)  # noqa: S311 - synthetic data
        self.waiting: deque[str] = deque()  # pending event ids, oldest first
        for _ in range(options.remembered_ids):
            self.predicted.put(str(uuid.uuid4()), self.count)
            self.resolved.put(str(uuid.uuid4()), False)
            self.count += 1
        for _ in range(pending):
            entry = self._entry()
            self.pending.add(entry)
            self.waiting.append(entry.event_id)

    def _entry(self) -> PendingEntry:
        event_id = str(uuid.uuid4())
        x = {f"f{n}": self.rng.gauss(0.0, 1.0) for n in range(10)}
        entry = PendingEntry(event_id, x, T0, deadline=float(self.count))
        entry.predictions = {"logreg": (1, True, self.rng.random()),
                             "tree": (1, False, self.rng.random())}
        return entry

    def event(self) -> None:
        """One event's changes: predicted and pending; the oldest pending one labelled and
        learned (the store stays at one window's worth)."""
        entry = self._entry()
        self.predicted.put(entry.event_id, self.count)
        self.pending.add(entry)
        self.waiting.append(entry.event_id)
        oldest = self.pending.get(self.waiting.popleft())
        if oldest is not None:
            self.pending.attach_label(oldest, Label(event_id=oldest.event_id, label_time=T0,
                                                    label=1))
            self.pending.take(oldest.event_id)
            self.resolved.put(oldest.event_id, False)
        self.count += 1

    def state(self) -> dict[str, object]:
        return {"pending": self.pending, "early": self.early, "predicted": self.predicted,
                "resolved": self.resolved, "models": {"weights": [0.1] * 50}}


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench checkpoint [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench checkpoint",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--window", type=float, default=30.0, help="feedback window, seconds")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between commits")
    args = parser.parse_args(argv)
    options = ModelOptions()
    pending = min(options.pending_capacity, int(args.rate * args.window))
    stores = Stores(options, pending)
    full_seconds, full = timed(lambda: dump_state(stores.state(), delta=False))
    for _ in range(int(args.rate * args.interval)):
        stores.event()
    delta_seconds, delta = timed(lambda: dump_state(stores.state(), delta=True))
    figures = {
        "rate": args.rate, "interval_seconds": args.interval, "pending_entries": pending,
        "remembered_ids": 2 * options.remembered_ids,
        "full": {"seconds": round(full_seconds, 4), "bytes": len(full)},
        "delta": {"seconds": round(delta_seconds, 4), "bytes": len(delta)},
    }
    print(f"stores: {pending:,} pending entries, {2 * options.remembered_ids:,} remembered ids; "
          f"{args.rate:,.0f} events/s, a commit every {args.interval:g} s")
    print("| checkpoint | seconds | bytes |\n|---|---|---|")
    for kind in ("full", "delta"):
        print(f"| {kind} | {figures[kind]['seconds']:.3f} | {figures[kind]['bytes']:,} |")
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"checkpoint-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {path}")
    return 0

