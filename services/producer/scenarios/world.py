"""The hidden world of the clicks scenario: what inputs look like and who clicks.

A :class:`World` is an input mix (which devices, how expensive) and a :class:`Concept` (the hidden
logistic model of a click). Drift phases (:mod:`.timeline`) replace one world by another.

>>> round(World().concept.probability("mobile", 1, 20.0, 12), 3)
0.872
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Device = Literal["mobile", "desktop", "tablet"]
DEVICES: tuple[Device, ...] = ("mobile", "desktop", "tablet")
EVENING = range(18, 23)
"""Hours (18-22) in which the ``evening`` effect applies."""
_DEVICE_EFFECTS: dict[Device, float] = {"mobile": 1.2, "desktop": 0.0, "tablet": -0.8}
_DEVICE_MIX: dict[Device, float] = {"mobile": 0.55, "desktop": 0.35, "tablet": 0.10}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Concept(_Frozen):
    """P(click | inputs) = sigmoid(logit), with

    ``logit = intercept + position * (position - 1) + device[device] + price * price
    + evening * [18 <= hour <= 22]``: by default mobile users and top positions click, expensive
    items don't.
    """

    intercept: float = 0.8
    position: float = -0.45
    device: dict[Device, float] = Field(default_factory=lambda: dict(_DEVICE_EFFECTS))
    price: float = -0.004
    evening: float = 0.6

    @field_validator("device")
    @classmethod
    def _every_device(cls, value: dict[Device, float]) -> dict[Device, float]:
        missing = [device for device in DEVICES if device not in value]
        if missing:
            raise ValueError(f"device effects are missing for {missing}")
        return value

    def logit(self, device: Device, position: int, price: float, hour: int) -> float:
        """The hidden model's log-odds of a click."""
        return (
            self.intercept
            + self.position * (position - 1)
            + self.device[device]
            + self.price * price
            + (self.evening if hour in EVENING else 0.0)
        )

    def probability(self, device: Device, position: int, price: float, hour: int) -> float:
        """The probability of a click."""
        return 1.0 / (1.0 + math.exp(-self.logit(device, position, price, hour)))


class InputMix(_Frozen):
    """How inputs are drawn: device weights, and a factor on the (lognormal) item prices."""

    device_mix: dict[Device, float] = Field(default_factory=lambda: dict(_DEVICE_MIX))
    price_scale: float = Field(default=1.0, gt=0, le=100)

    @field_validator("device_mix")
    @classmethod
    def _weights(cls, value: dict[Device, float]) -> dict[Device, float]:
        if any(weight < 0 for weight in value.values()) or sum(value.values()) <= 0:
            raise ValueError("device weights must be >= 0 and not all 0")
        return {device: value.get(device, 0.0) for device in DEVICES}

    def device_weights(self) -> tuple[float, ...]:
        """Weights in :data:`DEVICES` order (devices not listed weigh 0)."""
        return tuple(self.device_mix[device] for device in DEVICES)


class World(_Frozen):
    """An input mix and a concept: everything a phase of the stream is drawn from."""

    mix: InputMix = Field(default_factory=InputMix)
    concept: Concept = Field(default_factory=Concept)
