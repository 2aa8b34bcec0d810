"""The compacted ``model-snapshots`` topic: versioned, restorable model state."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract


class ModelSnapshot(Contract):
    """One checkpoint of a model service: models, pending store and the offsets they reflect.

    ``state`` is the base64 of the pickled state: whole in a *full* checkpoint (key: the learner
    id), only what changed since the checkpoint before it in a *delta* (key:
    ``<learner id>/delta/<sequence>``). Restoring takes the newest full checkpoint and applies
    its deltas in sequence order; a new full checkpoint tombstones the deltas it supersedes.
    ``offsets`` maps ``"topic:partition"`` to the next offset to read, so state and offsets are
    restored together. ``library_versions`` records the versions the pickle was written with; a
    reader refuses incompatible ones.
    """

    schema_version: Literal[1] = 1
    model: str
    model_version: int = Field(ge=1)
    created_at: AwareDatetime
    library_versions: dict[str, str]
    offsets: dict[str, int]
    labels_learned: int = Field(ge=0)
    state: str
    sequence: int = Field(default=0, ge=0)
    """This checkpoint's number in its learner's series, counting up from the first."""
    base_sequence: int | None = Field(default=None, ge=0)
    """None for a full checkpoint; for a delta, the sequence of the full one it builds on."""


class DriftSnapshot(Contract):
    """One checkpoint of the drift service: every monitor's state and the offsets it reflects.

    Key: the drift service's consumer group. ``state`` is the base64 of the compressed, pickled
    monitors; ``offsets`` maps ``"topic:partition"`` to the next offset to read, committed with
    it in one transaction. ``settings_fingerprint`` identifies the drift and label settings the
    monitors were built with: a restart with other settings starts fresh monitors.
    """

    schema_version: Literal[1] = 1
    created_at: AwareDatetime
    library_versions: dict[str, str]
    settings_fingerprint: str
    offsets: dict[str, int]
    observations: int = Field(ge=0)
    """Feature vectors and outcomes the monitors had taken in."""
    alerts_raised: int = Field(ge=0)
    state: str
