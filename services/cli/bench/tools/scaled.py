"""The scaled layout against one process, on the same stream: accuracy, staleness, CPU.

Each run starts the consumers under a fresh topic prefix (``features`` and the other pipeline
topics with ``--partitions`` partitions), publishes the same stream, and waits until every event
has its champion outcome. Runs: one process (``--predictors 0``), then each count of
``--predictors`` (a learner and that many replicas, as ``streamml up --predictors N``).

* accuracy: the champion's correct outcomes over those judged, read from ``outcomes``;
* staleness (scaled runs): the learner's histograms ``streamml_model_served_labels_behind`` and
  ``streamml_model_served_release_age_seconds``, p50 and p99 interpolated within buckets as
  Prometheus' ``histogram_quantile`` does;
* predictor CPU: user + system seconds of each replica's process over the run, and predictions
  per CPU-second (each replica's own ``streamml_predictor_predictions_total``). On a machine with
  fewer cores than processes, wall-clock speed-up says little; CPU time per prediction says what
  each replica adds.

Streams: ``--spec elec2`` replays ``data/elec2.csv`` (labels 48 rows late); any other spec runs
the clicks scenario (seed 7) at ``--rate``. ``--estimator`` swaps the champion's estimator (a
copy of the spec is written with it), e.g. ``forest.ARFClassifier``.

Run: ``.venv/bin/streamml bench scaled [--spec clicks] [--events 6000] [--rate 300]
[--predictors 1,3] [--estimator forest.ARFClassifier]``. Prints a Markdown table; writes
``bench/results/scaled.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from schemas.predictions import Outcome
from schemas.spec import resolve_spec_path
from services.cli.bench.scrape import cpu_seconds, load_average, scrape, total
from services.cli.bench.stack_run import RunningStack, delete_topics, start_stack, stop_stack
from services.cli.bench.tools.topic_reader import read_topic
from services.common.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[4]
OUT = Path("bench/results/scaled.json")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one process, then each replica count; print and write the figures."""
    parser = argparse.ArgumentParser(prog="streamml bench scaled", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="clicks")
    parser.add_argument("--events", type=int, default=6_000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--predictors", default="3", metavar="N1,N2,...",
                        help="replica counts to run after the one-process run (default 3)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--estimator", default=None,
                        help="the champion's estimator instead of the spec's")
    parser.add_argument("--no-single", action="store_true", help="skip the one-process run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--home", type=Path, default=None, metavar="DIR",
                        help="keep the runs' logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    kafka = KafkaSettings(bootstrap_servers=os.environ.get(
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    counts = ([] if args.no_single else [0]) + [int(n) for n in args.predictors.split(",") if n]
    started_load = load_average()
    with tempfile.TemporaryDirectory(prefix="streamml-scaled-") as scratch:
        home = args.home or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        spec = _spec_file(args.spec, args.estimator, home)
        runs = [_run(kafka, spec, args, predictors, home / f"home-{predictors}")
                for predictors in counts]
    result = {"spec": args.spec, "estimator": args.estimator, "events": args.events,
              "rate": args.rate, "partitions": args.partitions, "load_at_start": started_load,
              "cores": os.cpu_count(), "at": datetime.now(UTC).isoformat(), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(table(result))
    print(f"\nwritten to {args.out}")
    return 0


def _spec_file(spec: str, estimator: str | None, scratch: Path) -> str:
    """The spec to run: as named, or a copy whose champion uses ``estimator``."""
    if estimator is None:
        return spec
    text = resolve_spec_path(spec).read_text()
    champion = re.compile(r'(\[models\.champion\][^\[]*?estimator = )"[^"]*"', re.S)
    if not champion.search(text):
        raise SystemExit(f"no [models.champion] estimator in spec {spec!r}")
    path = scratch / f"{Path(spec).stem}-{estimator.replace('.', '-')}.toml"
    path.write_text(champion.sub(lambda m: f'{m.group(1)}"{estimator}"', text, count=1))
    return str(path)


def _run(kafka: KafkaSettings, spec: str, args: argparse.Namespace, predictors: int,
         home: Path) -> dict[str, Any]:
    layout = f"{predictors} predictor(s)" if predictors else "one process"
    print(f"-- {layout}: {args.events} events at {args.rate:g}/s", flush=True)
    prefix = f"scaled{uuid.uuid4().hex[:8]}-"
    running = start_stack(kafka, spec, prefix, home, predictors=predictors,
                          partitions=args.partitions,
                          extra_env={"STREAMML_MODEL__LABEL_HOLD_SECONDS": "5"})
    replicas = [f"predictor-{i}" for i in range(predictors)]
    try:
        pids = running.pids()
        cpu_before = {name: cpu_seconds(pids[name]) or 0.0 for name in [*replicas, "model"]}
        started = time.monotonic()
        _publish(running, spec, args)
        accuracy, judged = _champion_accuracy(kafka, prefix, args.events)
        seconds = time.monotonic() - started
        cpu = {name: (cpu_seconds(pids[name]) or 0.0) - before
               for name, before in cpu_before.items()}
        row: dict[str, Any] = {"predictors": predictors, "accuracy": accuracy,
                               "judged": judged, "seconds": round(seconds, 1),
                               "restarts": running.restarts(),
                               "learner_cpu_seconds": round(cpu["model"], 2)}
        if predictors:
            learner = scrape(running.port("model"))
            served = {name: total(scrape(running.port(name)),
                                  "streamml_predictor_predictions_total") for name in replicas}
            row.update({
                "labels_behind_p50": quantile(learner, "streamml_model_served_labels_behind",
                                              0.5),
                "labels_behind_p99": quantile(learner, "streamml_model_served_labels_behind",
                                              0.99),
                "release_age_p50": quantile(
                    learner, "streamml_model_served_release_age_seconds", 0.5),
                "release_age_p99": quantile(
                    learner, "streamml_model_served_release_age_seconds", 0.99),
                "replicas": {name: {"predictions": served[name],
                                    "cpu_seconds": round(cpu[name], 2)} for name in replicas},
            })
        print(f"   {row}", flush=True)
        return row
    finally:
        stop_stack(running)
        delete_topics(kafka, prefix)


def _publish(running: RunningStack, spec: str, args: argparse.Namespace) -> None:
    env = {**os.environ, "STREAMML_TOPIC_PREFIX": running.prefix, "STREAMML_SPEC": spec,
           "STREAMML_METRICS_PORT": "0", "STREAMML_LOG_LEVEL": "WARNING"}
    if Path(spec).stem.startswith("elec2"):
        command = [sys.executable, "-m", "services.cli", "replay", str(REPO / "data" /
                   "elec2.csv"), "--spec", spec, "--label-delay", "48", "--limit",
                   str(args.events), "--rate", str(args.rate), "--quiet"]
    else:
        command = [sys.executable, "-m", "services.producer"]
        env.update({"STREAMML_PRODUCER__RATE": str(args.rate),
                    "STREAMML_PRODUCER__MAX_EVENTS": str(args.events)})
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603


def _champion_accuracy(kafka: KafkaSettings, prefix: str, events: int) -> tuple[float, int]:
    """Share of the champion's judged outcomes that were correct, once every event has one."""
    seen: set[str] = set()
    correct = judged = 0

    def take(_: float, outcome: Outcome) -> None:
        nonlocal correct, judged
        if outcome.role != "champion" or outcome.event_id in seen:
            return
        seen.add(outcome.event_id)
        if outcome.correct is not None:
            judged += 1
            correct += outcome.correct

    read_topic(kafka, f"{prefix}outcomes", Outcome, take, lambda: len(seen) >= events,
               timeout=600, group="bench-scaled")
    if len(seen) < events:
        raise RuntimeError(f"only {len(seen)} of {events} events have an outcome")
    return (correct / judged if judged else float("nan")), judged


def quantile(samples: dict[str, float], name: str, q: float) -> float | None:
    """``q``-quantile of histogram ``name``: linear within the bucket it falls in."""
    buckets = sorted((float(match.group(1)), value) for key, value in samples.items()
                     if (match := re.fullmatch(name + r'_bucket\{le="([^"]+)"\}', key)))
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return round(lower_bound + share * (bound - lower_bound), 3)
        lower_bound, lower_count = bound, count
    return None


def table(result: dict[str, Any]) -> str:
    """The runs as a Markdown table."""
    lines = [f"{result['spec']} ({result['estimator'] or 'its own champion'}), "
             f"{result['events']} events at {result['rate']:g}/s, {result['partitions']} "
             f"partitions, load {result['load_at_start']} at start, {result['cores']} cores",
             "", "| layout | accuracy | labels behind p50 / p99 | release age s p50 / p99 | "
             "predictions per predictor CPU-s | learner CPU s |", "|---|---|---|---|---|---|"]
    for run in result["runs"]:
        n = run["predictors"]
        replicas = run.get("replicas", {})
        cpu = sum(r["cpu_seconds"] for r in replicas.values())
        served = sum(r["predictions"] for r in replicas.values())
        per_cpu = f"{served / cpu:,.0f} ({served:,.0f} in {cpu:.1f} s)" if cpu else "-"
        lines.append(
            f"| {f'{n} predictors' if n else 'one process'} | {run['accuracy']:.4f} | "
            f"{run.get('labels_behind_p50', '-')} / {run.get('labels_behind_p99', '-')} | "
            f"{run.get('release_age_p50', '-')} / {run.get('release_age_p99', '-')} | "
            f"{per_cpu} | {run['learner_cpu_seconds']} |")
    return "\n".join(lines)
