"""Measurements of the running pipeline: rate steps, the sustained maximum, latency runs.

A *step* offers one rate for a window and judges, from samples taken every second, whether the
backlog (events published - predictions made) and every service's consumer lag stayed bounded
(:func:`~services.cli.bench.stats.judge_lag`); then it waits for the pipeline to drain. The
sustained maximum is the highest rate that passed (:func:`~services.cli.bench.stats.next_rate`
picks the rates). A *latency run* publishes at one rate with every publish time noted and reads
the predictions back as they appear (read_uncommitted and read_committed) and the champion's
outcomes (``learned_at``).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.spec import PipelineSpec
from services.cli.bench.broker_requests import per_event, request_counts
from services.cli.bench.profiling import start_recording, summarize_file
from services.cli.bench.scrape import load_average
from services.cli.bench.stack_run import SERVICES, RunningStack, Sampler
from services.cli.bench.stats import judge_lag, next_rate, summarize
from services.cli.bench.wire import (
    PacedPublisher,
    WindowPublished,
    end_offsets,
    read_learned,
    start_reader,
)
from services.cli.bench.workload import event_id, window_prefix
from services.common.settings import KafkaSettings
from services.features.pipeline import plan_stages

BACKLOG_SECONDS = 1.0
"""A sustained rate leaves at most this many seconds of events waiting for their prediction."""
ABORT_BACKLOG_SECONDS = 5.0
"""A window stops early once its backlog exceeds this many seconds of the offered rate."""


@dataclass(frozen=True)
class Plan:
    """How long each measurement lasts and which rates the search tries."""

    step_seconds: float
    latency_seconds: float
    latency_warmup_seconds: float
    drain_timeout: float
    refinements: int
    ladder: tuple[float, ...]


class PipelineBench:
    """Drives one running stack with one publisher; every window gets its own id range."""

    def __init__(self, kafka: KafkaSettings, running: RunningStack, publisher: PacedPublisher,
                 run: str, broker_pid: int | None, spec: PipelineSpec) -> None:
        self._kafka = kafka
        self._fan_in = fan_in(spec)
        self._running = running
        self._publisher = publisher
        self._run = run
        self._broker_pid = broker_pid
        self._window = 0

    def _sampler(self) -> Sampler:
        return Sampler(self._running, lambda: self._publisher.events_published,
                       self._broker_pid).start()

    def _next_window(self) -> int:
        self._window += 1
        return self._window

    def warm_up(self, rate: float, seconds: float, timeout: float = 180.0) -> dict[str, Any]:
        """Publish a little and wait until every event has its prediction (partitions assigned,
        models built)."""
        published = self._publisher.publish(self._next_window(), rate, seconds)
        drained = self.drain(rate, timeout)
        return {"rate": rate, "events": published.events, "drained": drained}

    def drain(self, rate: float, timeout: float) -> dict[str, Any]:
        """Wait until the backlog and every service's lag are small again."""
        sampler = Sampler(self._running, lambda: self._publisher.events_published,
                          self._broker_pid)
        began = time.monotonic()
        limit = max(50.0, 0.5 * rate)
        while time.monotonic() - began < timeout:
            sample = sampler.sample()
            lags = [value for value in sample["lag"].values() if value == value]
            if sample["backlog"] <= limit and all(lag <= limit for lag in lags):
                return {"seconds": round(time.monotonic() - began, 2), "drained": True}
            time.sleep(0.5)
        return {"seconds": round(time.monotonic() - began, 2), "drained": False}

    def step(self, rate: float, plan: Plan) -> dict[str, Any]:
        """Offer ``rate`` for ``plan.step_seconds``; judge lag; drain."""
        load_before = load_average()
        requests_before = request_counts(self._broker_pid) if self._broker_pid else None
        sampler = self._sampler()
        abort = max(2000.0, ABORT_BACKLOG_SECONDS * rate)
        published = self._publisher.publish(
            self._next_window(), rate, plan.step_seconds,
            stop=lambda: sampler.latest_backlog() > abort)
        samples = sampler.stop()
        requests_after = request_counts(self._broker_pid) if self._broker_pid else None
        result = judge_step(rate, published, samples, self._fan_in)
        # Over the window, as published: the requests of the window's own backlog, served
        # while it drains afterwards, are not counted (a rate that was kept leaves none).
        result["requests_per_event"] = per_event(requests_before, requests_after,
                                                 published.events)
        result["load_before"], result["load_after"] = load_before, load_average()
        result["drain"] = self.drain(rate, plan.drain_timeout)
        return result

    def search(self, plan: Plan, log: Any = None) -> dict[str, Any]:
        """Steps chosen by :func:`next_rate` until it is done; the highest passing rate."""
        history: list[tuple[float, bool]] = []
        steps = []
        while (rate := next_rate(history, plan.ladder, plan.refinements)) is not None:
            result = self.step(rate, plan)
            steps.append(result)
            history.append((rate, bool(result["sustained"])))
            if log is not None:
                log(f"  {rate:.0f} events/s: {'bounded' if result['sustained'] else 'not'}"
                    f" ({result['predictions_per_second']:.0f} predictions/s)")
            if not result["drain"]["drained"]:
                break
        best = max((rate for rate, ok in history if ok), default=None)
        at_best = next((s for s in steps if s["rate"] == best), None)
        return {"sustained_max": best, "steps": steps,
                "predictions_per_second_at_max": (None if at_best is None
                                                  else at_best["predictions_per_second"])}

    def latency(self, rate: float, plan: Plan) -> dict[str, Any]:
        """Publish at ``rate`` with publish times noted; the latency percentiles of the events
        after the warm-up part of the window."""
        window = self._next_window()
        prefix = window_prefix(self._run, window)
        total_seconds = plan.latency_warmup_seconds + plan.latency_seconds
        expected = int(rate * total_seconds)
        config = self._kafka.client_config()
        topic = f"{self._running.prefix}predictions"
        outcomes = f"{self._running.prefix}outcomes"
        outcome_offsets = end_offsets(config, outcomes)
        offsets = end_offsets(config, topic)
        grace = max(30.0, 2 * total_seconds)
        files = {isolation: Path(tempfile.mkstemp(prefix=f"bench-{isolation}-")[1])
                 for isolation in ("read_uncommitted", "read_committed")}
        readers = {isolation: start_reader(config, topic, offsets, isolation, prefix, expected,
                                           total_seconds + grace, path)
                   for isolation, path in files.items()}
        load_before = load_average()
        sampler = self._sampler()
        abort = max(2000.0, ABORT_BACKLOG_SECONDS * rate)
        published = self._publisher.publish(window, rate, total_seconds, record=True,
                                             stop=lambda: sampler.latest_backlog() > abort)
        samples = sampler.stop()
        drain = self.drain(rate, plan.drain_timeout)
        read = {isolation: reader.result(grace + 30) for isolation, reader in readers.items()}
        learned = read_learned(config, outcomes, outcome_offsets, prefix,
                               len(published.label_times), grace)
        skip = int(rate * plan.latency_warmup_seconds)
        measured = {event_id(self._run, window, index) for index in range(skip, published.events)}
        result = latency_figures(published, measured, read, learned)
        result.update(judge_step(rate, published, samples, self._fan_in))
        result["load_before"], result["load_after"] = load_before, load_average()
        result["drain"] = drain
        return result


