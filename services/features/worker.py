"""Entry point of the features service: settings -> topics -> faust app -> faust worker."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from schemas.spec import load_spec
from schemas.topics import PIPELINE_PARTITIONS
from services.common.kafka import create_missing_topics, make_admin, wait_for_broker
from services.common.metrics_server import Health, MetricsServer
from services.common.runtime import announce_ready, configure_logging
from services.common.topic_admin import broker_count
from services.common.topic_layout import replicated, replication_for
from services.features.app import SERVICE, build_app, primary_stage
from services.features.metrics import FeaturesMetrics
from services.features.pipeline import plan_stages
from services.features.settings import FeaturesSettings
from services.features.topology import check_partitions, internal_topics, partition_count


class _Worker(faust.Worker):
    """A faust worker that calls ``on_ready`` once tables are recovered and it runs.

    It keeps the service's logging as configured: faust's own setup would add a terminal spinner
    that lowers the root logger to DEBUG, so every debug call of faust and aiokafka would build
    a log record (about a tenth of the worker's time when busy).
    """

    def __init__(self, app: faust.App, on_ready: Callable[[], None], **options: Any) -> None:
        super().__init__(app, override_logging=False, **options)
        self.spinner = None
        self._on_ready = on_ready

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        self._on_ready()


def main() -> int:
    """Read settings, create the internal topics, serve metrics, run the faust worker.

    The internal topics and changelogs are created before the worker subscribes: faust declares
    them itself too, but a subscription made before the broker's metadata lists a new topic
    silently leaves its partitions unassigned. They get as many partitions as ``events``; an
    existing one with another count stops the service with a clear message. They are replicated
    as the cluster can carry, or as ``STREAMML_TOPICS__*`` say
    (:func:`~services.common.topic_layout.replication_for`); an existing one with weaker
    settings is reported in the log. faust's data
    directory (unused by in-memory tables, but created) is a temporary one, removed at exit.
    """
    settings = FeaturesSettings()
    configure_logging(SERVICE, settings.log_level)
    spec = load_spec(settings.spec)
    registry = CollectorRegistry()
    metrics = FeaturesMetrics(registry)
    wait_for_broker(settings.kafka)
    admin = make_admin(settings.kafka)
    partitions = partition_count(admin, settings.topic("events")) or PIPELINE_PARTITIONS
    replication = replication_for(broker_count(admin), settings.topics)
    stages = plan_stages(spec, settings.features.remember_events)
    wanted = replicated(internal_topics(settings.group(SERVICE), stages,
                                        primary_stage(spec, stages), partitions), replication)
    check_partitions(admin, wanted)
    create_missing_topics(settings.kafka, wanted)
    # faust declares topics of its own too (its leader topic): with the same replication.
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(
        update={"replication_factor": replication.factor})})
    with tempfile.TemporaryDirectory(prefix=f"{SERVICE}-") as datadir:
        app = build_app(settings, spec, metrics, partitions=partitions, datadir=datadir)
        return _run(app, settings, spec.name, metrics, registry)


def _run(app: faust.App, settings: FeaturesSettings, spec: str, metrics: FeaturesMetrics,
         registry: CollectorRegistry) -> int:
    """Serve metrics and health, run the faust worker until it stops; its exit code."""
    started = time.monotonic()

    def health() -> Health:
        running = bool(app.started) if hasattr(app, "started") else True
        return Health(ok=running, details={"service": SERVICE, "spec": spec,
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
