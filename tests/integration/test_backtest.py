"""``streamml backtest`` on the real broker: a recording published on a fresh prefix is read back
to its end, replayed through a candidate spec, and compared with the outcomes it recorded.

The recording (``tests/backtest_stream.py``: Elec2-shaped events with a concept drift halfway,
labels three rows late) goes to ``events`` and ``labels``; its "recorded" outcomes are those of
the elec2 spec's own replay, published to ``outcomes`` (a live run records its champion's there).
Backtesting the elec2 spec itself must then agree on every event, and a candidate with another
estimator must be compared on the same events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from schemas.codec import encode
from schemas.spec import load_spec, resolve_spec_path
from services.cli.backtest_replay import replay
from services.common.kafka import make_producer
from services.common.settings import KafkaSettings
from tests.backtest_stream import recording

pytestmark = pytest.mark.integration


def backtest(kafka: KafkaSettings, prefix: str, spec: str, out: Path) -> dict[str, object]:
    env = {**os.environ, "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "backtest", "--prefix", prefix, "--spec", spec,
         "--out", str(out), "--timeout", "120"],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    print(done.stdout)
    assert done.returncode == 0, done.stderr
    document: dict[str, object] = orjson.loads((out / "backtest.json").read_bytes())
    assert (out / "backtest.html").read_text().startswith("<!doctype html>")
    return document


def test_a_recorded_run_is_backtested_against_its_own_outcomes_and_a_candidate(
    kafka: KafkaSettings, topics: str, tmp_path: Path
) -> None:
    events, labels = recording()
    recorded = replay(load_spec("elec2"), events, labels)
    producer = make_producer(kafka)
    for event in events:
        producer.produce(f"{topics}events", key=b"nsw", value=encode(event))
    for label in labels:
        producer.produce(f"{topics}labels", key=label.event_id.encode(), value=encode(label))
    for outcome in recorded.outcomes:
        producer.produce(f"{topics}outcomes", key=outcome.event_id.encode(),
                         value=encode(outcome))
    assert producer.flush(30) == 0

    same = backtest(kafka, topics, "elec2", tmp_path / "same")
    assert (same["events"], same["labels"]) == (len(events), len(labels))
    assert same["statistic"] == {"only_recorded_right": 0, "only_candidate_right": 0}
    assert same["recorded"]["accuracy"] == same["candidate"]["accuracy"]  # type: ignore[index]

    candidate_spec = tmp_path / "elec2-tree.toml"
    candidate_spec.write_text(resolve_spec_path("elec2")
                              .read_text().replace('estimator = "linear_model.LogisticRegression"',
                                                   'estimator = "tree.HoeffdingTreeClassifier"')
                              .replace("scale = true\n", ""))
    other = backtest(kafka, topics, str(candidate_spec), tmp_path / "tree")
    assert other["estimators"] == {"logreg": "tree.HoeffdingTreeClassifier"}
    assert other["events"] == len(events)
    recorded_side, candidate_side = other["recorded"], other["candidate"]
    assert isinstance(recorded_side, dict) and isinstance(candidate_side, dict)
    # Both are scored on the events both answered (a tree answers nothing before it learns).
    assert recorded_side["judged"] == len(events)
    assert recorded_side["scored"] == candidate_side["scored"] == candidate_side["judged"]
    assert candidate_side["accuracy"] != recorded_side["accuracy"]
    assert other["p_value"] is not None
