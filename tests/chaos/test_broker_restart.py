"""Restart the broker in the middle of an Elec2 replay at 1,000 events/s, once stopped cleanly
(SIGTERM) and once killed (SIGKILL): the replay still publishes every event (its producer is
idempotent with ``acks=all`` and retries over the outage), every event is in ``events`` exactly
once and gets exactly one prediction and one outcome (counted from the topics), and features,
model, drift and metrics-sink reconnect by themselves: the supervisor restarts none of them.

The broker is this test's own (port 9492, storage under pytest's tmp_path, jars from the
project's ``.cache``), never the shared one; it restarts on the same storage, and the teardown
stops it. The replay publishes every row as an event and its label 48 rows later; the spec has
one model, so a complete run holds exactly one prediction and one outcome per row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from schemas.codec import decode
from schemas.events import Event
from schemas.predictions import Outcome, Prediction
from services.cli import stack
from services.cli.demo import scrape
from services.cli.local_kafka import BrokerPaths, LocalBroker
from services.cli.local_kafka.process import alive
from services.common.kafka import make_consumer
from services.common.settings import KafkaSettings
from tests.chaos.stack import RunningStack, consumers_running, ids_in
from tests.integration.conftest import REPO, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ELEC2 = REPO / "data" / "elec2.csv"
ROWS = 12_000
RATE = 1_000
PORT = 9492
STRIKE_AFTER_EVENTS = 3_000
"""The broker goes down once this many events are in ``events`` (3 s into the replay)."""
DOWN_SECONDS = 5.0
"""How long the broker stays down before it is started again (its start-up comes on top)."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of this test's own, stopped (SIGKILL if it lingers) at the end."""
    broker = LocalBroker(BrokerPaths(tmp_path / "kafka"), REPO / ".cache", port=PORT,
                         controller_port=PORT + 1, heap="512m")
    try:
        started = time.monotonic()
        broker.start(timeout=180)
        print(f"\nbroker {broker.bootstrap_servers} up in {time.monotonic() - started:.1f}s")
        yield broker
    finally:
        broker.stop(timeout=20)


@pytest.fixture
def pipeline(broker: LocalBroker, tmp_path: Path) -> Iterator[RunningStack]:
    """features, model, drift and metrics-sink under a supervisor, on ``broker``."""
    # The last 48 labels have no later event to release them: learn them after 5 s idle.
    with consumers_running(broker.client_settings(), tmp_path / "home", "elec2",
                           port_offset=1700, tag="b", timeout=180,
                           settings={"STREAMML_MODEL__LABEL_HOLD_SECONDS": "5"}) as running:
        yield running


