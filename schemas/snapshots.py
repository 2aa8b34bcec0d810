"""The compacted ``model-snapshots`` topic: versioned, restorable model state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract


class ModelSnapshot(Contract):
    """One checkpoint of a model service: models, pending store and the offsets they reflect.

    ``state`` is the base64 of the pickled state. ``offsets`` maps ``"topic:partition"`` to the next
    offset to read, so state and offsets are restored together. ``library_versions`` records the
    versions the pickle was written with; a reader refuses incompatible ones.
    """

    schema_version: Literal[1] = 1
    model: str
    model_version: int = Field(ge=1)
    created_at: AwareDatetime
    library_versions: dict[str, str]
    offsets: dict[str, int]
    labels_learned: int = Field(ge=0)
    state: str
