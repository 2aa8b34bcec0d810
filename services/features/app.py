"""Wiring of the features service: settings -> faust app -> agents. Nothing runs at import.

Agents (see :mod:`services.features.topology` for the topics and tables):

* ``events`` reads raw bytes (so faust never drops an undecodable message on its own), validates,
  dead-letters what is invalid, adds the primary entity's aggregates from its table when the
  event is in its home partition (otherwise re-homes it) and hands the event on;
* ``by-<primary>-home`` adds the primary entity's aggregates to re-homed events;
* ``by-<entity>``, one per other entity key with aggregates, adds that entity's aggregates;
* the last step publishes the vector on ``features``, keyed by the primary entity.

A spec whose aggregates are all on the primary entity therefore takes no internal hop at all.
Each record goes through :class:`~services.features.handling.RecordHandler`: invalid input is
dead-lettered with its reason, a retriable error is retried, and anything else stops the worker
with one line (a bug is never turned into a dead letter). A record counts as processed, and its
offset can be committed, only once its agent finished it
(:class:`~services.features.offsets.ProcessedOffsets`).

Sends only enqueue in the producer (:class:`~services.features.tables.Outbox`), which delivers
in the background: no event waits for a delivery. Before faust commits offsets it flushes the
producer, and the flush first runs the :class:`~services.features.tables.Checkpoint`: outputs
delivered, then changed states written to the changelogs. A redelivered event is recognised by
its entity's state (see ``tables``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import faust

from schemas.codec import encode_plain
from schemas.dead_letters import DeadLetterHeaders
from schemas.spec import PipelineSpec
from schemas.topics import PIPELINE_PARTITIONS
from services.common.dead_letters import DeadLetter
from services.features.broker import faust_broker_options
from services.features.handling import RecordHandler
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
from services.features.tables import Checkpoint, Outbox, StageTable, mark_passed, passed
from services.features.topology import home_partition, stage_topic, table_name
from services.features.transport import LowLatencyApp

log = logging.getLogger(__name__)
SERVICE = "features"

Send = Callable[[StagedEvent], Awaitable[None]]
Step = Callable[[StagedEvent, bytes, int, faust.types.Message], Awaitable[None]]
"""(staged event, entity key, partition of the entity's state, source message)."""


def primary_stage(spec: PipelineSpec, stages: list[Stage]) -> Stage | None:
    """The stage of the spec's first entity key (the key of ``events``), if it has aggregates."""
    return stages[0] if stages and stages[0].entity == spec.entity_keys[0] else None


def build_app(
    settings: FeaturesSettings,
    spec: PipelineSpec,
    metrics: FeaturesMetrics,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    partitions: int = PIPELINE_PARTITIONS,
    datadir: str | None = None,
) -> LowLatencyApp:
    """The faust app with its topics, tables and agents; not started.

    ``partitions`` is the partition count of ``events``; internal topics and tables get as many.
    ``datadir`` is faust's data directory (default: ``<group>-data`` in the working directory).
    """
    options = settings.features
    group = settings.group(SERVICE)
    app = LowLatencyApp(
        group,
        fetch_max_wait_ms=options.fetch_max_wait_ms,
        **faust_broker_options(settings.kafka),
        web_enabled=False,
        autodiscover=False,
        store="memory://",
        topic_replication_factor=settings.topics.replication_factor or 1,
        topic_partitions=partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=options.commit_interval_seconds,
        producer_acks=-1,
        producer_linger_ms=options.linger_ms,
        producer_max_batch_size=options.max_batch_bytes,
        producer_compression_type="lz4",
        table_cleanup_interval=60.0,
        **({} if datadir is None else {"datadir": datadir}),
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic("events"), **raw)
    features = settings.topic("features")
    dead_letters = settings.topic("dead-letters")
    limits = options.limits()
    stages = plan_stages(spec, options.remember_events)
    primary = primary_stage(spec, stages)
    outbox = Outbox(lambda: app.producer.send)
    tables: list[StageTable] = []
    app.before_flush.append(Checkpoint(tables, outbox))

    async def dead_letter(event: faust.EventT[Any], error: DeadLetter) -> None:
        message = event.message
        cause = error.__cause__ if error.__cause__ is not None else error
        headers = DeadLetterHeaders(
            source_topic=message.topic, source_partition=message.partition,
            source_offset=message.offset, service=SERVICE, reason_code=error.reason_code,
            error_class=type(cause).__name__, reason=error.reason[:2000],
        )
        await outbox.send(dead_letters, message.key, message.value,
                          headers=headers.to_kafka_headers())
        metrics.invalid_events.labels(reason=error.reason_code).inc()
        log.warning("dead-lettered %s: %s", error.reason_code, error.reason[:200])

    handle = RecordHandler(app.processed, dead_letter, app.crash)

    async def publish_features(staged: StagedEvent) -> None:
        vector = finish(staged, clock())
        # Keyed like the event (primary entity): an entity's vectors stay in order.
        key = vector.entity[spec.entity_keys[0]].encode()
        await outbox.send(features, key, encode_plain(vector))
        metrics.events_processed.inc()
        metrics.processing_seconds.observe((vector.computed_at - staged.ingested_at)
                                           .total_seconds())

    def stage_step(stage: Stage, is_primary: bool, send_next: Send) -> Step:
        table = StageTable(cast("faust.Table[bytes, Any]", app.Table(
            table_name(stage, is_primary), default=None, partitions=partitions, key_type=bytes,
        )))  # keys are raw bytes (entity values); values are JSON dicts (value_type None: json)
        tables.append(table)
        return _step(stage, table, send_next, metrics)

    def feeder(topic: faust.TopicT, stage: Stage) -> Send:
        name = topic.get_topic_name()

        async def feed(staged: StagedEvent) -> None:
            await outbox.send(name, staged.event.entity[stage.entity].encode(),
                              encode_staged(staged))

        return feed

    send_next: Send = publish_features
    for stage in reversed([stage for stage in stages if stage is not primary]):
        topic = app.topic(stage_topic(group, stage, False), partitions=partitions,
                          internal=True, **raw)
        _add_stage_agent(app, f"{group}.stage-{stage.entity}", topic,
                         stage_step(stage, False, send_next), handle)
        send_next = feeder(topic, stage)

    route: Callable[[StagedEvent, faust.types.Message], Awaitable[None]]
    if primary is None:
        async def hand_on(staged: StagedEvent, _message: faust.types.Message) -> None:
            await send_next(staged)

        route = hand_on
    else:
        home = app.topic(stage_topic(group, primary, True), partitions=partitions,
                         internal=True, **raw)
        step = stage_step(primary, True, send_next)
        _add_stage_agent(app, f"{group}.stage-{primary.entity}-home", home, step, handle)

        async def in_place_or_rehomed(staged: StagedEvent, message: faust.types.Message) -> None:
            key = staged.event.entity[primary.entity].encode()
            partition = home_partition(key, partitions)
            if message.partition == partition:
                await step(staged, key, partition, message)
                return
            metrics.rehomed.inc()
            await outbox.send(home.get_topic_name(), key, encode_staged(staged), partition)

        route = in_place_or_rehomed

    async def validate_and_route(event: faust.EventT[Any]) -> None:
        message = event.message
        staged = admit(event.value, spec, clock(), limits, (message.partition, message.offset))
        await route(staged, message)

    async def read_events(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            if not await handle(event, validate_and_route):
                return

    app.agent(events, name=f"{group}.validate")(read_events)

    sources = {settings.topic("events"): "events"}
    sources.update({stage_topic(group, stage, stage is primary): f"by-{stage.entity}"
                    for stage in stages})

    async def sample_lag() -> None:
        for topic, lag in lag_sample(app.consumer, sources.get).items():
            metrics.consumer_lag.labels(service=SERVICE, group=group, topic=topic).set(lag)

    app.timer(interval=5.0, name=f"{group}.lag")(sample_lag)
    return app


def _step(stage: Stage, table: StageTable, send_next: Send, metrics: FeaturesMetrics) -> Step:
    """Add ``stage``'s aggregates to an event, keep the entity's new state, hand the event on.

    An event at or below the offset its entity's state has passed for its source topic is a
    redelivery whose outputs are already sent: it is skipped. The state passes an event only
    once its outputs are sent (see :mod:`services.features.tables`).
    """
    entities = metrics.table_entities.labels(entity=stage.entity)
    redelivered = metrics.redelivered.labels(entity=stage.entity)

    async def step(staged: StagedEvent, key: bytes, partition: int,
                   message: faust.types.Message) -> None:
        state = table.get(key)
        if passed(state, message.topic, message.offset):
            redelivered.inc()
            return
        staged, state, seen = advance(staged, stage, state)
        table.put(key, state, partition)
        if seen:
            redelivered.inc()
        else:
            entities.set(len(table))
        await send_next(staged)
        mark_passed(state, message.topic, message.offset)
        table.put(key, state, partition)

    return step


def _add_stage_agent(
    app: LowLatencyApp, name: str, topic: faust.TopicT, step: Step, handle: RecordHandler,
) -> None:
    """An agent on an internal stage topic (keyed by the stage's entity): one step per event."""

    async def add_aggregates(event: faust.EventT[Any]) -> None:
        message = event.message
        await step(decode_staged(event.value), cast(bytes, event.key), message.partition, message)

    async def run_stage(stream: faust.StreamT[Any]) -> None:
        async for event in stream.events():
            if not await handle(event, add_aggregates):
                return

    app.agent(topic, name=name)(run_stage)
