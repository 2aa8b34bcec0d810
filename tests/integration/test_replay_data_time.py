"""``streamml replay`` of a file with its own times, on the real broker: the events carry the
file's event times and the labels its label times, and ``--speed`` paces by data time."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from datetime import datetime

import orjson
import pytest

from services.common.settings import KafkaSettings
from tests.integration.conftest import REPO, read_topic

pytestmark = pytest.mark.integration

FIXTURE = REPO / "tests/fixtures/meter.csv"
SPEED = 36_000.0  # an hour of data in 0.1 s: the fixture's 7 hours take 0.7 s


def test_a_timed_file_keeps_its_event_and_label_times_on_the_topics(
    kafka: KafkaSettings, topics: str
) -> None:
    with FIXTURE.open(newline="") as file:
        rows = {row["id"]: row for row in csv.DictReader(file)}
    env = {**os.environ, "STREAMML_TOPIC_PREFIX": topics,
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    command = [sys.executable, "-m", "services.cli", "replay", str(FIXTURE),
               "--spec", str(REPO / "tests/fixtures/meter.toml"), "--speed", str(SPEED),
               "--quiet"]
    started = time.monotonic()
    replayed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"replayed {len(rows)} events and {len(rows)} labels" in replayed.stdout
    assert replayed.stdout.strip().endswith("5.0 h of data time"), replayed.stdout
    assert elapsed >= 7 * 3600 / SPEED

    events = read_topic(kafka, f"{topics}events", lambda got: len(got) >= len(rows), timeout=60)
    labels = read_topic(kafka, f"{topics}labels", lambda got: len(got) >= len(rows), timeout=60)
    event_times = {m["event_id"]: m["event_time"]
                   for m in (orjson.loads(message.value() or b"") for message in events)}
    label_times = {m["event_id"]: m["label_time"]
                   for m in (orjson.loads(message.value() or b"") for message in labels)}
    assert set(event_times) == set(label_times) == set(rows)
    for event_id, row in rows.items():
        assert _moment(event_times[event_id]) == _moment(row["read_at"])
        assert _moment(label_times[event_id]) == _moment(row["confirmed_at"])


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
