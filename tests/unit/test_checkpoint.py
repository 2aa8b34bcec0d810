"""Checkpoint payloads: state round-trips, and snapshots from other library versions are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from river import linear_model

from schemas.codec import decode, encode
from schemas.snapshots import ModelSnapshot
from services.model.checkpoint import (
    SnapshotIncompatible,
    check_compatible,
    dump_state,
    library_versions,
    load_state,
)


def snapshot(state: dict[str, object], versions: dict[str, str]) -> ModelSnapshot:
    return ModelSnapshot(
        model="logreg", model_version=1, created_at=datetime(2026, 1, 1, tzinfo=UTC),
        library_versions=versions, offsets={"features:0": 10}, labels_learned=3,
        state=dump_state(state),
    )


def test_a_trained_model_survives_the_snapshot_round_trip() -> None:
    model: Any = linear_model.LogisticRegression()
    for n in range(50):
        model.learn_one({"x": n % 7, "y": n % 3}, n % 2 == 0)
    wire = encode(snapshot({"model": model, "labels": 50}, library_versions()))
    restored = load_state(decode(ModelSnapshot, wire))
    assert restored["labels"] == 50
    probe = {"x": 3.0, "y": 1.0}
    assert restored["model"].predict_proba_one(probe) == model.predict_proba_one(probe)


@pytest.mark.parametrize("changed", ["river", "python", "state_format"])
def test_a_snapshot_from_other_library_versions_is_refused_with_a_clear_error(
    changed: str,
) -> None:
    versions = dict(library_versions())
    versions[changed] = "0.1"
    with pytest.raises(SnapshotIncompatible, match=changed) as raised:
        load_state(snapshot({"model": None}, versions))
    assert "start fresh" in str(raised.value)


def test_patch_releases_are_compatible() -> None:
    current = library_versions()
    patched = {**current, "river": current["river"] + ".9"}
    check_compatible(patched, current)
