"""The drift service: watches ``features`` and ``outcomes`` and publishes ``drift-alerts``."""
