"""Synthetic input for ``streamml bench model`` (and ``streamml bench model-memory``): plausible
``clicks`` feature vectors, encoded and keyed as the features service publishes them, and their
labels ``LABEL_LAG`` events behind."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.codec import encode
from schemas.events import Label
from schemas.features import FeatureVector

LABEL_LAG = 10
"""The label of event j is stamped just after event j + LABEL_LAG."""

DEVICES = ("mobile", "desktop", "tablet")


@dataclass(frozen=True)
class Generated:
    """One vector (encoded), its partition key, and its label."""

    vector: FeatureVector
    key: bytes
    value: bytes
    clicked: bool


class VectorStream:
    """Plausible ``clicks`` feature vectors with event times ``spacing_ms`` apart.

    Raw fields device, hour, price, position; aggregates user_events_5m, user_mean_price_5m,
    item_events_10m_hop, item_last_price. A hidden logistic rule decides the click, so the model
    has something to learn.
    """

    def __init__(self, run: str, start: datetime, spacing_ms: float = 1.0, seed: int = 11,
                 users: int = 2000, items: int = 200) -> None:
        self.run = run
        self.start = start
        self.spacing = timedelta(milliseconds=spacing_ms)
        self._rng = random.Random(seed)  # noqa: S311 - synthetic data, not crypto
        self._users = users
        self._items = items
        self._last_price: dict[int, float] = {}

    def event_time(self, index: int) -> datetime:
        """The event time of vector ``index``."""
        return self.start + index * self.spacing

    def event_id(self, index: int) -> str:
        return f"bm-{self.run}-{index}"

    def make(self, index: int, event_time: datetime | None = None) -> Generated:
        """Vector ``index`` (at ``event_time``, default ``start + index * spacing``)."""
        rng = self._rng
        when = self.event_time(index) if event_time is None else event_time
        user, item = rng.randrange(self._users), rng.randrange(self._items)
        device = rng.choices(DEVICES, weights=(6, 3, 1))[0]
        price = round(min(9999.0, rng.lognormvariate(3.0, 1.0)), 2)
        position = rng.randint(1, 50)
        user_events = rng.randint(0, 30)
        last_price = self._last_price.get(item)
        self._last_price[item] = price
        features: dict[str, float | str | None] = {
            "device": device, "hour": float(when.hour), "price": price,
            "position": float(position), "user_events_5m": float(user_events),
            "user_mean_price_5m": (round(price * rng.uniform(0.5, 1.5), 2)
                                   if user_events else None),
            "item_events_10m_hop": float(rng.randint(0, 400)), "item_last_price": last_price,
        }
        now = datetime.now(UTC)
        vector = FeatureVector(
            event_id=self.event_id(index), event_time=when,
            entity={"user": f"u{user}", "item": f"i{item}"}, features=features,
            ingested_at=now, computed_at=now,
        )
        score = -1.0 + (0.8 if device == "mobile" else 0.0) - 0.06 * position \
            - 0.004 * price + 0.02 * user_events
        clicked = rng.random() < 1.0 / (1.0 + math.exp(-score))
        return Generated(vector, f"u{user}".encode(), encode(vector), clicked)

    def label(self, index: int, clicked: bool) -> tuple[bytes, bytes]:
        """(key, value) of the label of vector ``index``: stamped 0.5 ms after vector
        ``index + LABEL_LAG``."""
        label = Label(event_id=self.event_id(index),
                      label_time=self.event_time(index + LABEL_LAG) + timedelta(microseconds=500),
                      label=clicked)
        return label.event_id.encode(), encode(label)
