"""``streamml demo``: broker, topics, all five services, the clicks scenario with one concept
drift, then a summary that says whether the model works and when the drift was caught."""

from __future__ import annotations

import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.spec import load_spec
from schemas.truth import GroundTruth
from services.cli import stack
from services.cli.demo_summary import (
    DRIFT_SHARE,
    alerts_by_kind,
    demo_timeline,
    first_catch,
    judged_between,
    verdict,
)
from services.cli.local_kafka import LocalBroker
from services.cli.report.command import write_report
from services.cli.report.page import PageContext
from services.cli.report.read import read_run
from services.cli.report.records import ReportError, RunRecords
from services.cli.supervisor import METRICS_PORTS
from services.common.kafka import ensure_topics, make_consumer
from services.common.settings import KafkaSettings

CHAMPION = "logreg"
"""The champion of the built-in ``clicks`` spec, which the demo runs."""


def scrape(port: int) -> dict[str, float]:
    """Sum of every sample of a service's ``/metrics`` by metric-and-labels name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
        text = reply.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
            key = f"{sample.name}{{{labels}}}" if labels else sample.name
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _total(metrics: dict[str, float], prefix: str) -> float:
    return sum(value for key, value in metrics.items()
               if key == prefix or key.startswith(prefix + "{"))


def run_demo(broker: LocalBroker, home: Path, duration: float, rate: float) -> int:
    """Run the whole pipeline for ``duration`` seconds at ``rate`` events/s, with an abrupt
    concept drift at :data:`DRIFT_SHARE` of the events, and print what happened."""
    was_running = broker.status()["running"]
    print(f"1/4 Kafka {broker.version} on {broker.bootstrap_servers} "
          f"({'already running' if was_running else 'starting'})")
    broker.start()
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Topics of its own: the scenario's event ids repeat from run to run (they are seeded),
    # and a model that remembers them from an earlier run would dead-letter them as reused.
    prefix = f"demo-{stamp}-"
    ensure_topics(kafka, prefix)
    window = load_spec("clicks").label.feedback_window_seconds
    drift_at = int(DRIFT_SHARE * duration * rate)
    run_dir = home / "demo" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "timeline.toml").write_text(demo_timeline(drift_at))
    truth_path = run_dir / "truth.json"
    print("2/4 starting features, model, drift, metrics-sink and producer")
    env = {"STREAMML_TOPIC_PREFIX": prefix,
           "STREAMML_PRODUCER__RATE": str(rate),
           "STREAMML_PRODUCER__TIMELINE": str(run_dir / "timeline.toml"),
           "STREAMML_PRODUCER__TRUTH_PATH": str(truth_path),
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    started_at = datetime.now(UTC)
    stack.up(stack.plan_stack(home, env, with_producer=True))
    print(f"3/4 streaming the clicks scenario at {rate:g} events/s for {duration:g}s; clicks "
          f"come back within seconds, a non-click is known when its {window:g} s window "
          f"closes; a concept drift (layout-change) starts at event {drift_at:,} "
          f"(about {drift_at / rate:.0f} s in)")
    sink_port = METRICS_PORTS["metrics-sink"]
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration:
            time.sleep(min(10.0, duration - (time.monotonic() - started)))
            metrics = scrape(sink_port)
            print(f"    t={time.monotonic() - started:4.0f}s  "
                  f"predictions={_total(metrics, 'streamml_predictions_total'):.0f}  "
                  f"outcomes={_total(metrics, 'streamml_outcomes_total'):.0f}  "
                  f"accuracy={_gauge(metrics, 'streamml_rolling_accuracy_ratio'):.3f} (majority "
                  f"baseline {_gauge(metrics, 'streamml_rolling_majority_baseline_ratio'):.3f})  "
                  f"ROC AUC={_gauge(metrics, 'streamml_rolling_roc_auc_ratio'):.3f}")
        metrics = scrape(sink_port)
        producer = scrape(METRICS_PORTS["producer"])
        records, report = _read_and_report(kafka, home, prefix, started_at, truth_path)
        events = _events_since(kafka, prefix + "events", started_at)
    finally:
        print("4/4 stopping the services" + ("" if was_running else " and the broker"))
        stack.down(home)
        if not was_running:
            broker.stop()
    _print_summary(metrics, producer, records, events, report, truth_path, home, window)
    print(f"  topics                  {prefix}* (streamml report --prefix {prefix} "
          f"--truth {truth_path} draws the run again)")
    return 0


def _events_since(kafka: KafkaSettings, topic: str, since: datetime) -> int | None:
    """Events on ``topic`` published since ``since`` (None if it cannot be read)."""
    consumer = make_consumer(kafka, f"streamml-demo-{uuid.uuid4().hex[:8]}")
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        wanted = [TopicPartition(topic, p, int(since.timestamp() * 1000)) for p in partitions]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        total = 0
        for start in starts:
            _, high = consumer.get_watermark_offsets(start, timeout=10)
            total += max(0, high - start.offset) if start.offset >= 0 else 0
        return total
    except KafkaException:
        return None
    finally:
        consumer.close()


def _gauge(metrics: dict[str, float], name: str) -> float:
    return metrics.get(f"{name}{{model={CHAMPION}}}", 0.0)


def _read_and_report(kafka: KafkaSettings, home: Path, prefix: str, since: datetime,
                     truth_path: Path) -> tuple[RunRecords | None, str]:
    """The run's messages (for its alerts) and where its report was written, or why not."""
    try:
        records = read_run(kafka, prefix, since, timeout=60.0)
    except ReportError as error:
        return None, f"not written: {error}"
    truth = GroundTruth.model_validate_json(truth_path.read_bytes()) if truth_path.exists() \
        else None
    out = home / "reports" / f"demo-{since.strftime('%Y%m%dT%H%M%SZ')}"
    try:
        page = write_report(records, out, PageContext(prefix, datetime.now(UTC), since,
                                                      str(truth_path)), None, truth)
    except ReportError as error:
        return records, f"not written: {error}"
    return records, str(page)


