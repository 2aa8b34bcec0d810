"""Benchmark of the model service alone, on the local broker (built-in ``clicks`` spec).

Feature vectors (``schemas.features.FeatureVector``, keyed by their ``user`` entity like the
features service keys them) and labels (keyed by ``event_id``) are published straight to
``<prefix>features`` and ``<prefix>labels`` under a fresh topic prefix; no features service runs.
Event times are 1 ms apart; the label of event *j* is stamped just after event *j + 10*, so labels
are learned in the stream, ten events behind the predictions.

1. Throughput, twice: (a) N vectors and their N labels are published *before* the service
   starts, then one ``python -m services.model`` drains them (a backlog, as after downtime);
   (b) the same while the service runs, never more than ``--ahead`` vectors beyond its
   predictions (a saturated live stream). Predictions/s and learns/s come from the service's own
   counters (``streamml_model_predictions_total``, ``streamml_model_labels_learned_total``),
   scraped from its ``/metrics`` every ~0.25 s: the count gained between the first scrape that
   saw a prediction and the scrape at which the count stopped growing, divided by the time
   between the two. Every model of the spec (``clicks``: champion ``logreg`` and challenger
   ``tree``) predicts on every vector and learns every label; only the champion's prediction is
   published and counted, and a label counts once (the most labels any one model learned).
   Outputs become visible to ``read_committed`` readers only in checkpoint transactions, so
   counting them on the output topics would measure the commit interval as much as the service.
   The labels stamped after the newest vector the service has stepped to are learned only once
   the stream has been quiet for ``label_hold_seconds`` (30 s); they are not waited for. Also
   reported: checkpoints per second and messages processed per checkpoint (``/health``), the
   largest checkpoint, label anomalies and dead letters.
2. Latency at a steady rate: with the service running (and warmed up: its partitions assigned),
   vectors are published at R/s for S seconds (with their labels, so it learns as it goes). For
   each prediction read back from ``<prefix>predictions``:

   * service latency: ``predicted_at - features_at``, the service's own time from reading the
     vector to producing its prediction;
   * publish -> visible: the wall time a ``read_committed`` consumer read the prediction minus
     the time the vector was published. It includes the broker round trips and, above all, the
     wait for the checkpoint transaction that makes the prediction visible, which commits every
     ``commit_interval_seconds`` (100 ms by default): expect roughly half of it at p50 and all of it
     at p99.

The size of the last checkpoint (``streamml_model_checkpoint_bytes``) is reported for every run.
If the service dies, the table says so with the last error of its log. ``--kafka-extra`` passes
extra librdkafka settings to the service (``STREAMML_KAFKA__EXTRA``).
Prints a Markdown table and writes JSON to ``bench/results/model.json``.

Run: ``.venv/bin/streamml bench model [--events 50000] [--ahead 5000] [--rate 500]
[--seconds 20]`` (needs the local broker: ``.venv/bin/streamml kafka start``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.cli.bench.tools.model_latency import latency
from services.cli.bench.tools.model_process import (
    SPEC,
)
from services.cli.bench.tools.model_throughput import drain
from services.common.settings import KafkaSettings

RESULTS = Path("bench/results/model.json")


def print_table(drains: list[dict[str, Any]], lat: dict[str, Any] | None) -> None:
    """The Markdown table of one benchmark run."""
    models = ", ".join(next((t["models"] for t in drains if t["models"]), []))
    print(f"| model service alone ({SPEC} spec; models: {models}) | value |")
    print("|---|---|")
    for run in [*drains, lat]:
        if run is not None and run["crashed"]:
            print(f"| **the service died** ({run.get('mode', 'latency')} run) | "
                  f"{run['crashed']} |")
    for t in drains:
        how = ("pre-loaded, then drained" if t["ahead"] is None
               else f"published while running, <= {t['ahead']} ahead")
        what = f"{t['events']} vectors + {t['labels']} labels, {how}"
        print(f"| {what}: predictions/s | {t['predictions_per_second']:.0f} |")
        print(f"| {what}: learns/s | {t['learns_per_second']:.0f} |")
        print(f"| {what}: checkpoints/s, messages per checkpoint | "
              f"{t['checkpoints_per_second']:.2f}, {t['messages_per_checkpoint']:.0f} |")
        print(f"| {what}: largest / last checkpoint | {t['max_checkpoint_bytes'] / 1024:.0f} / "
              f"{t['checkpoint_bytes'] / 1024:.0f} KiB |")
        anomalies = {k: v for k, v in t["label_anomalies"].items() if v}
        print(f"| {what}: labels learned, of which timed out; anomalies | "
              f"{t['labels_learned']:.0f}, {t['timed_out_learned']:.0f}; {anomalies or 'none'} |")
        print(f"| {what}: load average before / after | {t['load_average_before'][0]} / "
              f"{t['load_average_after'][0]} |")
    if lat is not None:
        at = f"at {lat['rate']:.0f} vectors/s"
        print(f"| feature vector -> prediction in the service {at}, p50 / p99 | "
              f"{lat['service_p50_ms']:.2f} / {lat['service_p99_ms']:.2f} ms |")
        print(f"| publish -> prediction visible (read_committed) {at}, p50 / p99 | "
              f"{lat['publish_to_visible_p50_ms']:.0f} / {lat['publish_to_visible_p99_ms']:.0f}"
              " ms |")
        print(f"| predictions read / published | {lat['predictions_read']} / "
              f"{lat['published']} |")
        print(f"| checkpoint after the latency run | {lat['checkpoint_bytes'] / 1024:.0f} KiB |")
        print(f"| latency run: load average before / after | {lat['load_average_before'][0]} / "
              f"{lat['load_average_after'][0]} |")
    print("\npublish -> visible includes the wait for the checkpoint transaction "
          "(commit_interval_seconds, 100 ms by default) that makes a prediction readable.")


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench model [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench model",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000,
                        help="vectors (and as many labels) for the throughput runs")
    parser.add_argument("--ahead", type=int, default=5_000,
                        help="paced throughput run: publish at most this many vectors beyond "
                        "the service's predictions (0: skip the paced run)")
    parser.add_argument("--rate", type=float, default=500.0, help="vectors/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up a throughput run after this many seconds")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--skip-preloaded", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--kafka-extra", default=None, metavar="JSON",
                        help="extra librdkafka settings for the service, as JSON "
                        "(STREAMML_KAFKA__EXTRA)")
    args = parser.parse_args(argv)
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    env = {} if args.kafka_extra is None else {"STREAMML_KAFKA__EXTRA": args.kafka_extra}
    logs = Path(tempfile.mkdtemp(prefix="bench-model-"))
    drains = []
    if not args.skip_preloaded:
        drains.append(drain(kafka, args.events, logs, args.timeout, env))
    if args.ahead > 0:
        drains.append(drain(kafka, args.events, logs, args.timeout, env, ahead=args.ahead))
    lat = None if args.skip_latency else latency(kafka, args.rate, args.seconds, logs, env)
    figures = {
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, python {sys.version.split()[0]}",
        "spec": SPEC, "service_env": env, "throughput": drains, "latency": lat,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print_table(drains, lat)
    print(f"saved {args.output}; service logs in {logs}")
    return 0

