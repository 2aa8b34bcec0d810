"""A small Elec2-shaped recording for backtest tests: events, and each one's label 3 rows later."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from schemas.events import Event, Label

T0 = datetime(2026, 12, 1, tzinfo=UTC)
FIELDS = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")


def recording(events: int = 600, seed: int = 5) -> tuple[list[Event], list[Label]]:
    """``events`` events 30 minutes apart; the price goes up when demand is high, with noise,
    and the rule flips halfway (a concept drift). Labels come three rows later."""
    rng = random.Random(seed)
    made, labels = [], []
    for n in range(events):
        at = T0 + timedelta(minutes=30 * n)
        features = {name: round(rng.random(), 4) for name in FIELDS}
        up = (features["nswdemand"] > 0.5) != (n >= events // 2)
        if rng.random() < 0.1:
            up = not up
        made.append(Event(event_id=f"ev-{n}", event_time=at, entity={"market": "nsw"},
                          fields=features))
        labels.append(Label(event_id=f"ev-{n}", label_time=at + timedelta(minutes=90),
                            label=int(up)))
    return made, labels
