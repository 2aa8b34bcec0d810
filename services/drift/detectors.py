"""Concept-drift detection on a model's error stream: pure logic around River's detectors.

Input convention: every River detector here gets the *error* of one outcome, ``1.0`` for a wrong
classification and ``0.0`` for a right one (DDM expects exactly this 0/1 convention). A cooldown
of ``cooldown_observations`` after an alert keeps one drift from becoming a storm of alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from schemas.spec import DetectorSpec


@dataclass(frozen=True)
class Detection:
    """A detector fired: where in its stream, with which statistic and threshold."""

    position: int
    statistic: float
    threshold: float


def build_detector(spec: DetectorSpec) -> Any:
    """A fresh River detector named by ``spec``."""
    from river import drift

    classes = {
        "ADWIN": drift.ADWIN,
        "PageHinkley": drift.PageHinkley,
        "KSWIN": drift.KSWIN,
        "DDM": drift.binary.DDM,
    }
    return classes[spec.detector](**spec.params)


class ErrorStreamMonitor:
    """Feeds one model's error stream to a detector and applies the cooldown."""

    def __init__(self, spec: DetectorSpec) -> None:
        self._spec = spec
        self._detector = build_detector(spec)
        self.position = 0
        self._quiet_until = 0

    def update(self, error: float) -> Detection | None:
        """Add one observation; return a :class:`Detection` if a drift is reported."""
        self.position += 1
        self._detector.update(error)
        if not self._detector.drift_detected or self.position < self._quiet_until:
            return None
        self._quiet_until = self.position + self._spec.cooldown_observations
        return Detection(self.position, *self._statistic())

    def _statistic(self) -> tuple[float, float]:
        detector = self._detector
        if self._spec.detector == "ADWIN":
            return float(detector.estimation), float(self._spec.params.get("delta", 0.002))
        if self._spec.detector == "PageHinkley":
            # The cumulative deviations River tests against its threshold (up, down or both).
            increase = float(detector._sum_increase - detector._min_increase)
            decrease = float(detector._max_decrease - detector._sum_decrease)
            statistic = {"up": increase, "down": decrease}.get(
                detector.mode, max(increase, decrease)
            )
            return statistic, float(detector.threshold)
        if self._spec.detector == "KSWIN":
            return float(getattr(detector, "p_value", 0.0)), float(detector.alpha)
        # DDM fires when p + s exceeds p_min + drift_threshold * s_min: report both sides.
        p_min, s_min = detector._p_min, detector._s_min
        if p_min is None or s_min is None:
            return 0.0, float(detector.drift_threshold)
        p = float(detector._p.get())
        s = math.sqrt(p * (1 - p) / detector._p.n)
        return p + s, float(p_min + detector.drift_threshold * s_min)
