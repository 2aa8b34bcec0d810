"""Kill each consuming service in turn during an Elec2 replay at 1,000 events/s and let the
supervisor restart it: every event still gets exactly one prediction and every label is learned
exactly once (counted from the topics). With SIGTERM instead of SIGKILL, every service also stops
within 10 s.

The replay publishes every row as an event and its label 48 rows later; the spec has one model, so
a complete run holds exactly one prediction and one outcome per row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.predictions import Outcome, Prediction
from services.cli import stack
from services.cli.demo import scrape
from services.common.settings import KafkaSettings
from tests.chaos.stack import RunningStack, consumers_running
from tests.integration.conftest import REPO, read_topic, topic_size, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ELEC2 = REPO / "data" / "elec2.csv"
ROWS = 15_000
RATE = 1_000
VICTIMS = ("features", "model", "drift", "metrics-sink")
STOP_BOUND_SECONDS = 10.0


@pytest.fixture
def pipeline(kafka: KafkaSettings, tmp_path: Path) -> Iterator[RunningStack]:
    """features, model, drift and metrics-sink under a supervisor, on a fresh prefix."""
    # The last 48 labels have no later event to release them: learn them after 5 s idle.
    with consumers_running(kafka, tmp_path / "home", "elec2", port_offset=1600, tag="k",
                           settings={"STREAMML_MODEL__LABEL_HOLD_SECONDS": "5"}) as running:
        yield running


def service_pid(home: Path, name: str) -> int:
    return int(stack.status(home)["services"][name]["pid"])


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie its parent has not reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


def replay(pipeline: RunningStack) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "replay", str(ELEC2), "--spec", "elec2",
         "--label-delay", "48", "--limit", str(ROWS), "--rate", str(RATE), "--quiet"],
        env={**os.environ, **pipeline.env, "STREAMML_METRICS_PORT": "0"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def strike(pipeline: RunningStack, name: str, how: signal.Signals) -> float:
    """Send ``how`` to service ``name``; return the seconds it took to exit. Waits until the
    supervisor has restarted it and it reports healthy again."""
    pid = service_pid(pipeline.home, name)
    os.kill(pid, how)
    sent = time.monotonic()
    wait_for(lambda: gone(pid), timeout=60, what=f"{name} (pid {pid}) to exit after {how.name}")
    took = time.monotonic() - sent

    def restarted() -> bool:
        service = stack.status(pipeline.home)["services"][name]
        return int(service["pid"]) != pid and bool(service["healthy"])

    wait_for(restarted, timeout=90, what=f"{name} to be restarted and healthy")
    return took


def assert_nothing_lost_or_doubled(kafka: KafkaSettings, prefix: str) -> None:
    predictions = [decode(Prediction, m.value()).event_id for m in read_topic(
        kafka, f"{prefix}predictions", lambda got: len(got) >= ROWS, timeout=300)]
    outcomes = [decode(Outcome, m.value()).event_id for m in read_topic(
        kafka, f"{prefix}outcomes", lambda got: len(got) >= ROWS, timeout=300)]
    doubled_predictions = sum(n - 1 for n in Counter(predictions).values())
    doubled_outcomes = sum(n - 1 for n in Counter(outcomes).values())
    prediction_count = topic_size(kafka, f"{prefix}predictions")
    outcome_count = topic_size(kafka, f"{prefix}outcomes")
    print(f"events {ROWS}: predictions {prediction_count} ({len(set(predictions))} distinct, "
          f"{doubled_predictions} doubled), outcomes {outcome_count} ({len(set(outcomes))} "
          f"distinct, {doubled_outcomes} doubled)")
    assert len(set(predictions)) == ROWS, "an event got no prediction"
    assert prediction_count == ROWS, "an event was predicted twice"
    assert len(set(outcomes)) == ROWS, "a label was lost"
    assert outcome_count == ROWS, "a label was learned twice"


def lag_drains(pipeline: RunningStack, name: str) -> bool:
    """True when service ``name`` reports no consumer lag on any of its topics."""
    port = int(stack.status(pipeline.home)["services"][name]["port"])
    lags = {k: v for k, v in scrape(port).items() if k.startswith("streamml_consumer_lag")}
    return bool(lags) and all(value == 0 for value in lags.values())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_each_service_killed_in_turn_loses_and_doubles_nothing(
    pipeline: RunningStack, kafka: KafkaSettings, how: signal.Signals
) -> None:
    publisher = replay(pipeline)
    try:
        stop_times = {}
        for name in VICTIMS:
            time.sleep(2.0)
            stop_times[name] = strike(pipeline, name, how)
        output, _ = publisher.communicate(timeout=240)
    finally:
        if publisher.poll() is None:
            publisher.kill()
    assert publisher.returncode == 0, output
    print("\n" + "  ".join(f"{name} exited {took:.2f}s after {how.name}"
                            for name, took in stop_times.items()))
    assert_nothing_lost_or_doubled(kafka, pipeline.prefix)
    wait_for(lambda: lag_drains(pipeline, "drift") and lag_drains(pipeline, "metrics-sink"),
             timeout=120, what="drift and metrics-sink to catch up after their restarts")
    if how == signal.SIGTERM:
        slow = {name: took for name, took in stop_times.items() if took > STOP_BOUND_SECONDS}
        assert not slow, f"services took more than {STOP_BOUND_SECONDS:.0f}s to stop: {slow}"
