"""Prometheus metrics of a predictor replica."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.service_metrics import LATENCY_BUCKETS, labelled


class PredictorMetrics:
    """Predictions served, and the release they were served with."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = labelled(Counter(
            "streamml_predictor_predictions_total", "Predictions published, by model and version.",
            ["model", "version"], registry=registry,
        ))
        self.duplicate_features = Counter(
            "streamml_predictor_duplicate_feature_vectors_total",
            "Feature vectors for an event this replica already predicted; not predicted again.",
            registry=registry,
        )
        self.release_labels = Gauge(
            "streamml_predictor_release_labels",
            "Labels the learner had learned when it made the release being served.",
            registry=registry,
        )
        self.release_age = Gauge(
            "streamml_predictor_release_age_seconds",
            "Age of the newest release this replica has (the learner sends one at least every "
            "release_heartbeat_seconds).", registry=registry,
        )
        self.stale = Gauge(
            "streamml_predictor_stale",
            "1 while the newest release is older than max_staleness_seconds.", registry=registry,
        )
        self.release_loads = labelled(Counter(
            "streamml_predictor_release_loads_total",
            "Releases read, by outcome (loaded, refused: written by incompatible libraries).",
            ["outcome"], registry=registry,
        ))
        self.predict_seconds = Histogram(
            "streamml_predictor_feature_to_prediction_seconds",
            "Time from reading a feature vector to producing its prediction.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
