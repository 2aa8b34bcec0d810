"""One model per segment: independent copies of every model, one set per value of a key.

With ``[models] segment_by`` the learner keeps, for each value of that entity key or categorical
field (a device type, a country), its own copy of the champion and of each challenger, built
fresh from the spec when the value is first seen. The copies share the learner's names, roles
and versions: a promotion, a reset or a fresh challenger applies to every segment at once (the
race that decides it is run on all outcomes). At most ``capacity`` segments are kept; the least
recently used one is dropped beyond (counted in :attr:`Segments.evicted`), and a segment seen
again after that starts afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from schemas.features import FeatureVector
from services.model.estimators import build_estimator

if TYPE_CHECKING:
    from services.model.learner import ServedModel


def segment_of(vector: FeatureVector, segment_by: str | None) -> str | None:
    """The segment of ``vector``: its value of the entity key or field ``segment_by`` (as a
    string; a missing value is the segment ``"none"``), or None without segments."""
    if segment_by is None:
        return None
    value = vector.entity.get(segment_by, vector.features.get(segment_by))
    return "none" if value is None else str(value)


class Segments:
    """Per-segment copies of the learner's models, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._copies: OrderedDict[str, list[ServedModel]] = OrderedDict()
        self.evicted = 0
        self.created = 0

    def __len__(self) -> int:
        return len(self._copies)

    def __contains__(self, segment: object) -> bool:
        return segment in self._copies

    def models(self, segment: str, template: list[ServedModel]) -> list[ServedModel]:
        """The models of ``segment`` (made like ``template`` on first sight), champion first."""
        copies = self._copies.get(segment)
        if copies is not None:
            self._copies.move_to_end(segment)
            return copies
        from services.model.learner import ServedModel

        copies = [ServedModel(m.name, build_estimator(m.spec), m.spec, m.version, m.role)
                  for m in template]
        self._copies[segment] = copies
        self.created += 1
        if len(self._copies) > self._capacity:
            self._copies.popitem(last=False)
            self.evicted += 1
        return copies

    def names(self) -> list[str]:
        """The segments kept, least recently used first."""
        return list(self._copies)

    def promote(self, name: str, version: int) -> None:
        """In every segment, ``name`` becomes the champion at ``version``."""
        for copies in self._copies.values():
            index = next(i for i, model in enumerate(copies) if model.name == name)
            winner = copies.pop(index)
            copies[0].role, winner.role, winner.version = "challenger", "champion", version
            copies.insert(0, winner)

    def reset_champion(self, version: int) -> None:
        """In every segment, the champion starts afresh at ``version``."""
        for copies in self._copies.values():
            champion = copies[0]
            champion.estimator, champion.version = build_estimator(champion.spec), version

    def add_fresh(self, fresh: ServedModel) -> None:
        """In every segment, a fresh copy of ``fresh`` replaces any earlier fresh challenger."""
        from services.model.learner import ServedModel

        for segment, copies in self._copies.items():
            self._copies[segment] = [
                model for model in copies if model.role == "champion" or "-fresh-" not in model.name
            ] + [ServedModel(fresh.name, build_estimator(fresh.spec), fresh.spec, fresh.version,
                             fresh.role)]
