"""Concept-drift detection on a model's error stream: pure logic around River's detectors.

Input convention: every River detector here gets the *error* of one outcome, ``1.0`` for a wrong
classification and ``0.0`` for a right one (DDM expects exactly this 0/1 convention; ADWIN's
bound assumes values in ``[0, 1]``; PageHinkley's threshold is in the same units, a cumulative
excess of errors). A cooldown of ``cooldown_observations`` after an alert keeps one drift from
becoming a storm of alerts.

Direction: with the spec's ``direction = "up"`` (the default) only a *rise* of the error rate is
reported. PageHinkley then runs in River's ``mode="up"``; DDM only ever detects rises; for ADWIN
the mean of the window it keeps after the detection (the recent sub-window W1) is compared with
the mean of the whole window it tested (W0 and W1, so the sign is that of ``mean(W1) -
mean(W0)``); for KSWIN the mean of the recent ``stat_size`` errors with the older part of its
window. A detection of a fall is dropped (River still restarts its window, as after any
detection) and starts no cooldown. ``direction = "both"`` reports every detection.

What a :class:`Detection` reports, per detector (it fires when the statistic passes the
threshold):

* ADWIN: the difference in error rate between the two sub-windows of its most significant cut,
  and ADWIN's cut threshold ``epsilon_cut`` for those sub-window sizes (Bifet & Gavaldà's bound
  with ``delta``). River does not expose the cut, so it is recomputed from ADWIN's window
  totals and the last :data:`ADWIN_HISTORY` errors (older ones form one block).
* PageHinkley: the cumulative deviation River tests, against its ``threshold``.
* DDM: ``p + s`` against ``p_min + drift_threshold * s_min``.
* KSWIN: the Kolmogorov-Smirnov test's p-value against ``alpha`` (it fires *below* it). KSWIN
  gets a fixed ``seed`` unless one is given, so replays raise the same alerts.

Measured on stationary 0/1 error streams (error rates 0.1 and 0.3, 100,000 outcomes each, no
cooldown, default parameters; three streams per rate, one for KSWIN), false alarms per stream
with ``direction = "up"`` (``"both"``): ADWIN 0 (0), DDM 0-1 (0-1), PageHinkley 2-7 (3-9), KSWIN
0-4 (0-8). KSWIN runs a KS test per outcome on 30 binary values, a poor fit for a 0/1 signal,
and it is slow.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from schemas.spec import DetectorSpec

ADWIN_HISTORY = 4096
"""Errors kept to recompute ADWIN's cut statistic."""

KSWIN_SEED = 42
"""KSWIN's seed when the spec gives none."""


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
    params: dict[str, Any] = dict(spec.params)
    if spec.detector == "KSWIN":
        params.setdefault("seed", KSWIN_SEED)
    if spec.detector == "PageHinkley":
        params["mode"] = "up" if spec.direction == "up" else "both"
    return classes[spec.detector](**params)


class ErrorStreamMonitor:
    """Feeds one model's error stream to a detector and applies the cooldown."""

    def __init__(self, spec: DetectorSpec) -> None:
        self._spec = spec
        self._detector = build_detector(spec)
        self.position = 0
        self._quiet_until = 0
        self._adwin = _AdwinCut(self._detector) if spec.detector == "ADWIN" else None

    def update(self, error: float) -> Detection | None:
        """Add one observation; return a :class:`Detection` if a drift in the spec's direction
        is reported outside a cooldown."""
        self.position += 1
        if self._adwin is not None:
            self._adwin.before_update(error)
        # KSWIN replaces its window on a detection: keep the one it tested (``error`` included).
        tested = self._detector.window if self._spec.detector == "KSWIN" else None
        self._detector.update(error)
        if not self._detector.drift_detected or self.position < self._quiet_until:
            return None
        if self._spec.direction == "up" and not self._rose(tested):
            return None
        self._quiet_until = self.position + self._spec.cooldown_observations
        return Detection(self.position, *self._statistic())

    def _rose(self, tested: deque[float] | None) -> bool:
        """Whether the detection just made is a rise of the error rate."""
        if self._adwin is not None:
            return self._adwin.rose()
        if tested is not None:  # KSWIN: the recent errors against the older part of its window
            recent = self._detector.stat_size
            values = list(tested)
            older, newer = values[:-recent], values[-recent:]
            return bool(older) and sum(newer) / len(newer) > sum(older) / len(older)
        return True  # PageHinkley in mode "up", and DDM, only detect rises

    def _statistic(self) -> tuple[float, float]:
        detector = self._detector
        if self._adwin is not None:
            return self._adwin.cut()
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


class _AdwinCut:
    """Mirrors the window River's ADWIN tested when it fired, to report its cut.

    River resets ADWIN on the update after a detection and only drops data when it detects, so
    between detections its window is every error since the last reset; its width, total and sum
    of squared deviations are read before each update.
    """

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self._history: deque[float] = deque(maxlen=ADWIN_HISTORY)
        self._width, self._total, self._squares = 0, 0.0, 0.0

    def before_update(self, value: float) -> None:
        detector = self._detector
        if detector.drift_detected:  # River starts a fresh window with this update
            self._history.clear()
            width, total, squares = 0, 0.0, 0.0
        else:
            width, total, squares = int(detector.width), float(detector.total), float(
                detector.variance)
        if width:  # Welford's update, as ADWIN does it
            squares += width * (value - total / width) ** 2 / (width + 1)
        self._width, self._total, self._squares = width + 1, total + value, squares
        self._history.append(value)

    def rose(self) -> bool:
        """After a detection: whether the mean of the window ADWIN kept (W1) is above the mean of
        the window it tested (W0 and W1), i.e. ``mean(W1) > mean(W0)``."""
        return float(self._detector.estimation) > self._total / self._width

    def cut(self) -> tuple[float, float]:
        """``(|mean(W0) - mean(W1)|, epsilon_cut)`` of the most significant cut of the window
        ADWIN tested; ``(0, inf)`` if it was too short to cut."""
        detector = self._detector
        width, delta = self._width, float(detector.delta)
        shortest = float(detector.min_window_length)
        variance = self._squares / width
        delta_prime = math.log(2 * math.log(width) / delta) if width > 1 else math.inf
        n0 = width - len(self._history)
        u0 = self._total - sum(self._history)
        best: tuple[float, float] = (0.0, math.inf)
        for value in self._history:
            n1 = width - n0
            if n0 >= shortest and n1 >= shortest:
                difference = abs(u0 / n0 - (self._total - u0) / n1)
                m = 1 / (n0 - shortest + 1) + 1 / (n1 - shortest + 1)
                epsilon = math.sqrt(2 * m * variance * delta_prime) + 2 / 3 * delta_prime * m
                if difference - epsilon > best[0] - best[1]:
                    best = (difference, epsilon)
            n0 += 1
            u0 += value
        return best
