"""Anomaly detection end to end on the real broker: ``streamml up --no-producer --spec sensors``
and ``streamml produce --scenario sensors``. Every reading gets one prediction carrying its
anomaly score; a few are flagged; the confirmed incidents come back as labels and the metrics
sink reports precision and recall of the flags, the flagged share and the score quantiles.

The spec is the built-in ``sensors`` one with a 1 s feedback window (the stream spans 4 s of
event time) and a short warm-up, so windows close and flags start within the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.predictions import Outcome, Prediction
from schemas.spec import BUILTIN_DIR
from services.cli import stack
from services.cli.demo import scrape
from services.common.settings import KafkaSettings
from tests.integration.conftest import read_topic, wait_for

pytestmark = pytest.mark.integration

PORT_OFFSET = 1900
EVENTS = 4000
SINK_PORT = 9105 + PORT_OFFSET


@pytest.fixture
def running(kafka: KafkaSettings, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path / "home"
    home.mkdir()
    spec = tmp_path / "sensors-fast.toml"
    text = (BUILTIN_DIR / "sensors.toml").read_text()
    assert "feedback_window_seconds = 60" in text and "warmup = 500" in text
    spec.write_text(text.replace("feedback_window_seconds = 60", "feedback_window_seconds = 1")
                    .replace("warmup = 500", "warmup = 300"))
    prefix = f"an{uuid.uuid4().hex[:8]}-"
    env = {**os.environ, "STREAMML_HOME": str(home), "STREAMML_TOPIC_PREFIX": prefix,
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_SPEC": str(spec)}
    started = subprocess.run(
        [sys.executable, "-m", "services.cli", "up", "--no-producer", "--no-prometheus",
         "--spec", str(spec), "--port-offset", str(PORT_OFFSET)],
        env=env, capture_output=True, text=True, timeout=180, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield prefix, env
    finally:
        stack.down(home)


def test_readings_are_scored_flagged_and_judged_by_the_incidents_that_come_back(
    kafka: KafkaSettings, running: tuple[str, dict[str, str]]
) -> None:
    prefix, env = running
    produced = subprocess.run(
        [sys.executable, "-m", "services.cli", "produce", "--scenario", "sensors",
         "--max-events", str(EVENTS), "--rate", "1000", "--label-delay", "uniform:0.1:0.5"],
        env=env, capture_output=True, text=True, timeout=180, check=False)
    assert produced.returncode == 0, produced.stdout + produced.stderr
    messages = read_topic(kafka, f"{prefix}predictions",
                          lambda got: len(got) >= EVENTS, timeout=120)
    predictions = [decode(Prediction, m.value()) for m in messages]
    assert len({p.event_id for p in predictions}) == len(predictions) == EVENTS
    assert all(isinstance(p.score, float) and p.probabilities is None for p in predictions)
    flagged = sum(bool(p.prediction) for p in predictions)
    print(f"{flagged} of {EVENTS} readings flagged")
    assert 0 < flagged < EVENTS * 0.05

    outcomes = [decode(Outcome, m.value()) for m in read_topic(
        kafka, f"{prefix}outcomes", lambda got: len(got) >= EVENTS, timeout=120)]
    champion = [o for o in outcomes if o.model == "hst"]
    incidents = [o for o in champion if o.label is True and not o.timed_out]
    assert incidents, "confirmed incidents must come back as outcomes"
    assert all(o.label_probability is None for o in champion)

    def sink_has(name: str) -> bool:
        return any(key.startswith(name) for key in scrape(SINK_PORT))

    wait_for(lambda: sink_has("streamml_rolling_recall_ratio"), 60, "recall in the sink")
    metrics = scrape(SINK_PORT)
    recall = metrics['streamml_rolling_recall_ratio{model=hst}']
    share = metrics['streamml_positive_prediction_ratio{model=hst}']
    print(f"sink: recall {recall:.3f}, flagged share {share:.4f}, "
          f"precision {metrics.get('streamml_rolling_precision_ratio{model=hst}')}, "
          f"score p99 {metrics.get('streamml_prediction_score_quantile{model=hst,q=0.99}')}")
    assert 0.0 <= recall <= 1.0 and 0.0 < share < 0.05
    assert 'streamml_prediction_score_quantile{model=hst,q=0.99}' in metrics
