"""The services under test: started with ``streamml up``'s machinery under a fresh topic prefix
and free ports, watched from outside while they run, stopped and cleaned up afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.cli import stack
from services.cli.bench.scrape import by_label, cpu_seconds, rss_bytes, scrape, total
from services.cli.supervisor import METRICS_PORTS, PREDICTOR_PORT
from services.common.kafka import ensure_topics, make_admin
from services.common.settings import KafkaSettings, TopicSettings

SERVICES = stack.CONSUMERS
"""features, model, drift, metrics-sink."""


def free_port_offset(first: int = 1000, last: int = 9000, step: int = 100) -> int:
    """The first offset at which every service's metrics port is free."""
    for offset in range(first, last, step):
        if all(stack.port_is_free(METRICS_PORTS[name] + offset) for name in SERVICES):
            return offset
    raise RuntimeError(f"no free metrics ports at offsets {first}..{last}")


@dataclass
class RunningStack:
    """The consumers of one benchmark run: their home folder, topic prefix and ports."""

    home: Path
    prefix: str
    port_offset: int

    def port(self, service: str) -> int:
        """The metrics port of ``service`` (``predictor-<i>`` for replica i)."""
        if service.startswith("predictor-"):
            return PREDICTOR_PORT + int(service.split("-")[1]) + self.port_offset
        return METRICS_PORTS[service] + self.port_offset

    def pids(self) -> dict[str, int]:
        """Pid of each running service (a restarted one has a new pid)."""
        report = stack.status(self.home)
        return {name: int(entry["pid"]) for name, entry in report["services"].items()}

    def restarts(self) -> dict[str, int]:
        report = stack.status(self.home)
        return {name: int(entry["restarts"]) for name, entry in report["services"].items()}


def start_stack(kafka: KafkaSettings, spec: str, prefix: str, home: Path,
                timeout: float = 180.0, extra_env: dict[str, str] | None = None,
                predictors: int = 0, partitions: int | None = None) -> RunningStack:
    """Create the prefix's topics (``partitions`` each where the catalogue has several) and
    start the four consumers (and ``predictors`` replicas: the scaled layout) until all are
    healthy; ``extra_env`` adds (or overrides) settings of every service."""
    ensure_topics(kafka, prefix, topics=TopicSettings(partitions=partitions))
    offset = free_port_offset()
    env = {"STREAMML_TOPIC_PREFIX": prefix, "STREAMML_SPEC": spec,
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "STREAMML_LOG_LEVEL": "WARNING",
           "F_DATADIR": str(home / "faust-{conf.name}"),  # faust's files, out of the repo
           **(extra_env or {})}
    if partitions is not None:
        env["STREAMML_TOPICS__PARTITIONS"] = str(partitions)
    plan = stack.plan_stack(home, env, with_producer=False, port_offset=offset,
                            predictors=predictors)
    stack.up(plan, timeout=timeout)
    return RunningStack(home, prefix, offset)


def stop_stack(running: RunningStack) -> None:
    """Stop the services (SIGTERM, as ``streamml down``)."""
    stack.down(running.home)


def delete_topics(kafka: KafkaSettings, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (faust's internal ones included)."""
    admin = make_admin(kafka)
    names = [name for name in admin.list_topics(timeout=30).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, request_timeout=30).values():
            future.result()
    return names


class Sampler:
    """Samples the stack every ``interval`` seconds on a thread: events published (from
    ``published()``), predictions made, consumer lag per service, resident memory per service
    and of the broker. ``samples`` rows: ``t`` (seconds since :meth:`start`), ``published``,
    ``predicted``, ``backlog`` (published - predicted), ``lag``, ``rss`` and ``cpu`` (CPU seconds
    used so far) per name, and the
    size of the model's last full checkpoint, ``checkpoint_bytes``."""

    def __init__(self, running: RunningStack, published: Callable[[], int],
                 broker_pid: int | None, interval: float = 1.0) -> None:
        self.running = running
        self.published = published
        self.broker_pid = broker_pid
        self.interval = interval
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = time.monotonic()
        self._pids: dict[str, int] = {}

    def start(self) -> Sampler:
        """Take a first sample now, then one every ``interval`` on a daemon thread."""
        self._began = time.monotonic()
        self._pids = self.running.pids()
        self.samples.append(self.sample())
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling, take a last sample, return them all."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.samples.append(self.sample())
        return self.samples

    def latest_backlog(self) -> float:
        return float(self.samples[-1]["backlog"]) if self.samples else 0.0

    def sample(self) -> dict[str, Any]:
        """One sample now (also usable without the thread)."""
        published = self.published()
        lag: dict[str, float] = {}
        predicted = checkpoint = float("nan")
        for service in SERVICES:
            try:
                samples = scrape(self.running.port(service), timeout=2.0)
            except OSError:
                lag[service] = float("nan")
                continue
            lag[service] = sum(by_label(samples, "streamml_consumer_lag_messages",
                                        "topic").values())
            if service == "model":
                predicted = total(samples, "streamml_model_predictions_total")
                checkpoint = total(samples, "streamml_model_checkpoint_full_bytes")
        pids = dict(self._pids)
        if self.broker_pid is not None:
            pids["broker"] = self.broker_pid
        rss = {name: rss_bytes(pid) for name, pid in pids.items()}
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        return {"t": round(time.monotonic() - self._began, 3), "published": published,
                "predicted": predicted, "backlog": published - predicted, "lag": lag,
                "rss": rss, "cpu": cpu, "checkpoint_bytes": checkpoint}

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self.sample())
