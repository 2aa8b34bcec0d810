"""Wiring of a predictor replica: settings -> clients -> first release -> transactional loop."""

from __future__ import annotations

import logging
import time

from schemas.spec import SpecError, load_spec
from services.common.consumer_service import connect, serve
from services.common.kafka import make_admin, make_consumer
from services.common.runtime import StopSignal, configure_logging
from services.common.transactions import TransactionCommitter
from services.model.estimators import categories_of
from services.model.layout import refuse_beside_one_process
from services.model.learner import Learner
from services.predictor.follower import ReleaseFollower
from services.predictor.handler import PredictorHandler, PredictorTopics
from services.predictor.metrics import PredictorMetrics
from services.predictor.settings import PredictorSettings

log = logging.getLogger(__name__)
SERVICE = "predictor"
RELEASE_MAX_BYTES = 64 * 1024 * 1024
WAITING_LOG_SECONDS = 10.0


def run(settings: PredictorSettings, stop: StopSignal) -> int:
    """Serve predictions until stopped; return the number of messages processed.

    Waits for the learner's first release (the model service with ``layout = "learner"``)
    before joining the group, so a replica never holds partitions it cannot serve.
    """
    spec = load_spec(settings.spec)
    if spec.models.task == "anomaly" or spec.models.segment_by:
        raise SpecError("models.task = 'anomaly' and models.segment_by run in one model "
                        "process (no predictor replicas)")
    options = settings.predictor
    group = settings.group(SERVICE)
    plumbing = connect(
        SERVICE, settings, ["features"], transactional_id=f"{group}-{options.replica}",
        consumer_overrides={"session.timeout.ms": options.session_timeout_ms,
                            "heartbeat.interval.ms": max(1000, options.session_timeout_ms // 5)},
        producer_overrides={"transaction.timeout.ms": options.transaction_timeout_ms},
    )
    refuse_beside_one_process(make_admin(settings.kafka), settings.group("model"),
                              settings.topic("features"))
    plumbing.producer.init_transactions(60)
    releases = make_consumer(settings.kafka, f"{group}-{options.replica}-releases",
                             **{"fetch.max.bytes": RELEASE_MAX_BYTES,
                                "receive.message.max.bytes": RELEASE_MAX_BYTES + 1_000_000})
    follower = ReleaseFollower(releases, settings.topic("model-releases"), settings.group("model"),
                               options.release_check_seconds)
    follower.start()
    metrics = PredictorMetrics(plumbing.registry)
    handler = PredictorHandler(
        Learner(spec.models, spec.label), follower, plumbing.producer,
        PredictorTopics(settings.topic("features"), settings.topic("predictions"),
                        settings.topic("prediction-log")),
        metrics, options.max_staleness_seconds, options.remembered_ids, categories_of(spec),
    )
    if not _first_release(follower, handler, stop):
        releases.close()
        return 0
    committer = TransactionCommitter(plumbing.producer, plumbing.consumer,
                                     options.commit_interval_seconds, plumbing.deliveries,
                                     on_commit=handler.committed, on_abort=handler.aborted)
    committer.begin()
    try:
        return serve(
            plumbing, handler, stop, committer=committer,
            details=lambda: {"spec": spec.name, "replica": options.replica,
                             "release_labels": handler.release.labels_learned
                             if handler.release else None,
                             "release_age_seconds": round(handler.release_age(), 1),
                             "stale": handler.stale, "transactions": committer.commits,
                             "transactions_aborted": committer.aborts},
        )
    finally:
        releases.close()


def _first_release(follower: ReleaseFollower, handler: PredictorHandler,
                   stop: StopSignal) -> bool:
    """Wait for a release that loads; False if stopped first."""
    waited_since = time.monotonic()
    while not stop.is_set:
        release = follower.newer(wait=1.0)
        if release is not None and handler.load(release):
            log.info("serving release %d of %s (champion %s v%d)", release.labels_learned,
                     release.learner, release.champion, release.champion_version)
            return True
        if time.monotonic() - waited_since >= WAITING_LOG_SECONDS:
            log.info("waiting for the learner's first release (the model service with "
                     "STREAMML_MODEL__LAYOUT=learner)")
            waited_since = time.monotonic()
    return False


def main() -> int:
    """Entry point of ``python -m services.predictor``."""
    settings = PredictorSettings()
    configure_logging(SERVICE, settings.log_level)
    processed = run(settings, StopSignal().install())
    log.info("stopped after %d messages", processed)
    return 0
