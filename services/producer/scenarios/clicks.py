"""Click-through scenario: users see items; a hidden logistic model decides who clicks.

Clicks arrive after a feedback delay inside the spec's window; non-clicks are never sent unless
``explicit_negatives`` is set (the model service infers them when the window closes).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.events import Event
from services.producer.scenarios.base import LabelledEvent

DEVICES = ("mobile", "desktop", "tablet")


@dataclass
class ClicksScenario:
    """Seeded click stream. ``click_delay`` bounds are seconds; keep them inside the window."""

    seed: int = 7
    users: int = 500
    items: int = 100
    click_delay: tuple[float, float] = (0.2, 3.0)
    explicit_negatives: bool = False
    spec_name: str = "clicks"
    entity_key: str = "user"

    def click_probability(self, device: str, position: int, price: float, hour: int) -> float:
        """The hidden model: mobile and top positions click, expensive items don't."""
        logit = (
            0.8
            - 0.45 * (position - 1)
            + {"mobile": 1.2, "desktop": 0.0, "tablet": -0.8}[device]
            - 0.004 * price
            + (0.6 if 18 <= hour <= 22 else 0.0)
        )
        return 1.0 / (1.0 + math.exp(-logit))

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        """An endless, deterministic stream of labelled events."""
        rng = random.Random(self.seed)  # noqa: S311 - simulation, not security
        for index in range(10**12):
            event_time = start + timedelta(seconds=index * interval_seconds)
            device = rng.choices(DEVICES, weights=(0.55, 0.35, 0.10))[0]
            position = rng.randint(1, 10)
            price = round(min(rng.lognormvariate(3.5, 0.8), 9999.0), 2)
            hour = event_time.hour
            clicked = rng.random() < self.click_probability(device, position, price, hour)
            event = Event(
                event_id=f"clk-{self.seed}-{index}",
                event_time=event_time,
                entity={"user": f"u{rng.randrange(self.users)}",
                        "item": f"i{rng.randrange(self.items)}"},
                fields={"device": device, "hour": hour, "price": price, "position": position},
            )
            delay: float | None = rng.uniform(*self.click_delay)
            if not clicked and not self.explicit_negatives:
                delay = None
            yield LabelledEvent(event, int(clicked), delay)
