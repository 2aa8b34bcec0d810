"""What a shift monitor compares: baselines fitted on a reference sample (see ``windows.py``).

* :class:`NumericBaseline`: PSI over bins fixed from the reference (quantile edges, or equal
  widths on a known range such as ``[0, 1]``), over the values present.
* :class:`CategoricalBaseline`: PSI over the reference's categories (the ``bins - 1`` most
  frequent ones and one *other* bin for the rest when there are more), over the values present.
* :class:`RateBaseline`: the absolute difference of a binary rate (a label's positive rate).

Two schema checks come before PSI when enabled, so the alert names the clearer cause:
``missing_rate`` (the recent share of missing values minus the reference's, against
``missing_rate_threshold``) and ``new_category`` (the share of present recent values never seen in
the reference, against ``new_category_share``); without the latter, unseen values are one more PSI
bin.

**Calibrated thresholds.** Each statistic is compared with the larger of two thresholds: the
spec's (the smallest change worth an alert) and the level that sampling noise alone crosses with
probability at most ``alpha`` per check, for these window sizes, so that a stationary stream of
independent observations raises a false alarm once in ``1 / alpha`` checks at most (the drift
service sets ``alpha`` from the spec's expected run length, :mod:`services.drift.budget`):

* PSI: Laurent and Massart's chi-square bound (:func:`~services.drift.psi.psi_noise_threshold`).
  PSI gives no verdict at all while a side holds so few present values that the spec's
  threshold is within the noise (:data:`RELIABLE_ALPHA`): a mostly missing feature is watched
  for missingness only;
* ``missing_rate`` and ``rate_difference``: a two-proportion z-test on the pooled rate (one-sided
  for a rise of missing values, two-sided for a label rate);
* ``new_category``: the share of values never seen in the reference that stationarity predicts
  (Good and Turing's estimate: the share of the reference's values seen there only once) plus its
  z-bound, so a long-tailed categorical (ids, free text) does not alert on its own tail.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from statistics import NormalDist

from services.drift.psi import bin_index, psi_noise_threshold, psi_of_counts, quantile_edges
from services.drift.windows import Finding

DEFAULT_ALPHA = 1e-6
"""The per-check false-alarm probability of a baseline not given one."""

DEFAULT_ALPHA_PER_OBSERVATION = 1e-8
"""A monitored statistic's false-alarm probability per observation when none is given: the
default run length (10 million events) shared among ten statistics (see
:mod:`services.drift.budget`)."""

RELIABLE_ALPHA = 1e-6
"""PSI gives no verdict on samples so small that noise would cross the spec's threshold with a
probability above this (few values per bin, where its chi-square approximation fails too)."""


def upper_normal_quantile(alpha: float) -> float:
    """``z`` with ``P(Z > z) = alpha`` for a standard normal ``Z``."""
    return NormalDist().inv_cdf(1 - alpha)


def proportion_noise(hits: int, n_reference: int, recent_hits: int, n_recent: int,
                     z: float) -> float:
    """``z`` standard errors of the difference of two proportions under no change (pooled)."""
    if n_reference < 1 or n_recent < 1:
        return math.inf
    pooled = (hits + recent_hits) / (n_reference + n_recent)
    return z * math.sqrt(pooled * (1 - pooled) * (1 / n_reference + 1 / n_recent))


class Marker(enum.Enum):
    """Keys that are not a bin or category of their own."""

    MISSING = "missing"
    OTHER = "other"
    UNSEEN = "unseen"


def as_number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` for a missing (or non-numeric) value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class _Shares:
    """The missing-value and PSI checks shared by both baselines."""

    def __init__(self, counts: Counter[Hashable], size: int, missing_threshold: float | None,
                 alpha: float):
        self.counts = counts
        self.size = size
        self.present = size - counts[Marker.MISSING]
        self._missing_share = counts[Marker.MISSING] / size if size else 0.0
        self._missing_threshold = missing_threshold
        self.alpha = alpha
        self.z = upper_normal_quantile(alpha)

    def missing(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        if self._missing_threshold is None:
            return []
        missing = recent.get(Marker.MISSING, 0)
        rise = missing / size - self._missing_share
        noise = proportion_noise(self.counts[Marker.MISSING], self.size, missing, size, self.z)
        return [Finding("missing_rate", rise, max(self._missing_threshold, noise))]

    def psi(self, recent: Mapping[Hashable, int], keys: Sequence[Hashable],
            threshold: float) -> list[Finding]:
        present = sum(recent.get(key, 0) for key in keys)
        if psi_noise_threshold(len(keys), self.present, present, RELIABLE_ALPHA) > threshold:
            return []  # too few values for the chi-square approximation: no verdict
        noise = psi_noise_threshold(len(keys), self.present, present, self.alpha)
        return [Finding("PSI", psi_of_counts(self.counts, recent, keys), max(threshold, noise))]


class NumericBaseline:
    """PSI of numbers over bins fixed by the reference; non-numbers count as missing."""

    def __init__(
        self,
        reference: Sequence[object],
        *,
        bins: int,
        psi_threshold: float,
        edges: tuple[float, ...] | None = None,
        missing_rate_threshold: float | None = None,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        """``edges`` fixes the inner bin edges (e.g. ``uniform_edges(0, 1, bins)``); by default
        they are the reference's quantiles. ``alpha``: each statistic's false-alarm probability
        per check."""
        present = [number for number in map(as_number, reference) if number is not None]
        if edges is None:
            edges = quantile_edges(present, bins) if present else ()
        self.edges = edges
        self._threshold = psi_threshold
        self._keys: tuple[Hashable, ...] = tuple(range(len(edges) + 1))
        self._shares = _Shares(Counter(map(self.key, reference)), len(reference),
                               missing_rate_threshold, alpha)

    def key(self, value: object) -> Hashable:
        """The bin index of a number, :attr:`Marker.MISSING` otherwise."""
        number = as_number(value)
        return Marker.MISSING if number is None else bin_index(self.edges, number)

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        """``missing_rate`` (if enabled), then ``PSI`` (if reliable)."""
        return [*self._shares.missing(recent, size),
                *self._shares.psi(recent, self._keys, self._threshold)]


class CategoricalBaseline:
    """PSI of categories (any hashable value; ``None`` is missing) against the reference's."""

    def __init__(
        self,
        reference: Sequence[object],
        *,
        bins: int,
        psi_threshold: float,
        missing_rate_threshold: float | None = None,
        new_category_share: float | None = None,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        frequencies = Counter(value for value in reference if value is not None)
        present = sum(frequencies.values())
        seen_once = sum(1 for count in frequencies.values() if count == 1)
        self.unseen_share = seen_once / present if present else 0.0
        """Good and Turing's estimate of the share of values never seen in the reference."""
        self._present_reference = present
        self.seen = frozenset(frequencies)
        kept = [category for category, _ in frequencies.most_common()]
        if len(kept) > bins:
            kept = kept[: bins - 1]
        self.categories = frozenset(kept)
        self._threshold = psi_threshold
        self._new_share = new_category_share
        keys: list[Hashable] = sorted(kept, key=str)
        if len(self.categories) < len(self.seen):
            keys.append(Marker.OTHER)
        if new_category_share is None:
            keys.append(Marker.UNSEEN)
        self._keys = tuple(keys)
        self._shares = _Shares(Counter(map(self.key, reference)), len(reference),
                               missing_rate_threshold, alpha)

    def key(self, value: object) -> Hashable:
        """The category itself, or :class:`Marker` ``MISSING``, ``OTHER`` or ``UNSEEN``."""
        if value is None:
            return Marker.MISSING
        if not isinstance(value, Hashable):
            return Marker.UNSEEN
        if value in self.categories:
            return value
        return Marker.OTHER if value in self.seen else Marker.UNSEEN

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        """``missing_rate``, ``new_category`` (if enabled), then ``PSI`` (if reliable)."""
        findings = self._shares.missing(recent, size)
        present = size - recent.get(Marker.MISSING, 0)
        if self._new_share is not None and present:
            share = recent.get(Marker.UNSEEN, 0) / present
            findings.append(Finding("new_category", share, max(
                self._new_share, self._expected_unseen(present))))
        return [*findings, *self._shares.psi(recent, self._keys, self._threshold)]

    def _expected_unseen(self, present: int) -> float:
        """The unseen share that ``present`` recent values reach by chance with probability at
        most ``alpha`` when nothing changed (at least one value's worth of the reference)."""
        share = max(self.unseen_share, 1 / max(1, self._present_reference))
        return share + self._shares.z * math.sqrt(share * (1 - share) / present)


class RateBaseline:
    """The rate of true values (a binary label's positive rate) against the reference's."""

    def __init__(self, reference: Sequence[object], *, rate_threshold: float,
                 alpha: float = DEFAULT_ALPHA) -> None:
        self._hits = sum(1 for value in reference if value)
        self._size = len(reference)
        self.rate = self._hits / self._size
        self._threshold = rate_threshold
        self._z = upper_normal_quantile(alpha / 2)  # a change either way

    def key(self, value: object) -> Hashable:
        """``True`` or ``False``."""
        return bool(value)

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        """``rate_difference``: ``|recent rate - reference rate|``."""
        hits = recent.get(True, 0)
        noise = proportion_noise(self._hits, self._size, hits, size, self._z)
        return [Finding("rate_difference", abs(hits / size - self.rate),
                        max(self._threshold, noise))]
