"""Natural labels: after how long reality tells, if it ever does.

A label that is sent arrives inside the spec's feedback window (its delay is drawn from the
configured distribution, truncated to the window), except a ``late_share`` of labels that arrive
after the window closes (``window + d``, ``d`` drawn from the untruncated distribution) and a
``lost_share`` that never arrive. Which labels are sent at all is the scenario's business (for
clicks: clicks only, unless explicit negatives). Every draw comes from the generator passed in.

>>> import random
>>> labels = NaturalLabels(delay=ExponentialDelay(mean=2.0))
>>> 0 < labels.draw_delay(random.Random(1), window_seconds=30.0) < 30.0
True
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_TINY = 1e-12
_MIN_LATENESS_SECONDS = 0.001


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class UniformDelay(_Closed):
    """Delays uniform between ``low`` and ``high`` seconds."""

    distribution: Literal["uniform"] = "uniform"
    low: float = Field(default=0.2, ge=0)
    high: float = Field(default=3.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> UniformDelay:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        return self

    def cdf(self, seconds: float) -> float:
        """P(delay <= seconds)."""
        if self.high == self.low:
            return 1.0 if seconds >= self.low else 0.0
        return min(1.0, max(0.0, (seconds - self.low) / (self.high - self.low)))

    def quantile(self, p: float) -> float:
        """The delay below which a share ``p`` of delays fall."""
        return self.low + p * (self.high - self.low)


class ExponentialDelay(_Closed):
    """Exponential delays with mean ``mean`` seconds."""

    distribution: Literal["exponential"] = "exponential"
    mean: float = Field(default=2.0, gt=0)

    def cdf(self, seconds: float) -> float:
        """P(delay <= seconds)."""
        return 1.0 - math.exp(-max(seconds, 0.0) / self.mean)

    def quantile(self, p: float) -> float:
        """The delay below which a share ``p`` of delays fall."""
        return -self.mean * math.log1p(-min(p, 1.0 - _TINY))


class LognormalDelay(_Closed):
    """Lognormal delays: median ``median`` seconds, ``sigma`` the spread of their logarithm."""

    distribution: Literal["lognormal"] = "lognormal"
    median: float = Field(default=1.5, gt=0)
    sigma: float = Field(default=0.8, gt=0, le=5)

    def cdf(self, seconds: float) -> float:
        """P(delay <= seconds)."""
        if seconds <= 0:
            return 0.0
        return NormalDist(math.log(self.median), self.sigma).cdf(math.log(seconds))

    def quantile(self, p: float) -> float:
        """The delay below which a share ``p`` of delays fall."""
        clipped = min(max(p, _TINY), 1.0 - _TINY)
        return math.exp(NormalDist(math.log(self.median), self.sigma).inv_cdf(clipped))


LabelDelay = Annotated[
    UniformDelay | ExponentialDelay | LognormalDelay, Field(discriminator="distribution")
]
"""A feedback-delay distribution, chosen by its ``distribution`` field."""


def parse_label_delay(text: str) -> LabelDelay:
    """``uniform:LOW:HIGH``, ``exponential:MEAN`` or ``lognormal:MEDIAN:SIGMA`` (seconds).

    >>> parse_label_delay("exponential:3")
    ExponentialDelay(distribution='exponential', mean=3.0)
    """
    name, *numbers = text.split(":")
    names = {"uniform": ("low", "high"), "exponential": ("mean",),
             "lognormal": ("median", "sigma")}
    if name not in names or len(numbers) != len(names[name]):
        raise ValueError(f"label delay {text!r}: expected uniform:LOW:HIGH, exponential:MEAN "
                         "or lognormal:MEDIAN:SIGMA")
    try:
        values = dict(zip(names[name], (float(number) for number in numbers), strict=True))
    except ValueError:
        raise ValueError(f"label delay {text!r}: parameters must be numbers") from None
    if name == "uniform":
        return UniformDelay(**values)
    if name == "exponential":
        return ExponentialDelay(**values)
    return LognormalDelay(**values)


class NaturalLabels(_Closed):
    """How the labels a scenario sends reach the bus: their delay, and shares late and lost."""

    delay: LabelDelay = Field(default_factory=UniformDelay)
    late_share: float = Field(default=0.0, ge=0, le=1)
    lost_share: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _shares_fit(self) -> NaturalLabels:
        if self.late_share + self.lost_share > 1:
            raise ValueError(f"late_share ({self.late_share}) + lost_share ({self.lost_share}) "
                             "is more than 1")
        return self

    def check(self, window_seconds: float) -> None:
        """Raise ``ValueError`` unless some delays fall inside a ``window_seconds`` window."""
        if self.delay.cdf(math.nextafter(window_seconds, 0.0)) <= 0:
            raise ValueError(f"no label delay of {self.delay!r} falls inside the "
                             f"{window_seconds:g}s feedback window")

    def draw_delay(self, rng: random.Random, window_seconds: float) -> float | None:
        """The delay of one label that is sent, in seconds; ``None`` when it is lost.

        On time: ``0 <= delay < window_seconds`` (the distribution truncated to the window).
        Late: ``delay > window_seconds``.
        """
        fate, draw = rng.random(), rng.random()
        if fate < self.lost_share:
            return None
        if fate < self.lost_share + self.late_share:
            return window_seconds + max(self.delay.quantile(draw), _MIN_LATENESS_SECONDS)
        inside = self.delay.cdf(window_seconds)
        if inside <= 0:
            self.check(window_seconds)
        return min(self.delay.quantile(draw * inside), math.nextafter(window_seconds, 0.0))
