"""The pipeline-wide metrics the sink exposes. Labels are bounded: models, kinds, reasons."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.service_metrics import LATENCY_BUCKETS, labelled

LABEL_DELAY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class SinkMetrics:
    """Predictions, outcomes, rolling quality, latency, alerts, model events and dead letters."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = labelled(Counter(
            "streamml_predictions_total", "Predictions seen on the predictions topic.",
            ["model", "version"], registry=registry,
        ))
        self.outcomes = labelled(Counter(
            "streamml_outcomes_total", "Outcomes (prediction joined with its label).",
            ["model", "version", "timed_out"], registry=registry,
        ))
        self.event_to_prediction = labelled(Histogram(
            "streamml_event_to_prediction_seconds",
            "End-to-end latency from event time to prediction.", ["model"],
            buckets=LATENCY_BUCKETS, registry=registry,
        ))
        self.label_delay = labelled(Histogram(
            "streamml_label_delay_seconds", "Time from event to its label (or window end).",
            ["model"], buckets=LABEL_DELAY_BUCKETS, registry=registry,
        ))
        self.rolling_accuracy = labelled(Gauge(
            "streamml_rolling_accuracy_ratio",
            "Accuracy over the last outcomes of each model (window: STREAMML_ACCURACY_WINDOW).",
            ["model"], registry=registry,
        ))
        self.majority_baseline = labelled(Gauge(
            "streamml_rolling_majority_baseline_ratio",
            "Accuracy of always answering the most frequent label, over the same outcomes as "
            "streamml_rolling_accuracy_ratio: what the model must beat.", ["model"],
            registry=registry,
        ))
        self.estimated_accuracy = Gauge(
            "streamml_estimated_accuracy_ratio",
            "Accuracy expected of the champion's predictions still waiting for their labels, "
            "from the confidence of each and how often answers of that confidence were right "
            "lately (blind to concept drift: see the README).", ["model"], registry=registry,
        )
        """Read when scraped (``set_function`` per model); NaN while nothing waits."""
        self.estimate_waiting = Gauge(
            "streamml_estimated_accuracy_waiting",
            "Predictions the estimated accuracy covers: made, with a confidence, and without "
            "an outcome yet.", ["model"], registry=registry,
        )
        self.segment_accuracy = Gauge(
            "streamml_segment_rolling_accuracy_ratio",
            "With [models] segment_by: accuracy over each model's last outcomes in each segment "
            "(the most recently active segments only, at most 50 per model).",
            ["model", "segment"], registry=registry,
        )
        """The gauge itself: a segment's series is removed when it leaves the kept ones."""
        self.rolling_precision = labelled(Gauge(
            "streamml_rolling_precision_ratio",
            "Binary outcomes: share of a model's last predicted positives (an anomaly model's "
            "flags) whose label was positive.", ["model"], registry=registry,
        ))
        self.rolling_recall = labelled(Gauge(
            "streamml_rolling_recall_ratio",
            "Binary outcomes: share of a model's last positive labels (confirmed incidents) it "
            "had predicted positive (flagged).", ["model"], registry=registry,
        ))
        self.score_quantile = Gauge(
            "streamml_prediction_score_quantile",
            "Quantiles of the champion's last scores (an anomaly score, or the positive-class "
            "probability), computed when scraped; q: 0.5, 0.9 or 0.99 (the label name "
            "quantile belongs to summaries).", ["model", "q"], registry=registry,
        )
        self.positive_share = Gauge(
            "streamml_positive_prediction_ratio",
            "Share of the champion's last yes/no predictions that were yes (flagged as "
            "anomalies, for an anomaly model).", ["model"], registry=registry,
        )
        self.rolling_log_loss = labelled(Gauge(
            "streamml_rolling_log_loss",
            "Mean log loss (natural log, probability of the observed class clipped at 1e-15) "
            "over the last classification outcomes of each model.", ["model"], registry=registry,
        ))
        self.rolling_roc_auc = Gauge(
            "streamml_rolling_roc_auc_ratio",
            "ROC AUC of the positive-class score over the last binary outcomes of each model; "
            "absent while that window holds one class only.", ["model"], registry=registry,
        )
        """The gauge itself, not its ``labels``: a model's series is removed while undefined."""
        self.rolling_mae = labelled(Gauge(
            "streamml_rolling_mae",
            "Mean absolute error over the last regression outcomes of each model "
            "(in the target's unit).", ["model"], registry=registry,
        ))
        self.rolling_rmse = labelled(Gauge(
            "streamml_rolling_rmse",
            "Root mean squared error over the last regression outcomes of each model "
            "(in the target's unit).", ["model"], registry=registry,
        ))
        self.label_coverage = labelled(Gauge(
            "streamml_label_coverage_ratio",
            "Share of the last outcomes of each model that had a real label (not a closed "
            "feedback window).", ["model"], registry=registry,
        ))
        self.drift_alerts = labelled(Counter(
            "streamml_drift_alerts_total", "Drift alerts seen, by kind and detector.",
            ["kind", "detector"], registry=registry,
        ))
        self.last_drift_alert = labelled(Gauge(
            "streamml_last_drift_alert_timestamp_seconds", "When the last alert of a kind fired.",
            ["kind"], registry=registry,
        ))
        self.model_events = labelled(Counter(
            "streamml_model_events_total",
            "Promotions, champion resets and fresh challengers, by kind.", ["kind"],
            registry=registry,
        ))
        self.last_model_event = labelled(Gauge(
            "streamml_last_model_event_timestamp_seconds", "When the last model event of a kind "
            "happened (for annotations).", ["kind"], registry=registry,
        ))
        self.champion_version = Gauge(
            "streamml_champion_version", "Version of the champion after the last promotion or "
            "reset (1 until one happens).", registry=registry,
        )
        self.champion_version.set(1)
        self.dead_letters = labelled(Counter(
            "streamml_dead_letters_total", "Dead letters seen, by source topic and reason code.",
            ["source", "reason"], registry=registry,
        ))
