"""Prometheus metrics of the model service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.service_metrics import LATENCY_BUCKETS, labelled


class ModelMetrics:
    """Predictions, learning, the pending store and label anomalies. Labels are bounded."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = labelled(Counter(
            "streamml_model_predictions_total", "Predictions published, by model and version.",
            ["model", "version", "role"], registry=registry,
        ))
        self.learned = labelled(Counter(
            "streamml_model_labels_learned_total",
            "Labels learned, by model; timed_out says whether the window closed first.",
            ["model", "timed_out"], registry=registry,
        ))
        self.label_events = labelled(Counter(
            "streamml_model_label_anomalies_total",
            "Labels not learned: duplicate, late (window closed), unknown event, dropped timeout, "
            "evicted (its event left the full pending store before the label was learned), "
            "invalid (its value does not fit the spec's label type).",
            ["kind"], registry=registry,
        ))
        self.segments = Gauge(
            "streamml_model_segments",
            "With [models] segment_by: segments whose models are kept.", registry=registry,
        )
        self.segments_evicted = Gauge(
            "streamml_model_segments_evicted",
            "With [models] segment_by: segments dropped (least recently used) since start.",
            registry=registry,
        )
        self.duplicate_features = Counter(
            "streamml_model_duplicate_feature_vectors_total",
            "Feature vectors for an event already predicted (redelivery); not predicted again.",
            registry=registry,
        )
        self.features_held = Counter(
            "streamml_model_features_held_total",
            "Feature vectors held back until the labels before them in time were read.",
            registry=registry,
        )
        self.features_unaligned = Counter(
            "streamml_model_features_unaligned_total",
            "Held feature vectors let through after the wait for a stalled labels partition.",
            registry=registry,
        )
        self.pending = Gauge(
            "streamml_model_pending_events", "Events waiting for their label.", registry=registry,
        )
        self.early_labels = Gauge(
            "streamml_model_early_labels", "Labels waiting for their event's features.",
            registry=registry,
        )
        self.remembered_ids = labelled(Gauge(
            "streamml_model_remembered_ids",
            "Event ids remembered to recognise redeliveries, duplicates and late labels, by store "
            "(predicted, resolved).", ["store"], registry=registry,
        ))
        self.pending_evicted = Counter(
            "streamml_model_pending_evicted_total",
            "Pending events evicted because the store was full.", registry=registry,
        )
        self.model_changes = labelled(Counter(
            "streamml_model_changes_total",
            "Promotions, champion resets and fresh challengers, by kind.", ["kind"],
            registry=registry,
        ))
        self.champion_version = Gauge(
            "streamml_model_champion_version", "Version of the model serving predictions.",
            registry=registry,
        )
        self.checkpoint_bytes = Gauge(
            "streamml_model_checkpoint_bytes", "Size of the last checkpoint written.",
            registry=registry,
        )
        self.checkpoint_full_bytes = Gauge(
            "streamml_model_checkpoint_full_bytes",
            "Size of the last full checkpoint (the deltas between full ones hold only changes).",
            registry=registry,
        )
        self.checkpoint_seconds = Gauge(
            "streamml_model_checkpoint_seconds",
            "How long the last checkpoint took (snapshot, offsets and transaction commit).",
            registry=registry,
        )
        self.predict_seconds = Histogram(
            "streamml_model_feature_to_prediction_seconds",
            "Time from reading a feature vector to producing its predictions.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.served_labels_behind = Histogram(
            "streamml_model_served_labels_behind",
            "Scaled layout: labels the learner had learned, at a served prediction's place in the "
            "stream, that the release the predictor used had not.",
            buckets=(0, 1, 10, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000),
            registry=registry,
        )
        self.served_release_age = Histogram(
            "streamml_model_served_release_age_seconds",
            "Scaled layout: age of the release a predictor used, when the learner had learned "
            "more than it (0 when not).", buckets=LATENCY_BUCKETS, registry=registry,
        )
