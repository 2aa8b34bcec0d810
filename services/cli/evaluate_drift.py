"""``streamml evaluate-drift``: how well drift is detected on the click scenario's timeline.

Runs the scenario with its scheduled phases through the pipeline's own logic in this process
(:mod:`services.cli.pipeline_in_process`: no broker, a virtual clock, the same seed gives the
same figures), once per seed, and scores the drift alerts against the run's ground truth
(:mod:`services.cli.drift_scoring`). Prints, for each true drift, whether and how late (events and
seconds of event time) it was detected, and the false alarms per 10,000 events of the stationary
phases; ``--json`` saves every run's alerts and scores. ``--stationary`` runs the scenario
without a timeline (100,000 events unless ``--events``) to count false alarms alone.
``--from-topics PREFIX --truth FILE`` scores a live run instead: the alerts on the broker
against the truth file its producer wrote (:mod:`services.cli.drift_topics`). ``--synthetic``
scores River's synthetic streams with known change points under every label timing instead
(:mod:`services.cli.drift_benchmark`, :mod:`services.cli.drift_benchmark_report`).

The figures are measurements to compare settings with, not pass/fail checks; the targets it
reports against (an abrupt concept drift detected within :data:`TARGET_CONCEPT_DELAY_EVENTS`
events, median; no false alarm on a stationary stream) come from the project's issue.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.spec import load_spec
from services.cli.drift_benchmark_report import add_arguments as add_synthetic_arguments
from services.cli.drift_scoring import (
    DEFAULT_GRACE_EVENTS,
    DriftSummary,
    RunScore,
    false_alarm_rate,
    score_run,
    summarise,
)

DEFAULT_START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
"""Event time of the first event: fixed, so the hour-dependent clicks repeat from run to run."""
STATIONARY_EVENTS = 100_000
TARGET_CONCEPT_DELAY_EVENTS = 500


def add_parser(commands: Any) -> None:
    """Declare the ``evaluate-drift`` subcommand on ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "evaluate-drift", help="score drift detection on the click scenario (in process)",
        description="Run the click scenario with its drift timeline through the features, "
                    "model and drift logic in this process (no broker) and score the drift "
                    "alerts against the ground truth: detection delay per true drift, false "
                    "alarms per 10,000 stationary events. With --from-topics, score the alerts "
                    "of a live run on the broker against its truth file instead.",
    )
    parser.add_argument("--spec", default="clicks", help="built-in spec name or TOML file")
    parser.add_argument("--timeline", default="clicks-drift", metavar="NAME|FILE",
                        help="drift timeline (default clicks-drift)")
    parser.add_argument("--stationary", action="store_true",
                        help=f"no timeline: count false alarms on a stationary stream "
                             f"({STATIONARY_EVENTS:,} events unless --events)")
    parser.add_argument("--events", type=int, default=None, metavar="N",
                        help="events per run (default: the timeline's length)")
    parser.add_argument("--seed", type=int, default=7, help="first seed (default 7)")
    parser.add_argument("--repeats", type=int, default=1, metavar="K",
                        help="runs with seeds SEED .. SEED+K-1; delays are medians over them")
    parser.add_argument("--rate", type=float, default=50.0,
                        help="events per second of event time (default 50, as produce)")
    parser.add_argument("--label-delay", default=None, metavar="DIST",
                        help="feedback delay, as for produce (default uniform:0.2:3)")
    parser.add_argument("--grace", type=int, default=DEFAULT_GRACE_EVENTS, metavar="N",
                        help="events after a drift's phase in which an alert still counts "
                             f"for it (default {DEFAULT_GRACE_EVENTS})")
    parser.add_argument("--warmup", type=int, default=0, metavar="N",
                        help="leave the first N events out of the false-alarm count")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write every run's alerts and scores here")
    parser.add_argument("--from-topics", default=None, metavar="PREFIX",
                        help="score a live run instead: the drift alerts on PREFIX"
                             "drift-alerts (use '' for no prefix) against --truth")
    parser.add_argument("--truth", type=Path, default=None, metavar="FILE",
                        help="with --from-topics: the run's truth.json (written by produce)")
    add_synthetic_arguments(parser)
    parser.set_defaults(func=cmd_evaluate_drift)


