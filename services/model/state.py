"""The model handler's checkpointed state: one typed object, pickled whole or as a delta.

:class:`HandlerState` is everything a restored handler needs to continue exactly where the
checkpointed one was. Checkpoints written before it existed pickled the same fields as a dict;
:meth:`HandlerState.of` reads both.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from services.model.learner import ServedModel
from services.model.messages import EarlyLabel
from services.model.pending import BoundedMap, PendingStore
from services.model.promotion import ChallengerRace
from services.model.segments import Segments


@dataclass
class HandlerState:
    """Models, the promotion race, the stores and the clocks of a model handler."""

    models: list[ServedModel]
    champion_version: int
    race: ChallengerRace
    pending: PendingStore
    early: BoundedMap[EarlyLabel]
    predicted: BoundedMap[int]
    resolved: BoundedMap[bool]
    ready: list[tuple[float, float, str]]
    """Labels to learn, as a heap of (label time, event time, event id)."""
    newest_time: float
    newest_feature_time: float
    stream_now: float
    labels_learned: int
    segments: Segments | None = None
    """With ``[models] segment_by``: every segment's models (None in states without it)."""

    @classmethod
    def of(cls, loaded: object) -> HandlerState:
        """A state as unpickled from a checkpoint: this type, or the dict of older ones.
        Raises :class:`TypeError` for anything else, or a dict missing a field."""
        if isinstance(loaded, HandlerState):
            return loaded
        if isinstance(loaded, dict):
            names = {field.name for field in fields(cls) if field.name in loaded
                     or field.default is MISSING}
            missing = names - loaded.keys()
            if missing:
                raise TypeError(f"checkpoint state lacks {', '.join(sorted(missing))}")
            values: dict[str, Any] = {name: loaded[name] for name in names}
            return cls(**values)
        raise TypeError(f"checkpoint state is a {type(loaded).__name__}, not a handler state")
