"""A reference window against a sliding recent window, with the cooldown and re-base rule.

:class:`ShiftWindows` is the mechanics every shift monitor shares (covariate, label, prediction);
what it compares is a :class:`Baseline` fitted on the reference. Its life, in observations:

0. **warm-up**: the first ``warmup`` observations are only counted (a learning model's first
   scores, for instance).
1. **reference**: the next ``reference_size`` observations are kept raw; then the baseline is
   fitted on them (bin edges, reference histogram) and they are dropped.
2. **monitoring**: each observation's bin key enters the recent window (the last
   ``window_size`` keys, disjoint from the reference). Once it is full, every ``check_every``-th
   observation (by position) is a check: the baseline's findings, in order; the first one over
   its threshold is the alert.
3. **cooldown**: after an alert nothing is checked until ``cooldown_observations`` and
   ``reference_size`` observations have arrived since it; the last ``reference_size`` of them
   become the new reference (re-base) and monitoring starts again with an empty recent window.
   So one change gives one alert, and a persistent new regime becomes the new normal.

A **trailing** reference (``trailing=True``) follows the stream instead of staying where it was
fitted: every ``window_size`` observations of monitoring, the baseline is re-fitted on the
``reference_size`` observations just before the recent window, and the recent window is re-keyed
on it. The comparison is then between the last ``window_size`` observations and the ones before
them: slow, periodic change (seasons, a model's scores sharpening as it learns) moves both sides
together and is not drift, while a change faster than ``window_size`` observations is found as
quickly as with a fixed reference (the reference is always from before the recent window). A
change slower than that is not found: it is what the setting asks for.

A **settling** monitor (``settle=True``, for a learning model's scores) does not take its first
reference as the normal: until the recent window has once turned over (``window_size``
observations) with no check firing, a check that fires starts the reference again instead of
alerting. The warm-up so lasts as long as the scores keep moving, however long that is.

Memory is bounded by ``reference_size`` raw values plus ``window_size`` keys (plus
``window_size`` raw values when trailing).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from schemas.alerts import DriftKind
from schemas.spec_drift import ShiftSpec

V = TypeVar("V")
V_contra = TypeVar("V_contra", contravariant=True)


@dataclass(frozen=True)
class Finding:
    """One statistic of a check against its threshold; it fires when it exceeds it."""

    detector: str
    statistic: float
    threshold: float

    @property
    def fired(self) -> bool:
        """Whether the statistic is beyond the threshold."""
        return self.statistic > self.threshold


@dataclass(frozen=True)
class Check:
    """What one check found at ``position`` (observations seen), and the alert if any."""

    position: int
    findings: tuple[Finding, ...]
    alert: Finding | None


@dataclass(frozen=True)
class Signal:
    """A check of one monitored target, ready to become metrics and an alert.

    ``target`` names what was watched (``feature:price``, ``label_rate``, ``score:<model>``);
    ``metric_target`` drops the model name (``score``) so metric labels stay bounded.
    """

    kind: DriftKind
    target: str
    model: str | None
    check: Check

    @property
    def metric_target(self) -> str:
        """The target without its model name, for metric labels."""
        return self.target.partition(":")[0] if self.model is not None else self.target


class Baseline(Protocol[V_contra]):
    """What a monitor compares against, fitted once on a reference sample."""

    def key(self, value: V_contra) -> Hashable:
        """The bin (or category, or marker such as *missing*) of one observation."""

    def compare(self, recent: Mapping[Hashable, int], size: int) -> Sequence[Finding]:
        """The findings for a recent window of ``size`` observations with these key counts,
        in priority order (the first that fires is the alert)."""


Phase = Literal["reference", "monitoring", "cooldown"]


class ShiftWindows(Generic[V]):
    """Reference vs recent window of one target; see the module docstring for the rules."""

    def __init__(
        self,
        fit: Callable[[Sequence[V]], Baseline[V]],
        reference_size: int,
        window_size: int,
        check_every: int,
        cooldown_observations: int,
        warmup: int = 0,
        trailing: bool = False,
        settle: bool = False,
    ) -> None:
        if min(reference_size, window_size, check_every) < 1 or cooldown_observations < 0:
            raise ValueError("window sizes and check_every must be positive")
        self._fit = fit
        self._reference_size = reference_size
        self._window_size = window_size
        self._check_every = check_every
        self._quiet_for = max(cooldown_observations, reference_size)
        self._warmup = warmup
        self._trailing = trailing
        self.settled = not settle
        """Whether checks may alert (see *settling* in the module docstring)."""
        self._passing_since: int | None = None
        self.position = 0
        """Observations seen."""
        self.alerts = 0
        self.phase: Phase = "reference"
        self.baseline: Baseline[V] | None = None
        self._raw: deque[V] = deque(maxlen=reference_size + (window_size if trailing else 0))
        self._recent: deque[Hashable] = deque()
        self._counts: Counter[Hashable] = Counter()
        self._alerted_at = 0
        self._fitted_at = 0

    @classmethod
    def for_spec(cls, fit: Callable[[Sequence[V]], Baseline[V]],
                 spec: ShiftSpec) -> ShiftWindows[V]:
        """The windows a spec section describes, comparing with what ``fit`` makes."""
        return cls(fit, spec.reference_size, spec.window_size, spec.check_every,
                   spec.cooldown_observations, spec.warmup_observations,
                   trailing=spec.reference == "trailing", settle=spec.warmup_observations > 0)

    def update(self, value: V) -> Check | None:
        """Add one observation; return the :class:`Check` if one was due."""
        self.position += 1
        if self.position <= self._warmup:
            return None
        if self.phase != "monitoring":
            self._raw.append(value)
            if self._reference_complete():
                self._rebase()
            return None
        baseline = self.baseline
        if baseline is None:
            raise RuntimeError("monitoring without a baseline")
        if self._trailing:
            self._raw.append(value)
            if self.position - self._fitted_at >= self._window_size:
                baseline = self._refit_trailing()
        key = baseline.key(value)
        self._recent.append(key)
        self._counts[key] += 1
        if len(self._recent) > self._window_size:
            old = self._recent.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        if len(self._recent) < self._window_size or self.position % self._check_every:
            return None
        findings = tuple(baseline.compare(self._counts, len(self._recent)))
        alert = next((finding for finding in findings if finding.fired), None)
        if not self.settled:
            return self._settling_check(findings, alert is None)
        if alert is not None:
            self.alerts += 1
            self.phase, self._alerted_at = "cooldown", self.position
            self._raw.clear()
        return Check(self.position, findings, alert)

    def _settling_check(self, findings: tuple[Finding, ...], passed: bool) -> Check:
        """A check while settling: it never alerts; one that would have starts a new reference."""
        if passed:
            if self._passing_since is None:
                self._passing_since = self.position
            self.settled = self.position - self._passing_since >= self._window_size
        else:
            self.phase, self._passing_since = "reference", None
            self._raw.clear()
        return Check(self.position, findings, None)

    def _reference_complete(self) -> bool:
        if self.phase == "reference":
            return len(self._raw) == self._reference_size
        return self.position - self._alerted_at >= self._quiet_for

    def _rebase(self) -> None:
        self.baseline = self._fit(list(self._raw)[-self._reference_size:])
        self._fitted_at = self.position
        if not self._trailing:
            self._raw.clear()  # a trailing reference keeps them: they lead into the next one
        self._recent.clear()
        self._counts.clear()
        self.phase = "monitoring"

    def _refit_trailing(self) -> Baseline[V]:
        """Fit on the ``reference_size`` values before the last ``window_size - 1`` (the recent
        window once ``value``, the newest raw value, joins it) and re-key those."""
        raw = list(self._raw)
        recent = raw[-self._window_size:-1] if self._window_size > 1 else []
        reference = raw[: len(raw) - len(recent) - 1][-self._reference_size:]
        baseline = self.baseline = self._fit(reference)
        self._fitted_at = self.position
        self._recent = deque(map(baseline.key, recent))
        self._counts = Counter(self._recent)
        return baseline
