"""The metrics sink: predictions, outcomes, alerts and dead letters become Prometheus metrics."""
