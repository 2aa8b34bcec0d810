"""Consumer lag from librdkafka statistics."""

from __future__ import annotations

import orjson
from prometheus_client import CollectorRegistry

from services.common.service_metrics import LoopMetrics

GROUP = "acme.streamml-model"


def statistics(lags: dict[str, dict[str, int]], group: str = "acme.streamml-model") -> str:
    return orjson.dumps({
        "name": "rdkafka#consumer-1",
        "type": "consumer",
        "cgrp": {"group_id": group, "state": "up"},
        "topics": {
            topic: {"topic": topic, "partitions": {
                partition: {"partition": int(partition), "consumer_lag": lag}
                for partition, lag in partitions.items()
            }}
            for topic, partitions in lags.items()
        },
    }).decode()


def lag(
    registry: CollectorRegistry, topic: str, group: str = "acme.streamml-model"
) -> float | None:
    return registry.get_sample_value(
        "streamml_consumer_lag_messages", {"service": "model", "group": group, "topic": topic}
    )


def test_lag_is_summed_over_assigned_partitions_by_base_topic_name() -> None:
    registry = CollectorRegistry()
    metrics = LoopMetrics(registry, "model")
    document = statistics({
        "acme.features": {"0": 5, "1": 7, "-1": 1000, "2": -1},
        "acme.labels": {"0": 0, "3": 2},
    })
    metrics.record_statistics(
        document, {"acme.features": "features", "acme.labels": "labels"}, GROUP
    )
    assert lag(registry, "features") == 12
    assert lag(registry, "labels") == 2


def test_lag_follows_the_latest_statistics() -> None:
    registry = CollectorRegistry()
    metrics = LoopMetrics(registry, "model")
    names = {"acme.features": "features"}
    metrics.record_statistics(statistics({"acme.features": {"0": 50}}), names, GROUP)
    metrics.record_statistics(statistics({"acme.features": {"0": 3}}), names, GROUP)
    assert lag(registry, "features") == 3


def test_unmapped_topic_keeps_its_full_name() -> None:
    registry = CollectorRegistry()
    LoopMetrics(registry, "model").record_statistics(statistics({"raw": {"0": 4}}), {}, GROUP)
    assert lag(registry, "raw") == 4


def test_statistics_without_topics_change_nothing() -> None:
    registry = CollectorRegistry()
    LoopMetrics(registry, "model").record_statistics(
        '{"name": "rdkafka#producer-1"}', {}, GROUP
    )
    assert lag(registry, "features") is None


def test_lag_from_stored_offsets_is_preferred_over_committed() -> None:
    registry = CollectorRegistry()
    document = orjson.dumps({"topics": {"acme.features": {"partitions": {
        "0": {"consumer_lag": 180, "consumer_lag_stored": 4},
        "1": {"consumer_lag": 9, "consumer_lag_stored": -1},
    }}}}).decode()
    LoopMetrics(registry, "model").record_statistics(document, {"acme.features": "features"},
                                                     GROUP)
    assert lag(registry, "features") == 13


def partition_statistics(**fields: int) -> dict[str, int]:
    """librdkafka's statistics of a read_committed partition whose last message (offset 99) was
    processed and whose offset 100 is a transaction's commit marker, updated with ``fields``."""
    return {"consumer_lag": -1, "consumer_lag_stored": 1, "hi_offset": 101, "ls_offset": 101,
            "app_offset": 101, "stored_offset": 100, "next_offset": 101, "fetchq_cnt": 0,
            **fields}


def test_a_trailing_transaction_marker_is_not_lag() -> None:
    registry = CollectorRegistry()
    document = orjson.dumps({"topics": {"acme.outcomes": {"partitions": {
        "0": partition_statistics(),
    }}}}).decode()
    LoopMetrics(registry, "model").record_statistics(document, {"acme.outcomes": "outcomes"},
                                                     GROUP)
    assert lag(registry, "outcomes") == 0


def test_unprocessed_or_unfetched_messages_are_lag() -> None:
    registry = CollectorRegistry()
    document = orjson.dumps({"topics": {"acme.outcomes": {"partitions": {
        # fetched, ten still in the local queue
        "0": partition_statistics(app_offset=90, stored_offset=90, consumer_lag_stored=11,
                                  fetchq_cnt=10),
        # not handed over yet
        "1": partition_statistics(app_offset=95, stored_offset=95, consumer_lag_stored=6),
        # not fetched yet
        "2": partition_statistics(next_offset=100, app_offset=100, consumer_lag_stored=1),
    }}}}).decode()
    LoopMetrics(registry, "model").record_statistics(document, {"acme.outcomes": "outcomes"},
                                                     GROUP)
    assert lag(registry, "outcomes") == 11 + 6 + 1
