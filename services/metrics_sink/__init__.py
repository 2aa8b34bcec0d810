"""The metrics sink: turns predictions, outcomes, alerts and dead letters into Prometheus metrics."""