def fan_in(spec: PipelineSpec) -> dict[str, float]:
    """Messages each service reads per event published: what its lag is measured in.

    features: the event and its hop through each entity stage's topic; model: the vector and the
    label; drift: the vector and one outcome per model; metrics-sink: the prediction and one
    outcome per model. (A service reading the model's transactional outputs sees a whole
    second of them become readable at each commit, so its lag jumps by that much at once.)
    """
    models = 1 + len(spec.models.challengers)
    return {"features": 1.0 + len(plan_stages(spec)), "model": 2.0, "drift": 1.0 + models,
            "metrics-sink": 1.0 + models}


def judge_step(rate: float, published: WindowPublished, samples: list[dict[str, Any]],
               messages_per_event: dict[str, float] | None = None) -> dict[str, Any]:
    """The verdict of one window from its samples: bounded backlog and lags, rate achieved.

    The backlog (events not yet predicted) may end at most ``BACKLOG_SECONDS`` of the rate
    behind; each service's lag is judged against its own message rate, ``rate`` times its
    ``messages_per_event`` (:func:`fan_in`; 1 when not given), with the default two seconds,
    as a reader of the model's transactions sees a second of them at once."""
    backlog = [(s["t"], float(s["backlog"])) for s in samples if s["backlog"] == s["backlog"]]
    backlog_verdict = judge_lag(backlog, rate, end_seconds=BACKLOG_SECONDS)
    lag_verdicts = {}
    for service in SERVICES:
        series = [(s["t"], float(s["lag"][service])) for s in samples
                  if s["lag"].get(service, float("nan")) == s["lag"].get(service)]
        scale = (messages_per_event or {}).get(service, 1.0)
        lag_verdicts[service] = judge_lag(series, rate * scale).as_dict()
    counted = [s for s in samples if s["predicted"] == s["predicted"]]
    span = counted[-1]["t"] - counted[0]["t"] if len(counted) > 1 else 0.0
    predictions_per_second = ((counted[-1]["predicted"] - counted[0]["predicted"]) / span
                              if span > 0 else float("nan"))
    achieved = published.achieved_rate >= 0.97 * rate
    sustained = (achieved and not published.stopped_early and backlog_verdict.bounded
                 and all(v["bounded"] for v in lag_verdicts.values()))
    rss: dict[str, int] = {}
    for sample in samples:
        for name, value in sample["rss"].items():
            if value is not None:
                rss[name] = max(rss.get(name, 0), int(value))
    checkpoints = [s.get("checkpoint_bytes", float("nan")) for s in samples]
    return {
        "cpu_ms_per_event": cpu_per_event(samples, published.events),
        "peak_checkpoint_bytes": max((c for c in checkpoints if c == c), default=None),
        "rate": rate, "seconds": round(published.seconds, 2), "events": published.events,
        "achieved_rate": published.achieved_rate, "stopped_early": published.stopped_early,
        "predictions_per_second": predictions_per_second, "sustained": sustained,
        "backlog": backlog_verdict.as_dict(), "lag": lag_verdicts, "peak_rss_bytes": rss,
        "samples": samples,
    }


