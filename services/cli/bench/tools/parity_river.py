"""River in process for ``streamml bench parity``, and one model's streamed outcomes compared
with it: accuracies and event-by-event predictions."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any

from schemas.predictions import Outcome
from schemas.spec import ModelSpec
from services.cli.bench.tools.parity_setup import Row, event_id
from services.model.estimators import build_estimator


def river(module: str) -> Any:
    """``river.<module>``, imported when first needed (River's annotations are partial)."""
    return importlib.import_module(f"river.{module}")


@dataclass(frozen=True)
class RiverRun:
    accuracy: float
    predictions: list[object]
    seconds: float


def river_side(rows: list[Row], model: ModelSpec, delay: int) -> RiverRun:
    """``progressive_val_score(delay=delay)``, and River's prediction for every event; the
    estimator is built as the model service builds the spec's models."""
    evaluate, metrics = river("evaluate"), river("metrics")

    def dataset() -> Any:
        return ((dict(x), y) for x, y in rows)

    began = time.perf_counter()
    metric = evaluate.progressive_val_score(dataset(), build_estimator(model), metrics.Accuracy(),
                                            delay=delay)
    seconds = time.perf_counter() - began
    steps = list(evaluate.iter_progressive_val_score(
        dataset(), build_estimator(model), metrics.Accuracy(), delay=delay, step=1,
        yield_predictions=True))
    # With a constant delay answers come in row order, so step k is row k.
    predictions = [step["Prediction"] for step in steps]
    if len(predictions) != len(rows) or steps[-1]["Accuracy"].get() != metric.get():
        raise RuntimeError(f"{model.name}: the per-event pass does not reproduce "
                           f"progressive_val_score ({len(predictions)} steps)")
    return RiverRun(float(metric.get()), predictions, seconds)


def compare(river_run: RiverRun, outcomes: dict[str, Outcome], rows: list[Row]) -> dict[str, Any]:
    """Streamed accuracies of one model and how its predictions compare with River's."""
    got = [outcomes[event_id(i)] for i in range(len(rows)) if event_id(i) in outcomes]
    mean_correct = sum(bool(o.correct) for o in got) / len(got) if got else float("nan")
    convention = river("metrics").Accuracy()
    for outcome in got:
        if outcome.prediction is not None:
            convention.update(outcome.label, outcome.prediction)
    same = 0
    first_difference: int | None = None
    wrong_labels = 0
    for i, (_, y) in enumerate(rows):
        streamed = outcomes.get(event_id(i))
        if streamed is None:
            continue
        wrong_labels += streamed.label != y
        if streamed.prediction == river_run.predictions[i]:
            same += 1
        elif first_difference is None:
            first_difference = i + 1
    return {
        "river": river_run.accuracy, "river_seconds": river_run.seconds,
        "outcomes": len(got), "streamed": mean_correct,
        "streamed_river_convention": float(convention.get()),
        "no_prediction": sum(o.prediction is None for o in got),
        "river_no_prediction": sum(p is None for p in river_run.predictions),
        "diff_points": 100 * (mean_correct - river_run.accuracy),
        "diff_points_river_convention": 100 * (float(convention.get()) - river_run.accuracy),
        "same_predictions": same, "first_different_row": first_difference,
        "labels_differing_from_file": wrong_labels,
    }
