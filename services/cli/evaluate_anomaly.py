"""``streamml evaluate-anomaly``: precision and recall of the anomaly flags on the sensors scenario.

Runs the ``sensors`` scenario (injected anomalies, most of them confirmed later as incidents)
through the features and model logic of an anomaly spec in this process
(:mod:`services.cli.pipeline_in_process`: no broker, a virtual clock, the same seed gives the
same figures), once per flagging quantile. For each model: how many readings it flagged, and
the precision and recall of its flags, judged two ways: against the outcomes the pipeline
publishes (the confirmed incidents; an anomaly nobody confirmed counts as a negative there, as
it does in the sink's metrics) and against the scenario's truth (every injected anomaly).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Message

from schemas.codec import decode
from schemas.predictions import Outcome
from schemas.spec import PipelineSpec, load_spec
from schemas.truth import GroundTruth
from services.producer.scenarios.base import LabelledEvent, Scenario


def add_parser(commands: Any) -> None:
    """Declare the ``evaluate-anomaly`` subcommand on ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "evaluate-anomaly", help="precision and recall of anomaly flags (in process)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--spec", default="sensors", help="an anomaly spec (default sensors)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--quantiles", default=None, metavar="Q1,Q2,...",
                        help="flagging quantiles to compare (default: the spec's)")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE")
    parser.set_defaults(func=cmd_evaluate_anomaly)


@dataclass
class _Truth:
    """The scenario, recording which events are anomalies (its label, sent or not)."""

    inner: Scenario
    anomalies: set[str] = field(default_factory=set)

    @property
    def spec_name(self) -> str:
        return self.inner.spec_name

    @property
    def entity_key(self) -> str:
        return self.inner.entity_key

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        for labelled in self.inner.events(start, interval_seconds):
            if labelled.label:
                self.anomalies.add(labelled.event.event_id)
            yield labelled

    def ground_truth(self, start: datetime, interval_seconds: float) -> GroundTruth:
        return GroundTruth(scenario=self.inner.spec_name, start=start,
                           interval_seconds=interval_seconds)


@dataclass
class _Flags:
    """Every model's flag per event (from the outcomes: one per model and event)."""

    outcomes: dict[str, dict[str, tuple[bool, bool]]] = field(default_factory=dict)

    def handle(self, message: Message) -> None:
        outcome = decode(Outcome, message.value())
        self.outcomes.setdefault(outcome.model, {})[outcome.event_id] = (
            bool(outcome.prediction), bool(outcome.label))


def scores(flags: dict[str, tuple[bool, bool]], anomalies: set[str]) -> dict[str, Any]:
    """Flagged count and rate; precision and recall against the labels and against the truth."""
    flagged = {event_id for event_id, (flag, _) in flags.items() if flag}
    confirmed = {event_id for event_id, (_, label) in flags.items() if label}
    true = anomalies & set(flags)

    def pr(positives: set[str]) -> tuple[float | None, float | None]:
        hits = len(flagged & positives)
        return (hits / len(flagged) if flagged else None,
                hits / len(positives) if positives else None)

    label_precision, label_recall = pr(confirmed)
    truth_precision, truth_recall = pr(true)
    return {"judged": len(flags), "flagged": len(flagged),
            "flagged_rate": round(len(flagged) / len(flags), 4) if flags else None,
            "confirmed": len(confirmed), "anomalies": len(true),
            "precision_labels": _round(label_precision), "recall_labels": _round(label_recall),
            "precision_truth": _round(truth_precision), "recall_truth": _round(truth_recall)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _with_quantile(spec: PipelineSpec, quantile: float) -> PipelineSpec:
    anomaly = spec.models.anomaly.model_copy(update={"quantile": quantile})
    return spec.model_copy(update={"models": spec.models.model_copy(update={"anomaly": anomaly})})


def cmd_evaluate_anomaly(args: argparse.Namespace) -> int:
    """One in-process run per quantile; print (and save) the table."""
    from services.cli.evaluate_drift import DEFAULT_START
    from services.cli.pipeline_in_process import run_in_process
    from services.producer.service import build_scenario
    from services.producer.settings import ProducerOptions

    spec = load_spec(args.spec)
    if spec.models.task != "anomaly":
        raise ValueError(f"spec '{spec.name}' is not an anomaly spec (models.task = 'anomaly')")
    quantiles = ([float(q) for q in args.quantiles.split(",")] if args.quantiles
                 else [spec.models.anomaly.quantile])
    rows = []
    for quantile in quantiles:
        scenario = _Truth(build_scenario(ProducerOptions(scenario="sensors", seed=args.seed)))
        flags = _Flags()
        run = run_in_process(_with_quantile(spec, quantile), scenario,  # type: ignore[arg-type]
                             args.events, args.rate, DEFAULT_START,
                             observers=[("outcomes", flags)])
        for model, by_event in flags.outcomes.items():
            rows.append({"quantile": quantile, "model": model,
                         **scores(by_event, scenario.anomalies)})
        print(f"quantile {quantile}: {run.events:,} events, {len(scenario.anomalies):,} "
              f"anomalies injected, {run.wall_seconds:.0f} s", flush=True)
    print(render(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps({"spec": spec.name, "events": args.events,
                                            "seed": args.seed, "rate": args.rate, "rows": rows},
                                           option=orjson.OPT_INDENT_2))
        print(f"saved {args.json}")
    return 0


def render(rows: list[dict[str, Any]]) -> str:
    """The table, Markdown."""
    lines = ["| quantile | model | judged | flagged (rate) | confirmed incidents | anomalies "
             "injected | precision / recall vs incidents | precision / recall vs truth |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['quantile']} | {r['model']} | {r['judged']:,} | {r['flagged']:,} "
            f"({r['flagged_rate']}) | {r['confirmed']:,} | {r['anomalies']:,} | "
            f"{r['precision_labels']} / {r['recall_labels']} | "
            f"{r['precision_truth']} / {r['recall_truth']} |")
    return "\n".join(lines)
