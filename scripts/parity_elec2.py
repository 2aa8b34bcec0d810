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
Run: ``.venv/bin/python scripts/parity_elec2.py [--delays 0,48] [--limit N]
[--bootstrap 127.0.0.1:9092]`` (the local broker must be running: ``streamml kafka start``).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from schemas.codec import decode
from schemas.events import Event
from schemas.predictions import Outcome, Prediction
from schemas.spec import load_spec
from services.cli.bench.stack_run import delete_topics
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics, make_consumer, wait_for_broker
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "elec2.csv"
RESULTS = REPO / "bench" / "results" / "parity_elec2.json"
FEATURES = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
LABEL = "class"
SEED = 42
CHAMPION = "logreg"
CHALLENGER = "hat"
MODELS = (CHAMPION, CHALLENGER)
DESCRIPTIONS = {CHAMPION: "StandardScaler | LogisticRegression",
                CHALLENGER: f"HoeffdingAdaptiveTreeClassifier(seed={SEED})"}
SENTINEL = "parity-sentinel"
TOLERANCE_POINTS = 0.2
MODELS_TOML = f"""
# Written by scripts/parity_elec2.py: elec2.toml with both models and no promotion.
[models.champion]
name = "{CHAMPION}"
estimator = "linear_model.LogisticRegression"
scale = true

[[models.challengers]]
name = "{CHALLENGER}"
estimator = "tree.HoeffdingAdaptiveTreeClassifier"
params = {{ seed = {SEED} }}

[models.promotion]
min_labels = 10000000
"""

Row = tuple[dict[str, float], bool]


def label_delay_for(river_delay: int) -> int:
    """The ``replay --label-delay`` that learns like River's ``delay=river_delay``."""
    return max(river_delay - 1, 0)


def read_elec2(path: Path, limit: int | None) -> list[Row]:
    """The first ``limit`` rows (all when None): six floats and the class as a bool."""
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8-sig") as file:
        for values in csv.DictReader(file):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(({name: float(values[name]) for name in FEATURES},
                         bool(int(values[LABEL]))))
    return rows


# -- River in process -------------------------------------------------------------------------


def river(module: str) -> Any:
    """``river.<module>``, imported when first needed (River's annotations are partial)."""
    return importlib.import_module(f"river.{module}")


def river_model(name: str) -> Any:
    """A fresh estimator, built as the model service builds the spec's models."""
    if name == CHAMPION:
        return (river("preprocessing").StandardScaler()
                | river("linear_model").LogisticRegression())
    return river("tree").HoeffdingAdaptiveTreeClassifier(seed=SEED)


@dataclass(frozen=True)
class RiverRun:
    accuracy: float
    predictions: list[object]
    seconds: float


def river_side(rows: list[Row], model: str, delay: int) -> RiverRun:
    """``progressive_val_score(delay=delay)``, and River's prediction for every event."""
    evaluate, metrics = river("evaluate"), river("metrics")

    def dataset() -> Any:
        return ((dict(x), y) for x, y in rows)

    began = time.perf_counter()
    metric = evaluate.progressive_val_score(dataset(), river_model(model), metrics.Accuracy(),
                                            delay=delay)
    seconds = time.perf_counter() - began
    steps = list(evaluate.iter_progressive_val_score(
        dataset(), river_model(model), metrics.Accuracy(), delay=delay, step=1,
        yield_predictions=True))
    # With a constant delay answers come in row order, so step k is row k.
    predictions = [step["Prediction"] for step in steps]
    if len(predictions) != len(rows) or steps[-1]["Accuracy"].get() != metric.get():
        raise RuntimeError(f"{model}: the per-event pass does not reproduce "
                           f"progressive_val_score ({len(predictions)} steps)")
    return RiverRun(float(metric.get()), predictions, seconds)


# -- the pipeline -----------------------------------------------------------------------------


@dataclass
class StreamRun:
    prefix: str
    label_delay: int
    outcomes: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    duplicates: int = 0
    predicted_at: dict[str, datetime] = field(default_factory=dict)
    replay_line: str = ""
    replay_seconds: float = 0.0
    seconds: float = float("nan")
    """From the first event's time (when the replay published it) to the last label learned."""
    logs: Path = Path()


def write_spec(directory: Path) -> Path:
    """elec2.toml with its models replaced by both models and a promotion that never fires."""
    builtin = load_spec("elec2")
    kept: list[str] = []
    skipping = False
    for line in (REPO / "schemas" / "specs" / "elec2.toml").read_text().splitlines():
        if line.strip().startswith("[models"):
            skipping = True
            continue
        if skipping and (line.startswith("[") or line.startswith("#")):
            skipping = False
        if not skipping:
            kept.append(line)
    path = directory / "elec2_parity.toml"
    path.write_text("\n".join(kept) + "\n" + MODELS_TOML)
    spec = load_spec(str(path))
    if spec.model_dump(exclude={"models"}) != builtin.model_dump(exclude={"models"}):
        raise RuntimeError(f"{path} differs from elec2.toml outside [models]")
    return path


