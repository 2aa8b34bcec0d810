"""The running pipeline's side of ``streamml bench parity``: the features and model services
as child processes, the replay, the sentinel event, and the outcomes and predictions read back."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from schemas.events import Event
from schemas.predictions import Outcome, Prediction
from services.cli.bench.stack_run import delete_topics
from services.cli.bench.tools.child_process import exited
from services.cli.bench.tools.parity_setup import (
    CHAMPION,
    DATA,
    MODELS,
    REPO,
    SENTINEL,
    Row,
    event_id,
)
from services.cli.bench.tools.topic_reader import read_topic
from services.cli.process import ServiceProcess
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings, Settings
from services.producer.client import EventClient


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


def stream_side(kafka: KafkaSettings, rows: list[Row], label_delay: int, limit: int | None,
                workdir: Path, spec: Path, timeout: float, keep_topics: bool,
                kafka_extra: str) -> StreamRun:
    """Replay the rows through features + model (on the ``spec`` file) with
    ``--label-delay label_delay``."""
    prefix = f"parity{uuid.uuid4().hex[:8]}-"
    run = StreamRun(prefix=prefix, label_delay=label_delay, logs=workdir)
    ensure_topics(kafka, prefix)
    env = {"STREAMML_TOPIC_PREFIX": prefix,
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_SPEC": str(spec),
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
        replay = subprocess.run(  # noqa: S603 - argv built above
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


def read_outcomes(kafka: KafkaSettings, run: StreamRun, count: int, timeout: float,
                  services: tuple[ServiceProcess, ...] = ()) -> None:
    """Outcomes (read_committed) until every model has ``count`` or the deadline passes;
    RuntimeError if one of ``services`` dies meanwhile."""
    run.outcomes = {model: {} for model in MODELS}

    def take(_read_at: float, outcome: Outcome) -> None:
        by_id = run.outcomes.setdefault(outcome.model, {})
        if outcome.event_id in by_id:
            run.duplicates += 1
        by_id[outcome.event_id] = outcome

    def check_services() -> None:
        for service in services:
            if exited(service, within=0):
                raise RuntimeError(f"{service.module} exited; see {service.log}")

    read_topic(kafka, f"{run.prefix}outcomes", Outcome, take,
               lambda: all(len(run.outcomes[model]) >= count for model in MODELS), timeout,
               group="parity", idle=check_services)


def read_predictions(kafka: KafkaSettings, run: StreamRun, count: int, timeout: float) -> None:
    """When the champion predicted on each event (to check the order of learning)."""

    def take(_read_at: float, prediction: Prediction) -> None:
        run.predicted_at[prediction.event_id] = prediction.predicted_at

    read_topic(kafka, f"{run.prefix}predictions", Prediction, take,
               lambda: len(run.predicted_at) >= count, timeout, group="parity")


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
