"""One model per segment: copies made on first sight, kept in step with promotions and resets,
bounded, checkpointed with the handler's state."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.features import FeatureVector
from schemas.spec import SpecError, load_spec, resolve_spec_path
from services.cli.evaluate_segments import segmented
from services.model.learner import Learner
from services.model.segments import Segments, segment_of

T0 = datetime(2026, 12, 6, tzinfo=UTC)
X = {"device=mobile": 1.0, "device=desktop": 0.0, "device=tablet": 0.0, "price": 3.0,
     "position": 2.0, "hour": 10.0}


def learner(max_segments: int = 1000) -> Learner:
    spec = segmented(load_spec("clicks"), "device", max_segments)
    return Learner(spec.models, spec.label)


def test_each_segment_learns_only_from_its_own_labels() -> None:
    models = learner()
    for _ in range(30):
        models.learn(X, True, "mobile")
    mobile = models.predict(X, "mobile")[0]
    desktop = models.predict(X, "desktop")[0]
    assert mobile.score is not None and desktop.score is not None
    assert mobile.score > 0.52 and desktop.score == pytest.approx(0.5)
    assert models.segments is not None and models.segments.names() == ["mobile", "desktop"]
    # the learner's own models only name the models: they learned nothing
    assert models.predict(X)[0].score == pytest.approx(0.5)


def test_promotions_resets_and_fresh_challengers_apply_to_every_segment() -> None:
    models = learner()
    models.predict(X, "mobile")
    models.predict(X, "tablet")
    models.promote("tree")
    assert models.segments is not None
    for segment in ("mobile", "tablet"):
        answers = models.predict(X, segment)
        assert [(a.model, a.role, a.version) for a in answers] == [
            ("tree", "champion", 2), ("logreg", "challenger", 1)]
    for _ in range(20):
        models.learn(X, True, "mobile")
    models.reset_champion()
    assert models.predict(X, "mobile")[0].version == 3
    assert models.predict(X, "mobile")[0].prediction is None  # a fresh tree knows nothing
    models.start_fresh_challenger()
    assert [a.model for a in models.predict(X, "tablet")] == ["tree", "logreg", "tree-fresh-3"]
    assert [a.model for a in models.predict(X, "desktop")] == ["tree", "logreg", "tree-fresh-3"]


def test_segments_beyond_the_bound_drop_the_least_recently_used() -> None:
    models = learner(max_segments=2)
    for segment in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        models.predict(X, segment)
    assert models.segments is not None
    assert models.segments.names() == ["a", "c"]
    assert (models.segments.evicted, models.segments.created) == (1, 3)


def test_segments_pickle_with_their_models() -> None:
    models = learner()
    for _ in range(10):
        models.learn(X, True, "mobile")
    restored: Segments = pickle.loads(pickle.dumps(models.segments))  # noqa: S301
    assert restored.names() == ["mobile"]
    [champion, _] = restored.models("mobile", models.models)
    assert champion.estimator.predict_proba_one(X) == (
        models.models_of("mobile")[0].estimator.predict_proba_one(X))


def test_the_segment_of_a_vector_is_its_entity_key_or_field_value() -> None:
    vector = FeatureVector(event_id="e", event_time=T0, entity={"user": "u1", "item": "i2"},
                           features={"device": "tablet", "price": 3.0}, ingested_at=T0,
                           computed_at=T0)
    assert segment_of(vector, "device") == "tablet"
    assert segment_of(vector, "user") == "u1"
    assert segment_of(vector, "missing") == "none"
    assert segment_of(vector, None) is None


def test_segment_by_must_name_an_entity_key_or_a_categorical_field(tmp_path: Path) -> None:
    text = resolve_spec_path("clicks").read_text()
    assert "[models]\n" in text
    for bad in ("price", "nothing"):
        path = tmp_path / f"{bad}.toml"
        path.write_text(text.replace("[models]\n", f'[models]\nsegment_by = "{bad}"\n'))
        with pytest.raises(SpecError, match="segment_by"):
            load_spec(str(path))


def test_the_model_service_answers_and_learns_per_segment_and_checkpoints_them() -> None:
    from collections import Counter

    from confluent_kafka import Message
    from prometheus_client import CollectorRegistry

    from schemas.codec import decode
    from schemas.predictions import Outcome, Prediction
    from services.cli.evaluate_drift import DEFAULT_START
    from services.cli.pipeline_in_process import InProcessPipeline, run_in_process
    from services.model.handler import ModelHandler, ModelTopics
    from services.model.metrics import ModelMetrics
    from services.model.settings import ModelOptions
    from services.producer.service import build_scenario
    from services.producer.settings import ProducerOptions

    seen: Counter[tuple[str, str | None]] = Counter()

    class Read:
        def handle(self, message: Message) -> None:
            if message.topic() == "predictions":
                seen["prediction", decode(Prediction, message.value()).segment] += 1
            else:
                seen["outcome", decode(Outcome, message.value()).segment] += 1

    spec = segmented(load_spec("clicks"), "device")
    run_in_process(spec, build_scenario(ProducerOptions(seed=3)), 2000, 50.0, DEFAULT_START,
                   observers=[("predictions", Read()), ("outcomes", Read())])
    devices = {"mobile", "desktop", "tablet"}
    assert {segment for kind, segment in seen if kind == "prediction"} == devices
    assert {segment for kind, segment in seen if kind == "outcome"} == devices
    assert sum(n for (kind, _), n in seen.items() if kind == "prediction") == 2000

    pipeline = InProcessPipeline.wire(spec, "user", DEFAULT_START)
    handler = pipeline.model
    handler.learner.predict(X, "mobile")
    state = pickle.loads(pickle.dumps(handler.state()))  # noqa: S301
    fresh = ModelHandler(Learner(spec.models, spec.label), pipeline.bus,
                         ModelTopics("features", "labels", "predictions", "outcomes"),
                         handler._dead_letters, ModelOptions(), ModelMetrics(CollectorRegistry()))
    fresh.restore(state)
    assert fresh.learner.segments is not None and fresh.learner.segments.names() == ["mobile"]


def test_the_sink_exports_accuracy_per_segment_for_the_most_recently_active_only() -> None:
    from prometheus_client import CollectorRegistry

    from schemas.codec import encode
    from schemas.predictions import Outcome
    from services.metrics_sink.handler import SEGMENT_SERIES, SinkHandler, SinkTopics
    from services.metrics_sink.metrics import SinkMetrics
    from tests.unit.fakes import message

    registry = CollectorRegistry()
    handler = SinkHandler(SinkTopics("p", "o", "a", "d", ""), SinkMetrics(registry), window=4)

    def outcome(segment: str, correct: bool) -> bytes:
        return encode(Outcome(event_id="e", model="logreg", model_version=1, prediction=True,
                              label=correct, correct=correct, label_delay_seconds=1.0,
                              event_time=T0, learned_at=T0, segment=segment))

    for correct in (True, True, False, True):
        handler.handle(message("o", outcome("tablet", correct)))
    gauge = "streamml_segment_rolling_accuracy_ratio"
    assert registry.get_sample_value(gauge, {"model": "logreg", "segment": "tablet"}) == 0.75
    for n in range(SEGMENT_SERIES):  # 50 newer segments push "tablet" out
        handler.handle(message("o", outcome(f"s{n}", True)))
    assert registry.get_sample_value(gauge, {"model": "logreg", "segment": "tablet"}) is None
    assert registry.get_sample_value(gauge, {"model": "logreg", "segment": "s49"}) == 1.0
