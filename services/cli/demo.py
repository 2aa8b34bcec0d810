"""``streamml demo``: broker, topics, all five services, a scenario for a minute, a summary."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from services.cli import stack
from services.cli.local_kafka import LocalBroker
from services.cli.supervisor import METRICS_PORTS
from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings


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
    """Run the whole pipeline for ``duration`` seconds and print what happened."""
    was_running = broker.status()["running"]
    print(f"1/4 Kafka {broker.version} on {broker.bootstrap_servers} "
          f"({'already running' if was_running else 'starting'})")
    broker.start()
    ensure_topics(KafkaSettings(bootstrap_servers=broker.bootstrap_servers))
    print("2/4 starting features, model, drift, metrics-sink and producer")
    env = {"STREAMML_PRODUCER__RATE": str(rate),
           "STREAMML_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    stack.up(stack.plan_stack(home, env, with_producer=True))
    print(f"3/4 streaming the clicks scenario at {rate:g} events/s for {duration:g}s")
    sink_port = METRICS_PORTS["metrics-sink"]
    started = time.monotonic()
    try:
        while time.monotonic() - started < duration:
            time.sleep(min(10.0, duration - (time.monotonic() - started)))
            metrics = scrape(sink_port)
            print(f"    t={time.monotonic() - started:4.0f}s  "
                  f"predictions={_total(metrics, 'streamml_predictions_total'):.0f}  "
                  f"outcomes={_total(metrics, 'streamml_outcomes_total'):.0f}  "
                  f"accuracy={metrics.get('streamml_rolling_accuracy_ratio{model=logreg}', 0):.3f}")
        metrics = scrape(sink_port)
        producer = scrape(METRICS_PORTS["producer"])
    finally:
        print("4/4 stopping the services" + ("" if was_running else " and the broker"))
        stack.down(home)
        if not was_running:
            broker.stop()
    print("\nWhat happened")
    events = _total(producer, "streamml_producer_published_messages_total{topic=events}")
    labels = _total(producer, "streamml_producer_published_messages_total{topic=labels}")
    print(f"  events published        {events:10.0f}")
    print(f"  clicks (labels) sent    {labels:10.0f}")
    print(f"  predictions             {_total(metrics, 'streamml_predictions_total'):10.0f}")
    print(f"  outcomes (all models)   {_total(metrics, 'streamml_outcomes_total'):10.0f}")
    accuracy = metrics.get("streamml_rolling_accuracy_ratio{model=logreg}", 0.0)
    print(f"  rolling accuracy        {accuracy:10.3f}")
    count = _total(metrics, "streamml_event_to_prediction_seconds_count")
    mean = _total(metrics, "streamml_event_to_prediction_seconds_sum") / count if count else 0.0
    print(f"  mean event->prediction  {mean * 1000:8.1f}ms")
    print(f"  drift alerts            {_total(metrics, 'streamml_drift_alerts_total'):10.0f}")
    print(f"  dead letters            {_total(metrics, 'streamml_dead_letters_total'):10.0f}")
    print(f"  logs                    {home / 'logs'}")
    return 0