def _print_summary(metrics: dict[str, float], producer: dict[str, float],
                   records: RunRecords | None, events: int | None, report: str,
                   truth_path: Path, home: Path, window: float) -> None:
    print("\nWhat happened")
    labels = _total(producer, "streamml_producer_published_messages_total{topic=labels}")
    if events is None:
        events = int(_total(producer, "streamml_producer_published_messages_total{topic=events}"))
    print(f"  events published        {events:10,}")
    print(f"  clicks (labels) sent    {labels:10,.0f}")
    if records is not None:
        predicted = len({p.event_id for p in records.predictions})
        print(f"  predictions             {len(records.predictions):10,} for {predicted:,} "
              f"events (read from the topic; the last events were still on their way)")
        print(f"  outcomes (all models)   {len(records.outcomes):10,}")
    else:
        print(f"  predictions             {_total(metrics, 'streamml_predictions_total'):10,.0f}")
        print(f"  outcomes (all models)   {_total(metrics, 'streamml_outcomes_total'):10,.0f}")
    judged = f"streamml_rolling_accuracy_ratio{{model={CHAMPION}}}" in metrics
    accuracy = _gauge(metrics, "streamml_rolling_accuracy_ratio") if judged else None
    baseline = (_gauge(metrics, "streamml_rolling_majority_baseline_ratio") if judged
                else None)
    print(f"  champion accuracy       {_ratio(accuracy)} over its last 1,000 outcomes, against "
          f"{_ratio(baseline)} for always answering their most frequent label")
    print(f"                          : {verdict(accuracy, baseline)}")
    auc_key = f"streamml_rolling_roc_auc_ratio{{model={CHAMPION}}}"
    if auc_key in metrics:
        print(f"  champion ROC AUC        {metrics[auc_key]:6.3f} over the same outcomes: how "
              f"often it scores a click above a non-click (0.5: chance)")
    count = _total(metrics, "streamml_event_to_prediction_seconds_count")
    mean = _total(metrics, "streamml_event_to_prediction_seconds_sum") / count if count else 0.0
    print(f"  mean event->prediction  {mean * 1000:8.1f}ms")
    if records is not None and truth_path.exists():
        truth = GroundTruth.model_validate_json(truth_path.read_bytes())
        for point in truth.drift_points:
            if point.index >= events:
                continue
            before = judged_between(records.outcomes, CHAMPION,
                                    truth.start + timedelta(seconds=window), point.event_time)
            after = judged_between(records.outcomes, CHAMPION,
                                   point.event_time + timedelta(seconds=window),
                                   datetime.max.replace(tzinfo=UTC))
            print(f"  before the drift        {_ratio(before.accuracy)} accuracy against "
                  f"{_ratio(before.baseline)} ({before.outcomes:,} outcomes after the first "
                  f"window): {verdict(before.accuracy, before.baseline)}")
            print(f"  after the drift         {_ratio(after.accuracy)} accuracy against "
                  f"{_ratio(after.baseline)} ({after.outcomes:,} outcomes from one window "
                  f"after it): {verdict(after.accuracy, after.baseline)}")
            catch = first_catch(point, records.alerts, CHAMPION)
            print(f"  drift injected          {point.phase} ({point.kind.replace('_', ' ')}, "
                  f"{point.transition}) at event {point.index:,}")
            print("  drift caught            " + (
                f"concept alert on {CHAMPION}'s errors {catch.detected_after:.1f} s after it "
                f"began, on the outcome of an event {catch.seconds_after:.1f} s in (a non-click "
                f"is known when its window closes)"
                if catch.seconds_after is not None and catch.detected_after is not None
                else "not caught within the run"))
        kinds = alerts_by_kind(records.alerts)
        print("  drift alerts            " + ", ".join(f"{kind} {n}" for kind, n in kinds.items()))
    else:
        print(f"  drift alerts            {_total(metrics, 'streamml_drift_alerts_total'):10.0f}")
    print(f"  dead letters            {_total(metrics, 'streamml_dead_letters_total'):10.0f}")
    print(f"  report                  {report}")
    print(f"  metrics (while running) http://127.0.0.1:{METRICS_PORTS['metrics-sink']}/metrics "
          f"(metrics-sink); every service's port is in the README")
    print(f"  logs                    {home / 'logs'}")


def _ratio(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"
