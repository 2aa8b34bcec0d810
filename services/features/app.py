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
Route = Callable[[StagedEvent, faust.types.Message], Awaitable[None]]
"""Where a validated event goes next, given the message it came in."""


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
    app = _new_app(settings, partitions, datadir)
    wiring = _Wiring(app, settings, spec, metrics, clock, partitions)
    send_next = wiring.add_stage_agents()
    wiring.add_events_agent(wiring.router(send_next))
    wiring.add_lag_timer()
    return app


def _new_app(settings: FeaturesSettings, partitions: int, datadir: str | None) -> LowLatencyApp:
    """The faust app as the service runs it: in-memory tables, lz4, acks from all replicas."""
    options = settings.features
    return LowLatencyApp(
        settings.group(SERVICE),
        fetch_max_wait_ms=options.fetch_max_wait_ms,
        fetch_min_bytes=options.fetch_min_bytes,
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


class _Wiring:
    """What the agents share (the app, the outbox, the tables, the spec's stages), and one
    method per step of building them, in the order :func:`build_app` calls them."""

    def __init__(self, app: LowLatencyApp, settings: FeaturesSettings, spec: PipelineSpec,
                 metrics: FeaturesMetrics, clock: Callable[[], datetime],
                 partitions: int) -> None:
        self.app, self.settings, self.spec, self.metrics = app, settings, spec, metrics
        self.clock, self.partitions = clock, partitions
        self.group = settings.group(SERVICE)
        self.raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
        self.features_topic = settings.topic("features")
        self.dead_letters_topic = settings.topic("dead-letters")
        self.stages = plan_stages(spec, settings.features.remember_events)
        self.primary = primary_stage(spec, self.stages)
        self.outbox = Outbox(lambda: app.producer.send)
        self.tables: list[StageTable] = []
        app.before_flush.append(Checkpoint(self.tables, self.outbox))
        self.handle = RecordHandler(app.processed, self.dead_letter, app.crash)

    async def dead_letter(self, event: faust.EventT[Any], error: DeadLetter) -> None:
        """Send the event's message as it came to ``dead-letters``, with the reason."""
        message = event.message
        cause = error.__cause__ if error.__cause__ is not None else error
        headers = DeadLetterHeaders(
            source_topic=message.topic, source_partition=message.partition,
            source_offset=message.offset, service=SERVICE, reason_code=error.reason_code,
            error_class=type(cause).__name__, reason=error.reason[:2000],
        )
        await self.outbox.send(self.dead_letters_topic, message.key, message.value,
                               headers=headers.to_kafka_headers())
        self.metrics.invalid_events.labels(reason=error.reason_code).inc()
        log.warning("dead-lettered %s: %s", error.reason_code, error.reason[:200])

    async def publish_features(self, staged: StagedEvent) -> None:
        """The last step: the vector on ``features``."""
        vector = finish(staged, self.clock())
        # Keyed like the event (primary entity): an entity's vectors stay in order.
        key = vector.entity[self.spec.entity_keys[0]].encode()
        await self.outbox.send(self.features_topic, key, encode_plain(vector))
        self.metrics.events_processed.inc()
        self.metrics.processing_seconds.observe((vector.computed_at - staged.ingested_at)
                                                .total_seconds())

    def stage_step(self, stage: Stage, is_primary: bool, send_next: Send) -> Step:
        """The step adding ``stage``'s aggregates, with the table holding its states."""
        table = StageTable(cast("faust.Table[bytes, Any]", self.app.Table(
            table_name(stage, is_primary), default=None, partitions=self.partitions,
            key_type=bytes,
        )))  # keys are raw bytes (entity values); values are JSON dicts (value_type None: json)
        self.tables.append(table)
        return _step(stage, table, send_next, self.metrics)

    def stage_topic(self, stage: Stage, home: bool) -> faust.TopicT:
        return self.app.topic(stage_topic(self.group, stage, home), partitions=self.partitions,
                              internal=True, **self.raw)

    def add_stage_agents(self) -> Send:
        """An agent per non-primary stage, chained from the last to the first; returns how an
        event enters the chain (straight to ``features`` when there is no such stage)."""
        send_next: Send = self.publish_features
        for stage in reversed([stage for stage in self.stages if stage is not self.primary]):
            topic = self.stage_topic(stage, False)
            _add_stage_agent(self.app, f"{self.group}.stage-{stage.entity}", topic,
                             self.stage_step(stage, False, send_next), self.handle)
            send_next = self._feeder(topic.get_topic_name(), stage)
        return send_next

    def _feeder(self, topic: str, stage: Stage) -> Send:
        async def feed(staged: StagedEvent) -> None:
            await self.outbox.send(topic, staged.event.entity[stage.entity].encode(),
                                   encode_staged(staged))

        return feed

    def router(self, send_next: Send) -> Route:
        """Where a validated event goes: with a primary stage, its aggregates are added in
        place when the event is in its entity's home partition, else it is re-homed (its own
        agent adds them there); without one, on to ``send_next``."""
        primary = self.primary
        if primary is None:
            async def hand_on(staged: StagedEvent, _message: faust.types.Message) -> None:
                await send_next(staged)

            return hand_on
        home = self.stage_topic(primary, True)
        step = self.stage_step(primary, True, send_next)
        _add_stage_agent(self.app, f"{self.group}.stage-{primary.entity}-home", home, step,
                         self.handle)
        rehome_topic = home.get_topic_name()

        async def in_place_or_rehomed(staged: StagedEvent, message: faust.types.Message) -> None:
            key = staged.event.entity[primary.entity].encode()
            partition = home_partition(key, self.partitions)
            if message.partition == partition:
                await step(staged, key, partition, message)
                return
            self.metrics.rehomed.inc()
            await self.outbox.send(rehome_topic, key, encode_staged(staged), partition)

        return in_place_or_rehomed

    def add_events_agent(self, route: Route) -> None:
        """The agent on ``events``: validate (:func:`admit`), then ``route``."""
        spec, clock, limits = self.spec, self.clock, self.settings.features.limits()
        handle = self.handle

        async def validate_and_route(event: faust.EventT[Any]) -> None:
            message = event.message
            staged = admit(event.value, spec, clock(), limits, (message.partition, message.offset))
            await route(staged, message)

        async def read_events(stream: faust.StreamT[Any]) -> None:
            async for event in stream.events():
                if not await handle(event, validate_and_route):
                    return

        events = self.app.topic(self.settings.topic("events"), **self.raw)
        self.app.agent(events, name=f"{self.group}.validate")(read_events)

    def add_lag_timer(self) -> None:
        """Every 5 s, the consumer lag of each source topic as a gauge."""
        sources = {self.settings.topic("events"): "events"}
        sources.update({stage_topic(self.group, stage, stage is self.primary):
                        f"by-{stage.entity}" for stage in self.stages})
        lag = self.metrics.consumer_lag
        group, app = self.group, self.app

        async def sample_lag() -> None:  # app.consumer exists once the app has started
            for topic, messages in lag_sample(app.consumer, sources.get).items():
                lag.labels(service=SERVICE, group=group, topic=topic).set(messages)

        self.app.timer(interval=5.0, name=f"{group}.lag")(sample_lag)


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
