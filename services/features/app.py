"""Wiring of the features service: settings -> faust app -> agents. Nothing runs at import.

Agents: ``validate`` reads ``events`` (raw bytes, so faust never drops an undecodable message on
its own), dead-letters what is invalid and forwards the rest to the first entity stage; each
stage agent reads its internal topic keyed by that entity, adds its aggregates from its table and
forwards; the last one publishes on ``features`` keyed by ``event_id``. Any unexpected error on a
message dead-letters it with reason ``processing_error``; the agent keeps running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from confluent_kafka.cimpl import NewTopic
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.dead_letters import DeadLetterHeaders
from schemas.spec import PipelineSpec, load_spec
from schemas.topics import PIPELINE_PARTITIONS
from services.common.dead_letters import DeadLetter
from services.common.kafka import create_missing_topics, wait_for_broker
from services.common.metrics_server import Health, MetricsServer
from services.common.runtime import announce_ready, configure_logging
from services.features.broker import faust_broker_options
from services.features.lag import sample as lag_sample
from services.features.metrics import FeaturesMetrics
from services.features.pipeline import (
    Stage,
    StagedEvent,
    admit,
    advance,
    decode_staged,
    encode_staged,
    finish,
    plan_stages,
)
from services.features.settings import FeaturesSettings
from services.features.transport import LowLatencyApp

log = logging.getLogger(__name__)
SERVICE = "features"

Send = Callable[[StagedEvent], Awaitable[None]]


def build_app(
    settings: FeaturesSettings,
    spec: PipelineSpec,
    metrics: FeaturesMetrics,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> faust.App:
    """The faust app with its topics, tables and agents; not started."""
    app = LowLatencyApp(
        settings.group(SERVICE),
        **faust_broker_options(settings.kafka),
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        topic_replication_factor=1,
        topic_partitions=PIPELINE_PARTITIONS,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.features.commit_interval_seconds,
        producer_acks=-1,
        table_cleanup_interval=60.0,
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic("events"), **raw)
    features = app.topic(settings.topic("features"), **raw)
    dead_letters = app.topic(settings.topic("dead-letters"), **raw)
    limits = settings.features.limits()
    stages = plan_stages(spec, settings.features.remember_events)

    async def dead_letter(event: faust.EventT[Any], error: DeadLetter) -> None:
        message = event.message
        cause = error.__cause__ if error.__cause__ is not None else error
        headers = DeadLetterHeaders(
            source_topic=message.topic, source_partition=message.partition,
            source_offset=message.offset, service=SERVICE, reason_code=error.reason_code,
            error_class=type(cause).__name__, reason=error.reason[:2000],
        )
        await dead_letters.send(
            key=message.key, value=message.value, headers=headers.to_kafka_headers()
        )
        metrics.invalid_events.labels(reason=error.reason_code).inc()
        log.warning("dead-lettered %s: %s", error.reason_code, error.reason[:200])

    async def publish_features(staged: StagedEvent) -> None:
        vector = finish(staged, clock())
        # Keyed like the event (primary entity): an entity's vectors stay in order.
        key = vector.entity[spec.entity_keys[0]].encode()
        await features.send(key=key, value=encode(vector))
        metrics.events_processed.inc()
        metrics.processing_seconds.observe((clock() - staged.ingested_at).total_seconds())

    send_next: Send = publish_features
    for stage in reversed(stages):
        send_next = _add_stage_agent(app, settings, stage, send_next, dead_letter, metrics)

    async def validate(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            try:
                await send_next(admit(event.value, spec, clock(), limits))
            except DeadLetter as error:
                await dead_letter(event, error)
            except Exception as error:
                await dead_letter(event, _unexpected(error))

    app.agent(events, name=f"{settings.group(SERVICE)}.validate")(validate)

    sources = {settings.topic("events"): "events"}
    sources.update({_stage_topic(settings, stage): f"by-{stage.entity}" for stage in stages})

    async def sample_lag() -> None:
        for topic, lag in lag_sample(app.consumer, sources.get).items():
            metrics.consumer_lag.labels(
                service=SERVICE, group=settings.group(SERVICE), topic=topic
            ).set(lag)

    app.timer(interval=5.0, name=f"{settings.group(SERVICE)}.lag")(sample_lag)
    return app


def _add_stage_agent(
    app: faust.App,
    settings: FeaturesSettings,
    stage: Stage,
    send_next: Send,
    dead_letter: Callable[[faust.EventT[Any], DeadLetter], Awaitable[None]],
    metrics: FeaturesMetrics,
) -> Send:
    """Declare ``stage``'s topic, table and agent; return the function that feeds the stage."""
    topic = app.topic(
        _stage_topic(settings, stage), key_serializer="raw",
        value_serializer="raw", partitions=PIPELINE_PARTITIONS, internal=True,
    )
    table = app.Table(
        _table_name(stage), default=None, partitions=PIPELINE_PARTITIONS, key_type=bytes,
    )  # keys are raw bytes (entity values); values are JSON dicts (value_type None: json)
    entities = metrics.table_entities.labels(entity=stage.entity)

    async def run_stage(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            try:
                staged = decode_staged(event.value)
                key = event.key
                staged, state, redelivered = advance(staged, stage, table.get(key))
                if redelivered:
                    metrics.redelivered.labels(entity=stage.entity).inc()
                else:
                    table[key] = state
                entities.set(len(table))
                await send_next(staged)
            except DeadLetter as error:
                await dead_letter(event, error)
            except Exception as error:
                await dead_letter(event, _unexpected(error))

    app.agent(topic, name=f"{settings.group(SERVICE)}.stage-{stage.entity}")(run_stage)

    async def feed(staged: StagedEvent) -> None:
        key = staged.event.entity[stage.entity].encode()
        await topic.send(key=key, value=encode_staged(staged))

    return feed


def internal_topics(settings: FeaturesSettings, spec: PipelineSpec) -> list[NewTopic]:
    """The stage topics and table changelogs, created before the worker subscribes.

    faust declares them itself too, but a subscription made before the broker's metadata lists a
    new topic silently leaves its partitions unassigned; creating them first avoids that race.
    """
    group = settings.group(SERVICE)
    topics = []
    for stage in plan_stages(spec, settings.features.remember_events):
        topics.append(NewTopic(_stage_topic(settings, stage), num_partitions=PIPELINE_PARTITIONS,
                               replication_factor=1))
        topics.append(NewTopic(
            f"{group}-{_table_name(stage)}-changelog", num_partitions=PIPELINE_PARTITIONS,
            replication_factor=1, config={"cleanup.policy": "compact"},
        ))
    return topics


def _stage_topic(settings: FeaturesSettings, stage: Stage) -> str:
    return f"{settings.group(SERVICE)}-by-{stage.entity}"


def _table_name(stage: Stage) -> str:
    return f"entity-{stage.entity}"


def _unexpected(error: Exception) -> DeadLetter:
    log.exception("unexpected error while processing a message")
    dead = DeadLetter("processing_error", f"{type(error).__name__}: {error}")
    dead.__cause__ = error
    return dead


class _Worker(faust.Worker):
    """A faust worker that also calls ``on_ready`` once tables are recovered and it runs."""

    def __init__(self, app: faust.App, on_ready: Callable[[], None], **options: Any) -> None:
        super().__init__(app, **options)
        self._on_ready = on_ready

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        self._on_ready()


def main() -> int:
    """Entry point: read settings, wire the app, serve metrics, run the faust worker."""
    settings = FeaturesSettings()
    configure_logging(SERVICE, settings.log_level)
    spec = load_spec(settings.spec)
    registry = CollectorRegistry()
    metrics = FeaturesMetrics(registry)
    wait_for_broker(settings.kafka)
    create_missing_topics(settings.kafka, internal_topics(settings, spec))
    app = build_app(settings, spec, metrics)
    started = time.monotonic()

    def health() -> Health:
        running = bool(app.started) if hasattr(app, "started") else True
        return Health(ok=running, details={"service": SERVICE, "spec": spec.name,
                                           "uptime_seconds": round(time.monotonic() - started)})

    server = MetricsServer(registry, health, settings.metrics_host, settings.metrics_port).start()

    def on_ready() -> None:
        metrics.up.set(1)
        announce_ready(SERVICE, server.port)

    worker = _Worker(app, on_ready, loglevel=settings.log_level, quiet=True,
                     redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        metrics.up.set(0)
        server.stop()
    return 0