def cmd_evaluate_drift(args: argparse.Namespace) -> int:
    """Run, score, print (and save) the evaluation the arguments describe."""
    from services.cli.pipeline_in_process import run_in_process
    from services.producer.scenarios.labels import parse_label_delay
    from services.producer.service import build_scenario
    from services.producer.settings import ProducerOptions

    if args.repeats < 1 or (args.events is not None and args.events < 1):
        raise ValueError("--repeats and --events must be at least 1")
    if getattr(args, "synthetic", False):
        from services.cli.drift_benchmark_report import cmd_synthetic

        return cmd_synthetic(args)
    if args.from_topics is not None:
        return score_live_run(args)
    spec = load_spec(args.spec)
    timeline = None if args.stationary else args.timeline
    delay = {"label_delay": parse_label_delay(args.label_delay)} if args.label_delay else {}
    seeds = [args.seed + offset for offset in range(args.repeats)]
    runs: list[dict[str, Any]] = []
    scores: list[RunScore] = []
    for seed in seeds:
        scenario = build_scenario(ProducerOptions(seed=seed, timeline=timeline, **delay))
        events = args.events or _default_events(scenario, timeline)
        run = run_in_process(spec, scenario, events, args.rate, DEFAULT_START)
        score = score_run(run.truth, run.alerts, run.events, args.grace, args.warmup)
        scores.append(score)
        runs.append({"seed": seed, "events": run.events, "labels": run.labels,
                     "wall_seconds": round(run.wall_seconds, 1), "score": score.to_json(),
                     "alerts": [placed.to_json() for placed in run.alerts],
                     "model_events": run.model_events, "dead_letters": run.dead_letters})
        print(f"seed {seed}: {run.events:,} events, {len(run.alerts)} alerts, model events "
              f"{_counts(run.model_events)}, {run.wall_seconds:.0f}s", flush=True)
    print()
    print(f"spec {spec.name}, timeline {timeline or '(none: stationary)'}, {args.rate:g} events/s, "
          f"seeds {', '.join(map(str, seeds))}, grace {args.grace} events")
    _finish(args, scores, runs, {
        "spec": spec.name, "timeline": timeline, "rate": args.rate, "seeds": seeds,
        "start": DEFAULT_START.isoformat()})
    return 0


def score_live_run(args: argparse.Namespace) -> int:
    """``--from-topics``: score the alerts of a run on the broker against its truth file."""
    from schemas.truth import GroundTruth
    from services.cli.drift_topics import place_alerts, read_live_run
    from services.common.settings import Settings

    if args.truth is None:
        raise ValueError("--from-topics needs --truth FILE (the run's truth.json)")
    truth = GroundTruth.model_validate_json(args.truth.read_bytes())
    alerts, counted, broken = read_live_run(Settings().kafka, args.from_topics)
    events = args.events or counted
    if events < 1:
        raise ValueError(f"no events on {args.from_topics}events; give --events N")
    placed = place_alerts(alerts, truth, events)
    score = score_run(truth, placed, events, args.grace, args.warmup)
    print(f"prefix '{args.from_topics}': {events:,} events, {len(placed)} alerts"
          + (f" ({broken} not decodable, left out)" if broken else "")
          + f", truth {args.truth} (timeline {truth.timeline or 'none'}), grace {args.grace}")
    _finish(args, [score], [{"events": events, "score": score.to_json(),
                             "alerts": [p.to_json() for p in placed]}],
            {"prefix": args.from_topics, "truth": str(args.truth)})
    return 0


def _finish(args: argparse.Namespace, scores: list[RunScore], runs: list[dict[str, Any]],
            about: dict[str, Any]) -> None:
    """Print the table; write the JSON document if asked."""
    summaries = summarise(scores)
    print(render(summaries, scores))
    if args.json is None:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **about, "grace": args.grace, "warmup": args.warmup,
        "summary": [summary.to_json() for summary in summaries],
        "false_alarms": dict(zip(("alarms", "stationary_events", "per_10k"),
                                 false_alarm_rate(scores), strict=True)),
        "runs": runs,
    }
    args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"saved {args.json}")


def _default_events(scenario: object, timeline: str | None) -> int:
    if timeline is None:
        return STATIONARY_EVENTS
    total = getattr(getattr(scenario, "timeline", None), "total_events", None)
    return int(total) if total else STATIONARY_EVENTS


def render(summaries: list[DriftSummary], scores: list[RunScore]) -> str:
    """The table of true drifts, the false-alarm line and the targets, as printed."""
    lines = [f"{'drift':<30}{'kind':<11}{'start':>8}  {'detected':<9}{'delay events':>13}"
             f"{'delay s':>9}  {'first detector':<32}delays per run (events)"]
    for s in summaries:
        name = f"{s.phase} ({s.transition})"
        per_run = ", ".join("-" if d is None else str(d) for d in s.delays_events) or "-"
        lines.append(
            f"{name:<30}{s.kind:<11}{s.start_index:>8}  {f'{s.detected}/{s.reached}':<9}"
            f"{_number(s.median_delay_events, 0):>13}{_number(s.median_delay_seconds, 1):>9}  "
            f"{s.detectors[0] if s.detectors else '-':<32}{per_run}"
        )
    if not summaries:
        lines.append("(no drift in this run)")
    alarms, events, rate = false_alarm_rate(scores)
    kinds: dict[str, int] = {}
    for score in scores:
        for kind, count in score.false_alarms_by_kind().items():
            kinds[kind] = kinds.get(kind, 0) + count
    lines.append("")
    lines.append(f"false alarms in stationary phases: {alarms} in {events:,} events = "
                 f"{_number(rate, 2)} per 10,000 events"
                 + (f" ({_counts(kinds)})" if kinds else ""))
    abrupt = [s.median_delay_events for s in summaries
              if s.kind == "concept" and s.transition == "abrupt"]
    for delay in abrupt:
        verdict = "not detected" if delay is None else (
            "met" if delay <= TARGET_CONCEPT_DELAY_EVENTS else "not met")
        lines.append(f"target: abrupt concept drift within {TARGET_CONCEPT_DELAY_EVENTS} events "
                     f"(median): {_number(delay, 0)} events, {verdict}")
    lines.append(f"target: no false alarm on a stationary stream: {alarms} false alarm(s) in "
                 f"{events:,} stationary events")
    return "\n".join(lines)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items())) or "none"
