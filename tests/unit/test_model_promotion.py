"""Champion and challenger through the model handler on a drifting stream, with real River
models: a clearly better challenger is promoted (a new champion version, a model event, the
next predictions served by it); an equally good one never is."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from river import linear_model, optim, preprocessing

from schemas.codec import decode, encode
from schemas.events import Label
from schemas.features import FeatureVector
from schemas.model_events import ModelEvent
from schemas.predictions import Prediction
from schemas.spec import LabelSpec, ModelSpec, ModelsSpec, PromotionSpec
from services.common.dead_letters import DeadLetterPublisher
from services.model.handler import ModelHandler, ModelTopics
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.settings import ModelOptions
from tests.unit.fakes import FakeProducer, ManualClock, ManualMonotonic, message

T0 = datetime(2026, 11, 22, tzinfo=UTC)
TOPICS = ModelTopics(features="features", labels="labels", predictions="predictions",
                     outcomes="outcomes", model_events="model-events")
EVENTS = 6000
DRIFT_AT = 2000


def sluggish_logreg() -> Any:
    """Learns so slowly that it cannot follow the drift."""
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.0005))


def nimble_logreg() -> Any:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.05))


def nimble_logreg_twin() -> Any:
    """As good as :func:`nimble_logreg`, a hair different."""
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optim.SGD(0.05), l2=1e-6)


def run(champion: str, challenger: str) -> tuple[ModelHandler, FakeProducer]:
    label = LabelSpec(type="binary", feedback_window_seconds=3600)
    models = ModelsSpec(
        champion=ModelSpec(name="champ", estimator=f"{__name__}:{champion}"),
        challengers=(ModelSpec(name="rival", estimator=f"{__name__}:{challenger}"),),
    )
    producer = FakeProducer()
    handler = ModelHandler(
        Learner(models, label), producer, TOPICS,
        DeadLetterPublisher(producer, "dead-letters", "model"), ModelOptions(),
        ModelMetrics(CollectorRegistry()), clock=ManualClock(T0), monotonic=ManualMonotonic(),
        promotion=PromotionSpec(min_labels=300),
    )
    rng = random.Random(3)
    for n in range(EVENTS):
        a, b = rng.random(), rng.random()
        concept = a > b if n < DRIFT_AT else a < b  # the concept flips at DRIFT_AT
        when = T0 + timedelta(seconds=n)
        vector = FeatureVector(event_id=f"e-{n}", event_time=when, entity={"k": "1"},
                               features={"a": a, "b": b}, ingested_at=when, computed_at=when)
        handler.handle(message("features", encode(vector), b"1"))
        answer = Label(event_id=f"e-{n}", label_time=when + timedelta(seconds=0.5),
                       label=concept)
        handler.handle(message("labels", encode(answer), f"e-{n}".encode()))
    return handler, producer


def test_a_clearly_better_challenger_on_a_drifting_stream_is_promoted() -> None:
    handler, producer = run("sluggish_logreg", "nimble_logreg")
    events = [decode(ModelEvent, r.value) for r in producer.on("model-events")]
    promotions = [e for e in events if e.kind == "promoted"]
    assert promotions, "the nimble challenger should have won"
    first = promotions[0]
    assert (first.model, first.previous_model, first.model_version) == ("rival", "champ", 2)
    assert first.statistic is not None and first.threshold is not None
    assert first.statistic >= first.threshold
    assert handler.learner.champion.name == promotions[-1].model
    predictions = [decode(Prediction, r.value) for r in producer.on("predictions")]
    served_by_rival = [p for p in predictions if p.model == "rival"]
    assert served_by_rival and all(p.model_version >= 2 for p in served_by_rival)
    assert len(predictions) == EVENTS  # one champion prediction per event, whoever serves


def test_an_equally_good_challenger_is_never_promoted() -> None:
    handler, producer = run("nimble_logreg", "nimble_logreg_twin")
    assert producer.on("model-events") == []
    assert handler.learner.champion.name == "champ"
