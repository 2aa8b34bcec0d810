"""``streamml replay`` on the real broker: the whole Elec2 file lands on the topics, one event and
one label per row, and the labels answer exactly the events."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest
from confluent_kafka import Message

from services.common.settings import KafkaSettings
from tests.integration.conftest import REPO, read_topic, topic_size

pytestmark = pytest.mark.integration

ROWS = 45_312


def event_ids(messages: list[Message]) -> set[str]:
    ids = set()
    for message in messages:
        value = message.value()
        assert value is not None
        ids.add(orjson.loads(value)["event_id"])
    return ids


def test_replaying_elec2_puts_every_row_on_events_and_labels(
    kafka: KafkaSettings, topics: str
) -> None:
    env = {
        **os.environ,
        "STREAMML_TOPIC_PREFIX": topics,
        "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
    }
    command = [sys.executable, "-m", "services.cli", "replay", "data/elec2.csv",
               "--spec", "elec2", "--label-delay", "48", "--quiet"]
    started = time.monotonic()
    replayed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=240, check=False)
    elapsed = time.monotonic() - started
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout.startswith(
        f"replayed {ROWS} events and {ROWS} labels from data/elec2.csv in "
    ), replayed.stdout
    print(f"\n{replayed.stdout.strip()} ({elapsed:.1f}s for the whole command, "
          f"{ROWS / elapsed:.0f} events/s)")

    assert topic_size(kafka, f"{topics}events") == ROWS
    assert topic_size(kafka, f"{topics}labels") == ROWS
    events = read_topic(kafka, f"{topics}events", lambda got: len(got) >= ROWS, timeout=120)
    labels = read_topic(kafka, f"{topics}labels", lambda got: len(got) >= ROWS, timeout=120)
    assert len(events) == len(labels) == ROWS
    sent = event_ids(events)
    assert len(sent) == ROWS
    assert event_ids(labels) == sent
    assert sent == {f"elec2-{number}" for number in range(1, ROWS + 1)}