def stream_side(kafka: KafkaSettings, rows: list[Row], label_delay: int, limit: int | None,
                workdir: Path, timeout: float, keep_topics: bool, kafka_extra: str) -> StreamRun:
    """Replay the rows through features + model with ``--label-delay label_delay``."""
    prefix = f"parity{uuid.uuid4().hex[:8]}-"
    run = StreamRun(prefix=prefix, label_delay=label_delay, logs=workdir)
    ensure_topics(kafka, prefix)
    env = {"STREAMML_TOPIC_PREFIX": prefix,
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_SPEC": str(write_spec(workdir)),
           "STREAMML_MODEL__LABEL_HOLD_SECONDS": "600",
           "STREAMML_LOG_LEVEL": "WARNING",
           "F_DATADIR": str(workdir / "{conf.name}-data")}  # faust's tables, out of the repo
    features = ServiceProcess("services.features", env, workdir / f"{prefix}features.log")
    # The producer's default message.max.bytes (1 MB) is smaller than the model service's
    # checkpoint with the tree on full Elec2: without this it dies with MSG_SIZE_TOO_LARGE.
    model = ServiceProcess("services.model", {**env, "STREAMML_KAFKA__EXTRA": kafka_extra},
                           workdir / f"{prefix}model.log")
    try:
        features.start()
        model.start()
        command = [sys.executable, "-m", "services.cli", "replay", str(DATA), "--spec",
                   env["STREAMML_SPEC"], "--label-delay", str(label_delay), "--quiet"]
        if limit is not None:
            command += ["--limit", str(limit)]
        began = time.monotonic()
        replay = subprocess.run(
            command, env=model.env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
            check=False)
        run.replay_seconds = time.monotonic() - began
        run.replay_line = replay.stdout.strip().splitlines()[-1] if replay.stdout.strip() else ""
        if replay.returncode != 0:
            raise RuntimeError(f"replay failed ({replay.returncode}): "
                               f"{replay.stdout}{replay.stderr}")
        publish_sentinel(kafka, prefix, rows[0][0])
        read_outcomes(kafka, run, len(rows), timeout, services=(features, model))
        read_predictions(kafka, run, len(rows) + 1, timeout=120.0)
    finally:
        model.stop()
        features.stop()
        if not keep_topics:
            delete_topics(kafka, prefix)
    outcomes = [o for by_id in run.outcomes.values() for o in by_id.values()]
    if outcomes:
        first_event = min(o.event_time for o in outcomes)
        run.seconds = (max(o.learned_at for o in outcomes) - first_event).total_seconds()
    return run


def publish_sentinel(kafka: KafkaSettings, prefix: str, fields: dict[str, float]) -> None:
    """One later, unlabelled event: its features release the labels still waiting."""
    client = EventClient.connect(Settings(kafka=kafka, topic_prefix=prefix), "market")
    client.publish_event(Event(event_id=SENTINEL, event_time=datetime.now(UTC),
                               entity={"market": "nsw"}, fields=dict(fields)))
    client.flush()


def exited(service: ServiceProcess) -> bool:
    """Whether the service's process has ended (it should run until we stop it)."""
    process = service._process  # ServiceProcess has no public liveness check
    return process is not None and process.poll() is not None


def read_outcomes(kafka: KafkaSettings, run: StreamRun, count: int, timeout: float,
                  services: tuple[ServiceProcess, ...] = ()) -> None:
    """Outcomes (read_committed) until every model has ``count`` or the deadline passes;
    RuntimeError if one of ``services`` dies meanwhile."""
    consumer = make_consumer(kafka, f"parity-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([f"{run.prefix}outcomes"])
    run.outcomes = {model: {} for model in MODELS}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and any(
                len(run.outcomes[model]) < count for model in MODELS):
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                for service in services:
                    if exited(service):
                        raise RuntimeError(f"{service.module} exited; see {service.log}")
                continue
            outcome = decode(Outcome, message.value())
            by_id = run.outcomes.setdefault(outcome.model, {})
            if outcome.event_id in by_id:
                run.duplicates += 1
            by_id[outcome.event_id] = outcome
    finally:
        consumer.close()


def read_predictions(kafka: KafkaSettings, run: StreamRun, count: int, timeout: float) -> None:
    """When the champion predicted on each event (to check the order of learning)."""
    consumer = make_consumer(kafka, f"parity-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([f"{run.prefix}predictions"])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(run.predicted_at) < count:
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            prediction = decode(Prediction, message.value())
            run.predicted_at[prediction.event_id] = prediction.predicted_at
    finally:
        consumer.close()


# -- comparison -------------------------------------------------------------------------------


def event_id(index: int) -> str:
    """The replay's event id of row ``index`` (0-based): ``elec2-<1-based row number>``."""
    return f"elec2-{index + 1}"


def order_check(run: StreamRun, rows: int, river_delay: int) -> dict[str, int]:
    """Labels learned before the prediction they should follow / after the one they should
    precede (River: label j between questions j + max(d, 1) - 1 and j + max(d, 1))."""
    outcomes = run.outcomes.get(CHAMPION, {})
    step = max(river_delay, 1)
    early = late = unknown = 0
    for j in range(rows):
        outcome = outcomes.get(event_id(j))
        after = run.predicted_at.get(event_id(min(j + step - 1, rows - 1)))
        before = run.predicted_at.get(event_id(j + step) if j + step < rows else SENTINEL)
        if outcome is None or after is None or before is None:
            unknown += 1
            continue
        early += outcome.learned_at <= after
        late += outcome.learned_at >= before
    return {"learned_too_early": early, "learned_too_late": late, "unchecked": unknown}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args()
    delays = [int(part) for part in args.delays.split(",") if part.strip()]
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    wait_for_broker(kafka, timeout=15)
    rows = read_elec2(DATA, args.limit)
    workdir = Path(tempfile.mkdtemp(prefix="parity-elec2-"))
    river_version = version("river")

    results: list[dict[str, Any]] = []
    for delay in delays:
        label_delay = label_delay_for(delay)
        print(f"d={delay}: River in process ...", file=sys.stderr, flush=True)
        river_runs = {model: river_side(rows, model, delay) for model in MODELS}
        print(f"d={delay}: pipeline, replay --label-delay {label_delay} ...", file=sys.stderr,
              flush=True)
        run = stream_side(kafka, rows, label_delay, args.limit, workdir, args.timeout,
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
    print(f"Elec2, {len(rows)} rows; River {river_version}; accuracy in %, "
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
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
