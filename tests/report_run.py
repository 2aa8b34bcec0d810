"""A small synthetic run with figures known in advance, for the report's unit and integration tests.

600 events, one a second from ``T0``, each predicted by the champion ``logreg`` and the
challenger ``tree``. ``logreg`` is right on 75% of the first 300 events and 50% of the rest
(62.5% overall); ``tree`` on 50% and then 80% (65.0% overall). Every third event times out;
the others' labels take ``(i % 7) * 0.5`` s (outcomes are learned then). A covariate alert fires
at 100 s and a concept alert at 320 s; a challenger starts at 330 s and ``tree`` is promoted at
450 s (wall-clock times of the model service).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.alerts import DriftAlert
from schemas.model_events import ModelEvent
from schemas.predictions import Outcome, Prediction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EVENTS = 600
DRIFT_AT = 300
MODELS = ("logreg", "tree")
EXPECTED_ACCURACY = {"logreg": 0.625, "tree": 0.65}


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def is_correct(model: str, index: int) -> bool:
    """Whether ``model`` was right on event ``index``."""
    if model == "logreg":
        return index % 4 != 0 if index < DRIFT_AT else index % 2 == 0
    return index % 2 == 0 if index < DRIFT_AT else index % 5 != 0


def latency_seconds(index: int) -> float:
    """Event -> prediction latency of event ``index``: 20 ms to 29 ms."""
    return 0.020 + (index % 10) * 0.001


def predictions() -> list[Prediction]:
    """Both models' predictions of every event (features arrive 10 ms after the event)."""
    return [
        Prediction(event_id=f"e-{index}", model=model, model_version=1,
                   role="champion" if model == "logreg" else "challenger", prediction=1,
                   score=0.7, event_time=at(index), features_at=at(index + 0.010),
                   predicted_at=at(index + latency_seconds(index)))
        for index in range(EVENTS) for model in MODELS
    ]


def outcomes() -> list[Outcome]:
    """Both models' outcomes of every event."""
    found = []
    for index in range(EVENTS):
        timed_out = index % 3 == 0
        delay = 30.0 if timed_out else (index % 7) * 0.5
        for model in MODELS:
            found.append(Outcome(
                event_id=f"e-{index}", model=model, model_version=1,
                role="champion" if model == "logreg" else "challenger", prediction=1,
                label=1, correct=is_correct(model, index), timed_out=timed_out,
                label_delay_seconds=delay, event_time=at(index), learned_at=at(index + delay)))
    return found


def alerts() -> list[DriftAlert]:
    """A concept alert on logreg's errors (listed first) and an earlier covariate alert."""
    return [
        DriftAlert(alert_id="alert-concept-1", kind="concept", detector="adwin",
                   target="error:logreg", model="logreg", statistic=0.25, threshold=0.002,
                   stream_position=320, event_time=at(320), detected_at=at(321)),
        DriftAlert(alert_id="alert-covariate-1", kind="covariate", detector="psi",
                   target="price", statistic=0.31, threshold=0.2, stream_position=100,
                   event_time=at(100), detected_at=at(101)),
    ]


def model_events() -> list[ModelEvent]:
    """A challenger started after the concept alert, and the promotion of ``tree``."""
    return [
        ModelEvent(event_id="me-1", kind="challenger_started", model="logreg-fresh",
                   model_version=1, reason="alert-concept-1", labels_seen=330, at=at(330)),
        ModelEvent(event_id="me-2", kind="promoted", model="tree", model_version=2,
                   previous_model="logreg", reason="sequential test", statistic=3.1,
                   threshold=2.9, labels_seen=450, at=at(450)),
    ]
