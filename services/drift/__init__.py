"""The drift service: watches outcomes (and later features) and publishes ``drift-alerts``."""
