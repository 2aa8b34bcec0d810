"""Anomaly detection as a task: the spec, the learner's flags, the sensors scenario, the sink."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.predictions import Prediction
from schemas.spec import PipelineSpec, SpecError, load_spec, resolve_spec_path
from services.metrics_sink.handler import SinkHandler, SinkTopics
from services.metrics_sink.metrics import SinkMetrics
from services.metrics_sink.scores import ScoreWindow
from services.model.learner import Learner
from services.producer.scenarios import NaturalLabels, SensorsScenario
from tests.unit.fakes import message

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def sensors(quantile: float = 0.9, window: int = 50, warmup: int = 20) -> PipelineSpec:
    spec = load_spec("sensors")
    anomaly = spec.models.anomaly.model_copy(
        update={"quantile": quantile, "window": window, "warmup": warmup})
    models = spec.models.model_copy(update={"anomaly": anomaly, "challengers": ()})
    return spec.model_copy(update={"models": models})


def test_an_anomaly_task_needs_a_binary_label(tmp_path: Path) -> None:
    assert load_spec("sensors").models.task == "anomaly"
    text = resolve_spec_path("sensors").read_text()
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(text.replace('type = "binary"', 'type = "regression"')
                     .replace('on_timeout = "negative"\nnegative_value = 0\n', ""))
    with pytest.raises(SpecError, match="needs a binary label"):
        load_spec(str(wrong))


def test_flags_start_after_the_warmup_and_mark_scores_above_the_rolling_quantile() -> None:
    spec = sensors(quantile=0.9, window=50, warmup=20)
    learner = Learner(spec.models, spec.label)
    normal = {"temperature": 0.5, "vibration": 0.5, "pressure": 0.5, "load": 0.5}
    flags = []
    for n in range(600):  # Half-Space Trees score from their second window of 250 on
        x = dict(normal, temperature=0.5 + 0.01 * (n % 5))
        [answer] = learner.predict(x)
        flags.append(answer.prediction)
        assert isinstance(answer.score, float) and answer.probabilities is None
    assert not any(flags[:20])  # the warmup flags nothing
    [odd] = learner.predict({"temperature": 0.99, "vibration": 0.02, "pressure": 0.97,
                             "load": 0.01})
    assert odd.prediction is True
    champion = learner.champion
    assert champion.scored == 601  # every event scored once, and learned when scored


def test_labels_judge_an_anomaly_model_but_teach_it_nothing() -> None:
    spec = sensors()
    learner = Learner(spec.models, spec.label)
    x = {"temperature": 0.5, "vibration": 0.5, "pressure": 0.5, "load": 0.5}
    learner.predict(x)
    before = learner.champion.estimator.score_one(x)
    learner.learn(x, True)
    assert learner.champion.estimator.score_one(x) == before
    assert learner.label_probability(True, 0.7, None) is None  # a score is no probability


def test_the_sensors_scenario_is_seeded_and_sends_labels_only_for_confirmed_anomalies() -> None:
    def stream(seed: int) -> list[tuple[str, dict[str, object], int, float | None]]:
        scenario = SensorsScenario(seed=seed, labels=NaturalLabels())
        return [(e.event.event_id, dict(e.event.fields), int(e.label), e.label_delay_seconds)
                for e in islice(scenario.events(T0, 0.02), 20_000)]

    first = stream(3)
    assert first == stream(3)
    assert first != stream(4)
    anomalies = [row for row in first if row[2] == 1]
    assert 150 < len(anomalies) < 250  # 1% of 20,000
    sent = [row for row in first if row[3] is not None]
    assert {row[2] for row in sent} == {1}  # normal readings are never labelled
    assert 0.7 < len(sent) / len(anomalies) < 0.9  # 80% confirmed
    values = [v for row in first for v in row[1].values()]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)


def test_the_sensors_scenario_has_no_timeline() -> None:
    from services.producer.scenarios import load_timeline

    with pytest.raises(ValueError, match="no drift timeline"):
        SensorsScenario(timeline=load_timeline("clicks-short-drift"))


def prediction(n: int, score: float, flagged: bool) -> Prediction:
    return Prediction(event_id=f"e{n}", model="hst", model_version=1, prediction=flagged,
                      score=score, event_time=T0, features_at=T0, predicted_at=T0)


def test_the_score_window_gives_quantiles_and_the_flagged_share_of_the_last_predictions() -> None:
    window = ScoreWindow(100)
    assert math.isnan(window.quantile(0.5)) and math.isnan(window.positive_share())
    for n in range(300):  # the last 100: scores 200..299, every tenth flagged
        window.observe(prediction(n, float(n), n % 10 == 0))
    assert window.quantile(0.5) == 249.0
    assert window.quantile(0.99) == 298.0
    assert window.positive_share() == pytest.approx(0.1)


def test_the_sink_exports_score_quantiles_and_the_flagged_share() -> None:
    registry = CollectorRegistry()
    topics = SinkTopics(predictions="p", outcomes="o", alerts="a", dead_letters="d", prefix="")
    handler = SinkHandler(topics, SinkMetrics(registry), window=10)
    for n in range(10):
        handler.handle(message("p", encode(prediction(n, n / 10, n >= 8))))
    assert registry.get_sample_value("streamml_positive_prediction_ratio",
                                     {"model": "hst"}) == pytest.approx(0.2)
    assert registry.get_sample_value("streamml_prediction_score_quantile",
                                     {"model": "hst", "q": "0.9"}) == pytest.approx(0.8)


def test_up_with_the_sensors_spec_streams_the_sensors_scenario(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    from services.cli.main import _stack_env

    monkeypatch.delenv("STREAMML_PRODUCER__SCENARIO", raising=False)
    env = _stack_env(argparse.Namespace(spec="sensors", rate=None))
    assert env["STREAMML_PRODUCER__SCENARIO"] == "sensors"
    monkeypatch.setenv("STREAMML_PRODUCER__SCENARIO", "clicks")  # what the user set wins
    assert _stack_env(argparse.Namespace(spec="sensors", rate=None))[
        "STREAMML_PRODUCER__SCENARIO"] == "clicks"
