"""PSI of probabilities over a *soft* histogram: each value shared between two bin centres.

A model's scores are often a few point masses (a categorical input gives one score per
combination of values), and a point mass sitting on a bin edge jumps between two bins as the
model learns by a hair: with hard bins that is a PSI of several units, an alert, although the
scores hardly moved. Here a value ``v`` of ``[0, 1]`` is split between the two nearest of the
``bins`` bin centres (``(i + 0.5) / bins``) in proportion to its distance from each (linear
binning), so a score that moves by ``d`` moves a share ``d * bins`` of its mass, and PSI moves
with the scores instead of with the edges. A real shift (scores moving by a bin width or more)
gives the same PSI as with hard bins.

Each observation's key is ``(bin, fraction)``: the lower of its two bins and the share it gives
the upper one, in steps of ``1 / RESOLUTION``; the histogram is rebuilt from the key counts at a
check, so the recent window stays a counter of a bounded number of keys.

The noise threshold is the hard histogram's (:func:`~services.drift.psi.psi_noise_threshold`):
spreading each value over two bins only averages counts, so sampling noise is no larger.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

from services.drift.baselines import RELIABLE_ALPHA, as_number
from services.drift.psi import psi, psi_noise_threshold
from services.drift.windows import Finding

RESOLUTION = 20
"""Steps of a value's share between its two bins."""


def soft_key(value: float, bins: int) -> tuple[int, int]:
    """``(lower bin, steps of 1/RESOLUTION given to the bin above)`` of a value in ``[0, 1]``
    (values outside are clipped to it)."""
    position = min(max(value, 0.0), 1.0) * bins - 0.5
    lower = math.floor(position)
    if lower < 0:
        return 0, 0
    if lower >= bins - 1:
        return bins - 1, 0
    steps = round((position - lower) * RESOLUTION)
    return (lower + 1, 0) if steps == RESOLUTION else (lower, steps)


def soft_histogram(counts: Mapping[Hashable, int], bins: int) -> list[float]:
    """The mass of each bin, from the counts of :func:`soft_key` keys (other keys ignored)."""
    mass = [0.0] * bins
    for key, count in counts.items():
        if not isinstance(key, tuple):
            continue
        lower, steps = key
        share = steps / RESOLUTION
        mass[lower] += count * (1 - share)
        if steps:
            mass[lower + 1] += count * share
    return mass


class ProbabilityBaseline:
    """PSI of probabilities over ``bins`` soft bins of ``[0, 1]``; non-numbers are ignored."""

    def __init__(self, reference: Sequence[object], *, bins: int, psi_threshold: float,
                 alpha: float) -> None:
        self.bins = bins
        self._threshold = psi_threshold
        self._alpha = alpha
        self._reference = soft_histogram(Counter(map(self.key, reference)), bins)
        self._present = sum(self._reference)

    def key(self, value: object) -> Hashable:
        """:func:`soft_key` of a number, ``None`` otherwise."""
        number = as_number(value)
        return None if number is None else soft_key(number, self.bins)

    def compare(self, recent: Mapping[Hashable, int], size: int) -> list[Finding]:
        """``PSI`` of the soft histograms (none while either side is too small for a verdict)."""
        mass = soft_histogram(recent, self.bins)
        present = sum(mass)
        n_reference, n_recent = round(self._present), round(present)
        if psi_noise_threshold(self.bins, n_reference, n_recent, RELIABLE_ALPHA) > self._threshold:
            return []
        noise = psi_noise_threshold(self.bins, n_reference, n_recent, self._alpha)
        value = psi([share / self._present for share in self._reference],
                    [share / present for share in mass])
        return [Finding("PSI", value, max(self._threshold, noise))]
