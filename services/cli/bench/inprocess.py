"""River in process, on the stream the pipeline gets: the reference the pipeline is held to.

Two timed passes over the same rows, each predict-then-learn with River's label delay *d*
(answer *j* learned right before question *j + d*; the pipeline's ``--label-delay N`` is
*d = N + 1*):

* :func:`river_alone`: ``river.evaluate.progressive_val_score`` with the spec's champion on
  feature dicts computed beforehand: River's own rate.
* :func:`service_logic`: the same events as JSON bytes through the features service's pure steps
  (validate, each entity stage's aggregates, the feature vector) and the model service's
  :class:`~services.model.learner.Learner` (every model of the spec predicts and learns): the
  work of the two services without Kafka.

Feature dicts come from the features service's own functions, so the champion sees the same
inputs in process as in the pipeline (bit for bit when the spec has no aggregates; with
aggregates the values depend on event times, which follow a fixed schedule here).
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from schemas.events import LabelValue
from schemas.spec import ModelSpec, PipelineSpec
from services.cli.bench.scrape import load_average
from services.cli.bench.workload import Workload, event_bytes, event_id, schedule
from services.features.aggregates import EntityState
from services.features.pipeline import admit, advance, finish, plan_stages
from services.features.validation import Limits
from services.model.estimators import build_estimator, categories_of, vectorize
from services.model.learner import Learner


@dataclass(frozen=True)
class InProcessRun:
    """One timed pass: how many events, how long, the champion's prequential accuracy."""

    name: str
    models: list[str]
    events: int
    seconds: float
    cpu_seconds: float
    accuracy: float | None
    river_delay: int
    load_before: list[float]
    load_after: list[float]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": self.events_per_second}


def describe_model(spec: ModelSpec) -> str:
    """``StandardScaler | LogisticRegression`` style name of a model spec."""
    params = ", ".join(f"{key}={value}" for key, value in spec.params.items())
    name = f"{spec.estimator.rsplit('.', 1)[-1].rsplit(':', 1)[-1]}({params})"
    return f"StandardScaler | {name}" if spec.scale else name


class Featurizer:
    """The features service's per-event steps, with entity state in plain dicts."""

    def __init__(self, spec: PipelineSpec) -> None:
        self._spec = spec
        self._stages = plan_stages(spec)
        self._states: list[dict[str, EntityState]] = [{} for _ in self._stages]
        self._limits = Limits()

    def features(self, raw: bytes, now: datetime) -> dict[str, float]:
        """The model input of one event (JSON bytes), as the model service would build it."""
        staged = admit(raw, self._spec, now, self._limits)
        for stage, states in zip(self._stages, self._states, strict=True):
            key = staged.event.entity[stage.entity]
            staged, state, redelivered = advance(staged, stage, states.get(key))
            if not redelivered:
                states[key] = state
        return vectorize(finish(staged, now).features, categories_of(self._spec))


def prepare(workload: Workload, events: int, start: datetime, rate: float,
            ) -> list[tuple[bytes, datetime, LabelValue]]:
    """The first ``events`` rows as (event JSON, event time, label), times ``1 / rate`` apart."""
    prepared = []
    for index, row in zip(range(events), workload.rows(), strict=False):
        when = schedule(start, rate, index)
        prepared.append((event_bytes(event_id("inproc", 0, index), when, row), when, row.label))
    return prepared


def river_alone(spec: PipelineSpec, events: list[tuple[bytes, datetime, LabelValue]],
                river_delay: int) -> InProcessRun:
    """``progressive_val_score`` of the champion on precomputed feature dicts."""
    learner = Learner(spec.models, spec.label)  # only for its label normalisation
    featurizer = Featurizer(spec)
    dataset = [(featurizer.features(raw, when), learner.normalise_label(label))
               for raw, when, label in events]
    evaluate = importlib.import_module("river.evaluate")
    metrics = importlib.import_module("river.metrics")
    model = build_estimator(spec.models.champion)
    load_before = load_average()
    began, cpu = time.perf_counter(), time.process_time()
    metric = evaluate.progressive_val_score(iter(dataset), model, metrics.Accuracy(),
                                            delay=river_delay)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    return InProcessRun("river progressive_val_score, champion", [spec.models.champion.name],
                        len(dataset), seconds, cpu_seconds, float(metric.get()), river_delay,
                        load_before, load_average())


def service_logic(spec: PipelineSpec, events: list[tuple[bytes, datetime, LabelValue]],
                  river_delay: int) -> InProcessRun:
    """Features from the event bytes, then every model predicts and learns, in one process."""
    learner = Learner(spec.models, spec.label)
    featurizer = Featurizer(spec)
    waiting: deque[tuple[int, dict[str, float], bool | int | float | str]] = deque()
    correct = judged = 0
    load_before = load_average()
    began, cpu = time.perf_counter(), time.process_time()
    for index, (raw, when, label) in enumerate(events):
        while waiting and waiting[0][0] <= index - river_delay:
            _, x_old, y_old = waiting.popleft()
            learner.learn(x_old, y_old)
        x = featurizer.features(raw, when)
        champion = learner.predict(x)[0]
        y = learner.normalise_label(label)
        if champion.prediction is not None:
            judged += 1
            correct += champion.prediction == y
        waiting.append((index, x, y))
    while waiting:
        _, x_old, y_old = waiting.popleft()
        learner.learn(x_old, y_old)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    return InProcessRun("features + every model, in process",
                        [model.name for model in learner.models], len(events), seconds,
                        cpu_seconds, correct / judged if judged else None, river_delay,
                        load_before, load_average())
