"""Settings of the producer service (``STREAMML_PRODUCER__*`` for its own options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.common.settings import Settings
from services.producer.scenarios.labels import LabelDelay, UniformDelay


class ProducerOptions(BaseModel):
    """Which scenario to stream, how fast, for how long, how it drifts and how labels arrive.

    ``timeline`` is a built-in timeline name or a TOML file (``None``: stationary forever);
    ``truth_path`` is where the run's ground truth is written (``None``: not written).
    ``label_delay`` is the feedback-delay distribution of the labels that are sent; a
    ``late_share`` of them arrives after the spec's feedback window and a ``lost_share`` never.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenario: str = "clicks"
    rate: float = Field(default=50.0, gt=0, le=1_000_000)
    duration_seconds: float | None = Field(default=None, gt=0)
    max_events: int | None = Field(default=None, gt=0)
    seed: int = 7
    explicit_negatives: bool = False
    timeline: str | None = Field(default=None, min_length=1)
    truth_path: Path | None = None
    label_delay: LabelDelay = Field(default_factory=UniformDelay)
    late_share: float = Field(default=0.0, ge=0, le=1)
    lost_share: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _shares_fit(self) -> ProducerOptions:
        if self.late_share + self.lost_share > 1:
            raise ValueError(f"late_share ({self.late_share}) + lost_share ({self.lost_share}) "
                             "is more than 1")
        return self


class ProducerSettings(Settings):
    """Everything the producer service reads at start."""

    metrics_port: int = Field(default=9101, ge=0, le=65535)
    producer: ProducerOptions = Field(default_factory=ProducerOptions)
