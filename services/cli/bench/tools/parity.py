"""Parity with River on Elec2: prequential accuracy of the running pipeline vs River in process.

What it measures
----------------
For each label delay *d* (``--delays 0,48``) and two models, ``StandardScaler |
LogisticRegression`` and ``HoeffdingAdaptiveTreeClassifier(seed=42)``:

* River in process: ``evaluate.progressive_val_score(dataset, model, metrics.Accuracy(),
  delay=d)`` on ``data/elec2.csv`` (the six features as floats, ``class`` 1/0 as True/False,
  which is what the model service learns: binary labels are normalised to bool). A second,
  identical pass (``iter_progressive_val_score(..., yield_predictions=True)``) records River's
  prediction for every event, to compare event by event.
* The whole running pipeline, both models in one run: a fresh topic prefix; the features and model
  services as child processes with a temporary spec (``elec2.toml`` with the logistic regression
  as champion, the tree as challenger and ``[models.promotion] min_labels = 10000000`` so nothing
  is promoted) and ``STREAMML_MODEL__LABEL_HOLD_SECONDS=600``, so learning is driven only by the
  stream's own timestamps; ``python -m services.cli replay --label-delay N``; then one sentinel
  event (``parity-sentinel``, never labelled, not counted) whose feature vector makes the model
  learn the last N labels. The model publishes one outcome per model per label; the streamed
  prequential accuracy of a model is the mean of ``correct`` over its outcomes (one per row).
  It is also given with River's convention: ``progressive_val_score`` leaves out of the metric
  the events a model could not predict on (an empty ``predict_proba_one``: the tree before its
  first label), while an outcome with prediction ``None`` counts as wrong.
* Checks that explain a difference: how many streamed predictions are identical to River's
  (and the first row that differs), and whether every label was learned between the two
  predictions it should fall between (the outcome's ``learned_at`` against the champion
  predictions' ``predicted_at``).

Delay mapping (River 0.26, ``river/stream/qa.py``: ``simulate_qa`` with ``moment=None`` times
observation *i* at *i* and queues its answer with expiry *i + d*; before question *i* it reveals
every queued answer whose expiry is ``<= i``, and answer *i* is only queued after question *i*)
-----------------------------------------------------------------------------------------------
* River ``delay=d`` with an integer d >= 1: answer *j* is learned right before question *j + d*.
  ``delay=0`` is the same as ``delay=1`` and as ``delay=None`` (plain prequential: learn *j*
  right before predicting *j + 1*).
* Pipeline ``replay --label-delay N``: label *j* is published right after event *j + N* (so its
  label time is later than that event's time), and the model service learns it right before it
  predicts the first event whose event time is later, event *j + N + 1*.
* So River ``delay=d`` corresponds to ``--label-delay max(d - 1, 0)``: d = 0 -> 0, d = 48 -> 47
  (``--label-delay 48`` is River's ``delay=49``).

Prints a Markdown table and writes JSON to ``bench/results/parity_elec2.json``.
Run: ``.venv/bin/streamml bench parity [--delays 0,48] [--limit N]
[--bootstrap 127.0.0.1:9092]`` (the local broker must be running: ``streamml kafka start``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from schemas.spec import load_spec
from services.cli.bench.tools.parity_river import compare, river_side
from services.cli.bench.tools.parity_setup import (
    CHALLENGER,
    CHAMPION,
    DATA,
    MODELS,
    REPO,
    SEED,
    label_delay_for,
    read_elec2,
    write_spec,
)
from services.cli.bench.tools.parity_stream import order_check, stream_side
from services.common.kafka import wait_for_broker
from services.common.settings import KafkaSettings

RESULTS = REPO / "bench" / "results" / "parity_elec2.json"
DESCRIPTIONS = {CHAMPION: "StandardScaler | LogisticRegression",
                CHALLENGER: f"HoeffdingAdaptiveTreeClassifier(seed={SEED})"}
TOLERANCE_POINTS = 0.2


def main(argv: Sequence[str] | None = None) -> int:
    """``streamml bench parity [options]``: parse ``argv``, run, return the exit code."""
    parser = argparse.ArgumentParser(prog="streamml bench parity",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--delays", default="0,48",
                        help="River delays d, comma-separated (default 0,48)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for the replay, and then for the outcomes")
    parser.add_argument("--keep-topics", action="store_true",
                        help="do not delete the run's topics afterwards")
    parser.add_argument("--kafka-extra", default='{"message.max.bytes": "67108864"}',
                        help="librdkafka settings for the services (STREAMML_KAFKA__EXTRA); "
                        "the default lets checkpoints over 1 MB out")
    args = parser.parse_args(argv)
    delays = [int(part) for part in args.delays.split(",") if part.strip()]
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    wait_for_broker(kafka, timeout=15)
    rows = read_elec2(DATA, args.limit)
    workdir = Path(tempfile.mkdtemp(prefix="parity-elec2-"))
    spec_path = write_spec(workdir)
    spec = load_spec(str(spec_path))
    model_specs = {model.name: model for model in (spec.models.champion,
                                                     *spec.models.challengers)}
    river_version = version("river")

    results: list[dict[str, Any]] = []
    for delay in delays:
        label_delay = label_delay_for(delay)
        print(f"d={delay}: River in process ...", file=sys.stderr, flush=True)
        river_runs = {model: river_side(rows, model_specs[model], delay) for model in MODELS}
        print(f"d={delay}: pipeline, replay --label-delay {label_delay} ...", file=sys.stderr,
              flush=True)
        run = stream_side(kafka, rows, label_delay, args.limit, workdir, spec_path, args.timeout,
                          args.keep_topics, args.kafka_extra)
        order = order_check(run, len(rows), delay)
        for model in MODELS:
            figures = compare(river_runs[model], run.outcomes.get(model, {}), rows)
            results.append({
                "model": model, "estimator": DESCRIPTIONS[model], "river_delay": delay,
                "label_delay": label_delay, "rows": len(rows), **figures,
                "events_per_second": len(rows) / run.seconds if run.seconds > 0 else None,
                "pipeline_seconds": run.seconds, "replay": run.replay_line,
                "duplicate_outcomes": run.duplicates, "learning_order": order,
                "prefix": run.prefix,
            })
        print(f"d={delay}: done ({run.replay_line})", file=sys.stderr, flush=True)

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps({
        "when": datetime.now(UTC).isoformat(),
        "machine": f"{platform.machine()} python {sys.version.split()[0]}",
        "river": river_version, "data": str(DATA.relative_to(REPO)), "rows": len(rows),
        "delay_mapping": "River delay=d <-> replay --label-delay max(d - 1, 0)",
        "tolerance_points": TOLERANCE_POINTS, "results": results,
    }, option=orjson.OPT_INDENT_2))
    return 1 if print_report(results, len(rows), river_version, workdir) else 0


def print_report(results: list[dict[str, Any]], rows: int, river_version: str,
                 workdir: Path) -> bool:
    """The Markdown table and a line per model and delay; True when a difference is beyond
    ``TOLERANCE_POINTS``."""
    print(f"Elec2, {rows} rows; River {river_version}; accuracy in %, "
          "differences in points (streamed - River)\n")
    print("| model | River delay d | replay --label-delay | River progressive_val_score | "
          "streamed (mean correct) | diff | streamed, River's convention | diff | "
          "same predictions | events/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rate = r["events_per_second"]
        print(f"| {r['model']} ({r['estimator']}) | {r['river_delay']} | {r['label_delay']} | "
              f"{100 * r['river']:.3f} | {100 * r['streamed']:.3f} | {r['diff_points']:+.3f} | "
              f"{100 * r['streamed_river_convention']:.3f} | "
              f"{r['diff_points_river_convention']:+.3f} | "
              f"{r['same_predictions']}/{r['rows']} | "
              f"{'n/a' if rate is None else f'{rate:.0f}'} |")
    print()
    failed = False
    for r in results:
        order = r["learning_order"]
        within = abs(r["diff_points"]) <= TOLERANCE_POINTS
        failed |= not within
        print(f"{r['model']} d={r['river_delay']}: {r['outcomes']} outcomes "
              f"({r['duplicate_outcomes']} duplicates), {r['no_prediction']} without a "
              f"prediction (River: {r['river_no_prediction']}), first different prediction at "
              f"row {r['first_different_row']}, labels learned too early/late: "
              f"{order['learned_too_early']}/{order['learned_too_late']} "
              f"(unchecked {order['unchecked']}); "
              f"{'within' if within else 'NOT within'} {TOLERANCE_POINTS} points")
    print(f"\nevents/s: rows / (last label learned - first event published); it depends on "
          "what else the machine and the broker are doing. "
          f"saved {RESULTS.relative_to(REPO)}; service logs in {workdir}")
    return failed

