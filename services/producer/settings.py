"""Settings of the producer service (``STREAMML_PRODUCER__*`` for its own options)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.common.settings import Settings


class ProducerOptions(BaseModel):
    """Which scenario to stream, how fast and for how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str = "clicks"
    rate: float = Field(default=50.0, gt=0, le=1_000_000)
    duration_seconds: float | None = Field(default=None, gt=0)
    max_events: int | None = Field(default=None, gt=0)
    seed: int = 7
    explicit_negatives: bool = False


class ProducerSettings(Settings):
    """Everything the producer service reads at start."""

    metrics_port: int = Field(default=9101, ge=0, le=65535)
    producer: ProducerOptions = Field(default_factory=ProducerOptions)
