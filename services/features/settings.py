"""Settings of the features service (``STREAMML_FEATURES__*`` for its own options)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from services.common.settings import Settings
from services.features.validation import Limits


class FeaturesOptions(BaseModel):
    """Validation bounds and worker options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_event_bytes: int = Field(default=64 * 1024, gt=0)
    max_future_seconds: float = Field(default=300.0, ge=0)
    max_past_seconds: float = Field(default=30 * 24 * 3600.0, ge=0)
    commit_interval_seconds: float = Field(default=1.0, gt=0)
    remember_events: int = Field(default=32, ge=1, le=10_000)
    """Recent events per entity whose aggregates are kept, so redeliveries are not re-counted."""
    fetch_max_wait_ms: int = Field(default=5, ge=1, le=1500)
    """Longest a fetch waits for new records: bounds the delay a record can sit on the broker
    while the consumer's one fetch in flight waits on other partitions (see ``transport``)."""
    fetch_min_bytes: int = Field(default=1, ge=1, le=10_000_000)
    """Bytes a fetch waits for (up to ``fetch_max_wait_ms``) before the broker answers: fewer,
    larger fetches for a little latency."""
    linger_ms: int = Field(default=0, ge=0, le=1000)
    """How long the producer waits to fill a batch; batches also fill while one is in flight."""
    max_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=900_000)
    """Producer batch size per partition. The producer keeps one batch per partition and has one
    request in flight, so small batches make a burst (a checkpoint of many entity states) wait
    for one round trip per batch."""

    def limits(self) -> Limits:
        """The validation limits these options describe."""
        return Limits(
            max_bytes=self.max_event_bytes,
            max_future=timedelta(seconds=self.max_future_seconds),
            max_past=timedelta(seconds=self.max_past_seconds),
        )


class FeaturesSettings(Settings):
    """Everything the features service reads at start."""

    metrics_port: int = Field(default=9102, ge=0, le=65535)
    features: FeaturesOptions = Field(default_factory=FeaturesOptions)
