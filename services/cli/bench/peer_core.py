"""What every peer of the benchmark does per event, importable without the project's packages.

The peers (:mod:`.peer_plain`, :mod:`.peer_quix`) read the same input topic: one JSON message
per event, ``{"event_id": ..., "x": {feature: number}, "y": label}``, the feature dict the
project's features service computes for the event (:class:`~services.cli.bench.inprocess.
Featurizer`) and the label as the model learns it, inline. Each peer predicts with the spec's
champion, then learns, with River's label delay *d* (answer *j* learned right before question
*j + d*, as ``progressive_val_score(delay=d)``), and produces one prediction per event:
``{"event_id": ..., "prediction": ..., "at": <wall-clock seconds when produced>}``.

This module imports only the standard library, ``orjson`` and River (when a model is built), so
it runs in the peers' own virtualenv too, where the project is not installed and quixstreams
pins another confluent-kafka. The champion comes as a :class:`Recipe`, the project's
:func:`services.model.estimators.build_estimator` in data: a unit test checks the two build the
same estimator.

>>> recipe = Recipe.from_json({"module": "river.linear_model",
...                            "attribute": "LogisticRegression", "params": {}, "scale": True})
>>> loop = PredictLearn(build_champion(recipe), river_delay=1)
>>> [loop.step({"a": 1.0}, True), loop.step({"a": 1.0}, True)]
[False, True]
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

Label = bool | int | float | str


@dataclass(frozen=True)
class Recipe:
    """How to build the champion: ``module.attribute(**params)``, behind a ``StandardScaler``
    when ``scale`` (the fields of :class:`schemas.spec.ModelSpec`, ``locate()`` resolved)."""

    module: str
    attribute: str
    params: dict[str, Any] = field(default_factory=dict)
    scale: bool = False

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Recipe:
        return cls(str(document["module"]), str(document["attribute"]),
                   dict(document.get("params") or {}), bool(document.get("scale", False)))

    def as_json(self) -> dict[str, Any]:
        return {"module": self.module, "attribute": self.attribute, "params": self.params,
                "scale": self.scale}


def build_champion(recipe: Recipe) -> Any:
    """A fresh estimator, built as :func:`services.model.estimators.build_estimator` does."""
    estimator = getattr(importlib.import_module(recipe.module), recipe.attribute)(**recipe.params)
    if recipe.scale:
        preprocessing = importlib.import_module("river.preprocessing")
        estimator = preprocessing.StandardScaler() | estimator
    return estimator


class PredictLearn:
    """Predict, then learn, with River's label delay ``river_delay`` (at least 1)."""

    def __init__(self, model: Any, river_delay: int = 1) -> None:
        if river_delay < 1:
            raise ValueError(f"river_delay must be at least 1, not {river_delay}")
        self._model = model
        self._delay = river_delay
        self._waiting: deque[tuple[dict[str, float], Label]] = deque()

    def step(self, x: dict[str, float], y: Label) -> Any:
        """Learn the answers now due, predict ``x``, and keep ``(x, y)`` until its turn."""
        while len(self._waiting) >= self._delay:
            x_old, y_old = self._waiting.popleft()
            self._model.learn_one(x_old, y_old)
        prediction = self._model.predict_one(x)
        self._waiting.append((x, y))
        return prediction


def input_bytes(event_id: str, x: dict[str, float], y: Label) -> bytes:
    """One message of the peers' input topic."""
    return orjson.dumps({"event_id": event_id, "x": x, "y": y})


def output_bytes(event_id: str, prediction: Any) -> bytes:
    """One message of a peer's output topic, stamped with the time it is produced."""
    return orjson.dumps(output_document(event_id, prediction))


def output_document(event_id: str, prediction: Any) -> dict[str, Any]:
    """``{"event_id", "prediction", "at"}``, ``at`` the wall clock now (seconds)."""
    return {"event_id": event_id, "prediction": _plain(prediction), "at": time.time()}


def _plain(value: Any) -> Any:
    """A prediction as JSON can carry it (numpy scalars become Python numbers)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


@dataclass(frozen=True)
class PeerConfig:
    """What the bench tells a peer (one JSON argument on its command line)."""

    client: dict[str, str]
    """librdkafka settings (``bootstrap.servers`` and security)."""
    input_topic: str
    output_topic: str
    group: str
    events: int
    """How many events to process before stopping."""
    river_delay: int
    champion: Recipe
    timeout: float
    """Give up after this many seconds, whatever was processed."""

    @classmethod
    def parse(cls, text: str) -> PeerConfig:
        document = orjson.loads(text)
        return cls(dict(document["client"]), document["input_topic"], document["output_topic"],
                   document["group"], int(document["events"]), int(document["river_delay"]),
                   Recipe.from_json(document["champion"]), float(document["timeout"]))

    def dumps(self) -> str:
        return orjson.dumps({
            "client": self.client, "input_topic": self.input_topic,
            "output_topic": self.output_topic, "group": self.group, "events": self.events,
            "river_delay": self.river_delay, "champion": self.champion.as_json(),
            "timeout": self.timeout}).decode()


def report(peer: str, processed: int, seconds: float, versions: dict[str, str],
           **extra: Any) -> str:
    """The one JSON line a peer prints on stdout when it is done."""
    return orjson.dumps({"peer": peer, "processed": processed, "seconds": round(seconds, 3),
                         "versions": versions, **extra}).decode()
