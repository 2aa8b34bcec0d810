"""``streamml evaluate-estimate``: the accuracy estimated before the labels came, against the
accuracy those same predictions turned out to have.

Runs the click scenario with its drift timeline through the pipeline's own logic in this process
(:mod:`services.cli.pipeline_in_process`: no broker, a virtual clock, the same seed gives the
same figures). The metrics sink's estimator (:class:`~services.metrics_sink.estimate.
AccuracyEstimate`) reads the champion's predictions and the outcomes as the sink does; for each
prediction it records the accuracy expected of it when it was made (only the labels that had
come by then), and, when its outcome comes, whether it was right. Per phase of the timeline:
the realised accuracy of the predictions made in it, the mean estimate made for them, and the
error in points; next to it, what a user sees without an estimate when the prediction is made:
the rolling accuracy of the latest outcomes (the last ``--window``), and its error.

The figures are measurements, not pass/fail checks.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Message

from schemas.codec import decode
from schemas.predictions import Outcome, Prediction
from schemas.spec import load_spec
from schemas.truth import GroundTruth
from services.metrics_sink.estimate import AccuracyEstimate, confidence_of, outcome_confidence
from services.metrics_sink.rolling import RollingMean


def add_parser(commands: Any) -> None:
    """Declare the ``evaluate-estimate`` subcommand on ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "evaluate-estimate", help="estimated accuracy against realised, per phase (in process)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", default="clicks", help="built-in spec name or TOML file")
    parser.add_argument("--timeline", default="clicks-drift", metavar="NAME|FILE")
    parser.add_argument("--events", type=int, default=None, metavar="N",
                        help="events (default: the timeline's length)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=50.0,
                        help="events per second of event time (default 50)")
    parser.add_argument("--window", type=int, default=1000,
                        help="outcomes in the rolling accuracy compared with (default 1000)")
    parser.add_argument("--head", type=int, default=2000,
                        help="also compare over each phase's first N events (default 2000)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    parser.set_defaults(func=cmd_evaluate_estimate)


@dataclass
class _Made:
    index: int
    model: str
    estimate: float
    rolling: float | None


@dataclass
class EstimateRecorder:
    """Reads ``predictions`` and ``outcomes``: the estimate at each prediction, its outcome."""

    published: Callable[[], int]
    window: int
    estimates: dict[str, AccuracyEstimate] = field(default_factory=dict)
    made: dict[str, _Made] = field(default_factory=dict)
    judged: list[tuple[_Made, bool]] = field(default_factory=list)
    rolling: dict[str, RollingMean] = field(default_factory=dict)

    def handle(self, message: Message) -> None:
        if message.topic() == "predictions":
            self._predicted(decode(Prediction, message.value()))
        else:
            self._resolved(decode(Outcome, message.value()))

    def _predicted(self, prediction: Prediction) -> None:
        confidence = confidence_of(prediction)
        if confidence is None:
            return
        estimate = self.estimates.setdefault(prediction.model, AccuracyEstimate())
        rolling = self.rolling.get(prediction.model)
        self.made[prediction.event_id] = _Made(
            max(self.published() - 1, 0), prediction.model,
            estimate.predicted(prediction.event_id, confidence),
            rolling.mean if rolling is not None and len(rolling) else None)

    def _resolved(self, outcome: Outcome) -> None:
        if outcome.correct is None:
            return
        estimate = self.estimates.get(outcome.model)
        if estimate is None:
            return
        estimate.resolved(outcome.event_id, outcome.correct, outcome_confidence(outcome))
        self.rolling.setdefault(outcome.model, RollingMean(self.window)).update(
            float(outcome.correct))
        made = self.made.pop(outcome.event_id, None)
        if made is not None and made.model == outcome.model:
            self.judged.append((made, outcome.correct))


def per_phase(truth: GroundTruth, judged: list[tuple[_Made, bool]], head: int
              ) -> list[dict[str, Any]]:
    """Realised accuracy, mean estimate and mean rolling accuracy of each phase's predictions,
    and of its first ``head`` events (where a shift has just begun)."""
    rows = []
    for phase in truth.phases:
        for part, end in (("whole", phase.end_index),
                          (f"first {head:,}", min(phase.end_index, phase.start_index + head))):
            inside = [(made, right) for made, right in judged
                      if phase.start_index <= made.index < end]
            if inside:
                rows.append({"phase": phase.name, "kind": phase.kind, "part": part,
                             **_compare(inside)})
    return rows


def _compare(inside: list[tuple[_Made, bool]]) -> dict[str, Any]:
    realised = sum(right for _, right in inside) / len(inside)
    estimated = sum(made.estimate for made, _ in inside) / len(inside)
    known = [made.rolling for made, _ in inside if made.rolling is not None]
    rolling = sum(known) / len(known) if known else None
    return {
        "judged": len(inside), "realised": round(realised, 4),
        "estimated": round(estimated, 4), "error_points": round(100 * (estimated - realised), 2),
        "rolling": None if rolling is None else round(rolling, 4),
        "rolling_error_points": None if rolling is None else round(100 * (rolling - realised),
                                                                   2),
    }


def cmd_evaluate_estimate(args: argparse.Namespace) -> int:
    """Run the scenario once, print (and save) the table per phase."""
    from services.cli.evaluate_drift import DEFAULT_START, STATIONARY_EVENTS
    from services.cli.pipeline_in_process import run_in_process
    from services.producer.service import build_scenario
    from services.producer.settings import ProducerOptions

    spec = load_spec(args.spec)
    scenario = build_scenario(ProducerOptions(seed=args.seed, timeline=args.timeline))
    total = getattr(getattr(scenario, "timeline", None), "total_events", None)
    events = args.events or int(total or STATIONARY_EVENTS)
    published = [0]
    recorder = EstimateRecorder(lambda: published[0], args.window)
    run = run_in_process(spec, scenario, events, args.rate, DEFAULT_START,
                         observers=[("events", _Counter(published)),
                                    ("predictions", recorder), ("outcomes", recorder)])
    rows = per_phase(run.truth, recorder.judged, args.head)
    print(f"spec {spec.name}, timeline {args.timeline}, seed {args.seed}, {run.events:,} events "
          f"at {args.rate:g}/s, {len(recorder.judged):,} predictions judged, "
          f"{run.wall_seconds:.0f} s")
    print(render(rows, args.window))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({
            "spec": spec.name, "timeline": args.timeline, "seed": args.seed,
            "events": run.events, "rate": args.rate, "window": args.window, "head": args.head,
            "phases": rows,
        }, option=orjson.OPT_INDENT_2))
        print(f"saved {args.json}")
    return 0


@dataclass
class _Counter:
    """Counts the events published (the index of the event being predicted)."""

    count: list[int]

    def handle(self, message: Message) -> None:
        self.count[0] += 1


def render(rows: list[dict[str, Any]], window: int) -> str:
    """The per-phase table, Markdown."""
    lines = [f"| phase | kind | events | judged | realised | estimated (error, points) | "
             f"rolling accuracy of the last {window:,} outcomes (error, points) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        rolling = ("-" if row["rolling"] is None
                   else f"{row['rolling']:.3f} ({row['rolling_error_points']:+.1f})")
        lines.append(f"| {row['phase']} | {row['kind']} | {row['part']} | {row['judged']:,} | "
                     f"{row['realised']:.3f} | {row['estimated']:.3f} "
                     f"({row['error_points']:+.1f}) | {rolling} |")
    return "\n".join(lines)
