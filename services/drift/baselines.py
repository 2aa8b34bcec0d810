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
bin. PSI is only reported when both windows hold enough present values for it to be reliable
(:func:`~services.drift.psi.psi_is_reliable`): a mostly missing feature is watched for
missingness only.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from services.drift.psi import bin_index, psi_is_reliable, psi_of_counts, quantile_edges
from services.drift.windows import Finding


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
    """The missing-value check shared by both baselines."""

    def __init__(self, counts: Counter[Hashable], size: int, missing_threshold: float | None):
        self.counts = counts
        self.present = size - counts[Marker.MISSING]
        self._missing_share = counts[Marker.MISSING] / size if size else 0.0
        self._missing_threshold = missing_threshold

    def missing(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        if self._missing_threshold is None:
            return []
        rise = recent.get(Marker.MISSING, 0) / size - self._missing_share
        return [Finding("missing_rate", rise, self._missing_threshold)]

    def psi(self, recent: Mapping[Hashable, int], keys: Sequence[Hashable],
            threshold: float) -> list[Finding]:
        present = sum(recent.get(key, 0) for key in keys)
        if not present or not psi_is_reliable(len(keys), self.present, present, threshold):
            return []
        return [Finding("PSI", psi_of_counts(self.counts, recent, keys), threshold)]


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
    ) -> None:
        """``edges`` fixes the inner bin edges (e.g. ``uniform_edges(0, 1, bins)``); by default
        they are the reference's quantiles."""
        present = [number for number in map(as_number, reference) if number is not None]
        if edges is None:
            edges = quantile_edges(present, bins) if present else ()
        self.edges = edges
        self._threshold = psi_threshold
        self._keys: tuple[Hashable, ...] = tuple(range(len(edges) + 1))
        self._shares = _Shares(Counter(map(self.key, reference)), len(reference),
                               missing_rate_threshold)

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
    ) -> None:
        frequencies = Counter(value for value in reference if value is not None)
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
                               missing_rate_threshold)

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
            findings.append(Finding("new_category", share, self._new_share))
        return [*findings, *self._shares.psi(recent, self._keys, self._threshold)]


class RateBaseline:
    """The rate of true values (a binary label's positive rate) against the reference's."""

    def __init__(self, reference: Sequence[object], *, rate_threshold: float) -> None:
        self.rate = sum(1 for value in reference if value) / len(reference)
        self._threshold = rate_threshold

    def key(self, value: object) -> Hashable:
        """``True`` or ``False``."""
        return bool(value)

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        """``rate_difference``: ``|recent rate - reference rate|``."""
        rate = recent.get(True, 0) / size
        return [Finding("rate_difference", abs(rate - self.rate), self._threshold)]