def cpu_per_event(samples: list[dict[str, Any]], events: int) -> dict[str, float]:
    """CPU milliseconds each process (services, broker) used per event published over the
    window: its CPU time at the last sample minus at the first, over ``events``."""
    if not samples or events <= 0:
        return {}
    first, last = samples[0].get("cpu", {}), samples[-1].get("cpu", {})
    return {name: round(1000 * (last[name] - first[name]) / events, 3) for name in first
            if first[name] is not None and last.get(name) is not None}


def latency_figures(published: WindowPublished, measured: set[str],
                    read: dict[str, dict[str, list[float]]],
                    learned: dict[str, float]) -> dict[str, Any]:
    """Percentiles (ms) of publish -> prediction readable per isolation level, its parts as
    the prediction's own timestamps tell them, and label publish -> learned."""
    sent = published.event_times
    figures: dict[str, Any] = {"measured_events": len(measured)}
    for isolation, found in read.items():
        ids = [i for i in measured if i in found and i in sent]
        figures[f"event_to_prediction_{isolation}_ms"] = summarize(
            [(found[i][0] - sent[i]) * 1000 for i in ids]).as_dict()
        figures[f"missing_{isolation}"] = len(measured) - len(ids)
    found = read.get("read_uncommitted", {})
    ids = [i for i in measured if i in found and i in sent]
    figures["parts_ms"] = {
        "publish_to_model_read": summarize([(found[i][1] - sent[i]) * 1000 for i in ids]
                                           ).as_dict(),
        "model_read_to_predicted": summarize([(found[i][2] - found[i][1]) * 1000 for i in ids]
                                             ).as_dict(),
        "predicted_to_readable": summarize([(found[i][0] - found[i][2]) * 1000 for i in ids]
                                           ).as_dict(),
    }
    labels = [i for i in measured if i in learned and i in published.label_times]
    figures["label_to_learned_ms"] = summarize(
        [(learned[i] - published.label_times[i]) * 1000 for i in labels]).as_dict()
    figures["labels_not_learned"] = len(measured) - len(labels)
    return figures


def record_profiles(bench: PipelineBench, running: RunningStack, binary: str, rate: float,
                    seconds: float, out_dir: Path, stamp: str,
                    services: tuple[str, ...] = ("features", "model")) -> dict[str, Any]:
    """Profile ``services`` with py-spy while the stream runs at ``rate`` for ``seconds``."""
    pids = running.pids()
    recordings = {}
    for service in services:
        out = out_dir / f"{stamp}-{service}.speedscope.json"
        recordings[service] = (out, start_recording(binary, pids[service], seconds, out,
                                                    running.home / "logs" / "py-spy.log"))
    load_before = load_average()
    step = bench.step(rate, Plan(seconds + 1.0, 0.0, 0.0, 60.0, 0, ()))
    profiles: dict[str, Any] = {"rate": rate, "seconds": seconds, "load_before": load_before,
                                "load_after": step["load_after"],
                                "predictions_per_second": step["predictions_per_second"]}
    for service, (out, process) in recordings.items():
        try:
            process.wait(seconds + 60)
        except subprocess.TimeoutExpired:
            process.kill()
        if out.is_file():
            profiles[service] = {"file": str(out), **summarize_file(out)}
        else:
            profiles[service] = {"file": None, "error": f"py-spy wrote nothing; see "
                                 f"{running.home / 'logs' / 'py-spy.log'}"}
    return profiles