def replay(pipeline: RunningStack, log: Path) -> subprocess.Popen[bytes]:
    """The replay command, its output in ``log``: a pipe nobody reads during the outage would
    fill with the client's connection errors and stall it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "replay", str(ELEC2), "--spec", "elec2",
             "--label-delay", "48", "--limit", str(ROWS), "--rate", str(RATE), "--quiet"],
            env={**os.environ, **pipeline.env, "STREAMML_METRICS_PORT": "0"},
            stdout=out, stderr=subprocess.STDOUT,
        )


def services(pipeline: RunningStack) -> dict[str, dict[str, Any]]:
    return dict(stack.status(pipeline.home)["services"])


def wait_for_records(kafka: KafkaSettings, topic: str, count: int, timeout: float = 120.0) -> int:
    """Wait until ``topic`` holds at least ``count`` records (by its high watermarks)."""
    consumer = make_consumer(kafka, f"watcher-{uuid.uuid4().hex[:8]}")
    try:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                       for p in partitions)
            if ends >= count:
                return ends
            time.sleep(0.05)
        raise AssertionError(f"{topic} did not reach {count} records within {timeout:.0f}s")
    finally:
        consumer.close()


def take_down(broker: LocalBroker, how: signal.Signals) -> float:
    """Stop the broker with ``how`` (SIGTERM: its own clean shutdown); the seconds it took."""
    pid = broker.pid
    assert pid is not None, "the broker must be running before it is taken down"
    sent = time.monotonic()
    if how == signal.SIGTERM:
        assert broker.stop(timeout=60)
    else:
        os.kill(pid, how)
    wait_for(lambda: not alive(pid), timeout=60, what=f"the broker (pid {pid}) to exit")
    return time.monotonic() - sent


def check_exactly_once(name: str, ids: Counter[str], size: int) -> list[str]:
    """Print the counts of one topic; the problems found (missing or doubled records)."""
    doubled = sum(n - 1 for n in ids.values())
    print(f"{name}: {size} records, {len(ids)} distinct events, {doubled} doubled")
    problems = []
    if len(ids) != ROWS:
        problems.append(f"{name}: {ROWS - len(ids)} of {ROWS} events missing")
    if size != ROWS:
        problems.append(f"{name}: {size} records for {ROWS} events")
    return problems


def lag_drains(pipeline: RunningStack, name: str) -> bool:
    """True when service ``name`` reports no consumer lag on any of its topics."""
    port = int(services(pipeline)[name]["port"])
    try:
        metrics = scrape(port)
    except OSError:
        return False
    lags = {k: v for k, v in metrics.items() if k.startswith("streamml_consumer_lag")}
    return bool(lags) and all(value == 0 for value in lags.values())


@pytest.mark.timeout(420)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_broker_restart_mid_stream_loses_nothing_and_services_reconnect(
    broker: LocalBroker, pipeline: RunningStack, how: signal.Signals, tmp_path: Path
) -> None:
    kafka = broker.client_settings()
    before = services(pipeline)
    log = tmp_path / "replay.log"
    publisher = replay(pipeline, log)
    try:
        launched = time.monotonic()
        events_topic = f"{pipeline.prefix}events"
        wait_for_records(kafka, events_topic, 1)
        started = time.monotonic()
        in_topic = wait_for_records(kafka, events_topic, STRIKE_AFTER_EVENTS)
        down_at = time.monotonic()
        stop_took = take_down(broker, how)
        time.sleep(DOWN_SECONDS)
        broker.start(timeout=180)
        back_at = time.monotonic()
        publisher.wait(timeout=240)
        replay_done_at = time.monotonic()
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
    print(f"\nthe replay's first event came {started - launched:.1f}s after its launch; "
          f"{how.name} to the broker {down_at - started:.1f}s later, with {in_topic} events in "
          f"the topic; the broker exited after {stop_took:.1f}s and answered again "
          f"{back_at - down_at:.1f}s after the {how.name} (the outage); the replay finished "
          f"{replay_done_at - back_at:.1f}s after that ({replay_done_at - started:.1f}s in all)")
    output = log.read_text(errors="replace")
    summary = output.strip().splitlines()[-1:] or ["(no output)"]
    print(f"replay (exit {publisher.returncode}): {summary[0]}")
    assert publisher.returncode == 0, f"the replay gave up over the outage:\n{output[-3000:]}"

    caught_up: dict[str, float] = {}

    def mark(topic: str) -> Callable[[], object]:
        return lambda: caught_up.setdefault(topic, time.monotonic() - back_at)

    events = ids_in(kafka, events_topic, lambda raw: decode(Event, raw).event_id, ROWS)
    predictions = ids_in(kafka, f"{pipeline.prefix}predictions",
                         lambda raw: decode(Prediction, raw).event_id, ROWS,
                         on_complete=mark("predictions"))
    outcomes = ids_in(kafka, f"{pipeline.prefix}outcomes",
                      lambda raw: decode(Outcome, raw).event_id, ROWS,
                      on_complete=mark("outcomes"))
    wait_for(lambda: lag_drains(pipeline, "drift") and lag_drains(pipeline, "metrics-sink"),
             timeout=120, what="drift and metrics-sink to catch up after the broker restart")
    caught_up["drift and metrics-sink lag 0"] = time.monotonic() - back_at
    print("caught up after the broker answered again: " + ", ".join(
        f"{what} {seconds:.1f}s" for what, seconds in caught_up.items()))
    problems = [*check_exactly_once("events", *events),
                *check_exactly_once("predictions", *predictions),
                *check_exactly_once("outcomes", *outcomes)]

    after = services(pipeline)
    print("services: " + "; ".join(
        f"{name} pid {before[name]['pid']} -> {after[name]['pid']}, restarts "
        f"{after[name]['restarts']}, healthy {after[name]['healthy']}" for name in before))
    restarted = {name: after[name]["restarts"] for name in before
                 if after[name]["pid"] != before[name]["pid"] or after[name]["restarts"]}
    unhealthy = [name for name in before if not after[name]["healthy"]]
    assert not problems, "; ".join(problems)
    assert not restarted, f"the supervisor had to restart {restarted}; see {pipeline.home}/logs"
    assert not unhealthy, f"unhealthy after the broker restart: {unhealthy}"
