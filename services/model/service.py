"""Wiring of the model service: settings -> clients -> restored learner -> transactional loop."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import cast

from confluent_kafka import Consumer

from schemas.spec import SpecError, load_spec
from schemas.topics import TopicName
from services.common.consumer_service import connect, serve
from services.common.kafka import make_admin
from services.common.resume import start_offsets
from services.common.runtime import StopSignal, configure_logging
from services.common.transactions import TRANSACTION_TIMEOUT_MS
from services.model.alignment import AlignedConsumer
from services.model.checkpoint import TransactionalCheckpointer, load_state, read_checkpoint_chain
from services.model.estimators import categories_of
from services.model.handler import ModelHandler, ModelTopics
from services.model.layout import refuse_beside_predictors
from services.model.learner import Learner
from services.model.metrics import ModelMetrics
from services.model.releases import ReleasePublisher, StalenessMetrics
from services.model.settings import ModelSettings

log = logging.getLogger(__name__)
SERVICE = "model"
SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024


def run(settings: ModelSettings, stop: StopSignal) -> int:
    """Serve predictions and learn until stopped; return the number of messages processed.

    Starts from the newest checkpoint of this deployment's learner, if there is one, at the
    offsets it covers (:mod:`services.common.resume`: a checkpoint behind the group's offsets has
    the inputs read again from its own; one that contradicts them stops the service with
    :class:`~services.common.resume.ResumeRefused`).
    """
    spec = load_spec(settings.spec)
    learner = Learner(spec.models, spec.label)
    learner_id = settings.group(SERVICE)
    # The scaled layout: predictors serve ``features``; this service learns from what they logged.
    scaled = settings.model.layout == "learner"
    if scaled and (spec.models.task == "anomaly" or spec.models.segment_by):
        raise SpecError("models.task = 'anomaly' and models.segment_by run in one model "
                        "process (no predictor replicas)")
    served: TopicName = "prediction-log" if scaled else "features"
    inputs: list[TopicName] = [served, "labels", "drift-alerts"]
    plumbing = connect(
        SERVICE, settings, inputs, transactional_id=learner_id,
        # Checkpoints can be far larger than the 1 MB default (model-snapshots allows 64 MB).
        producer_overrides={"message.max.bytes": SNAPSHOT_MAX_BYTES,
                            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS},
    )
    if not scaled:
        refuse_beside_predictors(make_admin(settings.kafka), settings.group("predictor"),
                                 settings.topic("features"))
    plumbing.producer.init_transactions(60)
    topics = ModelTopics(
        features=settings.topic(served), labels=settings.topic("labels"),
        predictions=settings.topic("predictions"), outcomes=settings.topic("outcomes"),
        model_events=settings.topic("model-events"), drift_alerts=settings.topic("drift-alerts"),
    )
    metrics = ModelMetrics(plumbing.registry)
    options = settings.model
    releases = ReleasePublisher(
        plumbing.producer, settings.topic("model-releases"), learner_id,
        options.release_interval_seconds, options.release_every_labels,
        options.release_heartbeat_seconds,
        StalenessMetrics(metrics.served_labels_behind, metrics.served_release_age),
        time_share=options.release_time_share,
    ) if scaled else None
    handler = ModelHandler(
        learner, plumbing.producer, topics, plumbing.dead_letters, settings.model, metrics,
        promotion=spec.models.promotion, on_concept_drift=spec.models.on_concept_drift,
        categories=categories_of(spec), releases=releases,
    )
    chain = read_checkpoint_chain(settings.kafka, settings.topic("model-snapshots"), learner_id)
    if chain:
        handler.restore(load_state(chain))
        last = chain[-1]
        log.info("restored checkpoint %d (full %d + %d deltas) of %s v%d: %d labels learned, "
                 "offsets %s", last.sequence, chain[0].sequence, len(chain) - 1, last.model,
                 last.model_version, last.labels_learned, last.offsets)
    offsets = start_offsets(plumbing.consumer, plumbing.producer,
                            [settings.topic(name) for name in inputs],
                            chain[-1].offsets if chain else None)
    # Feature vectors wait for the labels fetched before them in time: the order of learning and
    # predicting then follows timestamps, not how a fetch interleaves the topics.
    aligned = AlignedConsumer(
        plumbing.consumer, topics.features, topics.labels, start=offsets,
        max_wait=settings.model.label_wait_seconds, on_forced=metrics.features_unaligned.inc,
        on_held=metrics.features_held.inc,
    )
    plumbing = replace(plumbing, consumer=cast(Consumer, aligned))

    checkpointer = TransactionalCheckpointer(
        plumbing.producer, plumbing.consumer, settings.topic("model-snapshots"), learner_id,
        handler, interval=(options.learner_commit_interval_seconds if scaled
                           else options.commit_interval_seconds),
        every_labels=settings.model.checkpoint_every_labels,
        time_share=settings.model.checkpoint_time_share, restored=chain,
        max_deltas=settings.model.checkpoint_max_deltas, before_commit=handler.before_commit,
        delta_budget=settings.model.checkpoint_delta_budget, offsets=offsets,
    )
    checkpointer.begin()
    metrics.checkpoint_bytes.set_function(lambda: checkpointer.last_size)
    metrics.checkpoint_full_bytes.set_function(lambda: checkpointer.last_full_size)
    metrics.checkpoint_seconds.set_function(lambda: checkpointer.last_seconds)
    metrics.champion_version.set_function(lambda: learner.champion_version)
    metrics.segments.set_function(lambda: len(handler.learner.segments or ()))
    metrics.segments_evicted.set_function(
        lambda: handler.learner.segments.evicted if handler.learner.segments else 0)
    return serve(
        plumbing, handler, stop,
        details=lambda: {"spec": spec.name, "layout": options.layout,
                         "releases": releases.published if releases else None,
                         "pending": len(handler.pending),
                         "models": [model.name for model in learner.models],
                         "labels_learned": handler.labels_learned,
                         "checkpoints": checkpointer.checkpoints},
        committer=checkpointer,
    )


def main() -> int:
    """Entry point of ``python -m services.model``."""
    settings = ModelSettings()
    configure_logging(SERVICE, settings.log_level)
    processed = run(settings, StopSignal().install())
    log.info("stopped after %d messages", processed)
    return 0
