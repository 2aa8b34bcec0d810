"""The model handler's checkpointed state is read from the typed object or an older dict."""

from __future__ import annotations

import pytest

from schemas.spec import PromotionSpec
from services.model.pending import BoundedMap, PendingStore
from services.model.promotion import ChallengerRace
from services.model.state import HandlerState


def _state() -> HandlerState:
    return HandlerState(
        models=[], champion_version=3, race=ChallengerRace(PromotionSpec()),
        pending=PendingStore(10), early=BoundedMap(10, "early"),
        predicted=BoundedMap(10, "predicted"), resolved=BoundedMap(10, "resolved"),
        ready=[(2.0, 1.0, "e-1")], newest_time=2.0, newest_feature_time=1.0, stream_now=2.5,
        labels_learned=7,
    )


def test_a_typed_state_is_taken_as_it_is() -> None:
    state = _state()
    assert HandlerState.of(state) is state


def test_the_dict_of_an_older_checkpoint_becomes_the_typed_state() -> None:
    state = _state()
    assert HandlerState.of(dict(vars(state))) == state


def test_a_dict_missing_a_field_or_another_object_is_refused_by_name() -> None:
    older = dict(vars(_state()))
    del older["labels_learned"]
    with pytest.raises(TypeError, match="lacks labels_learned"):
        HandlerState.of(older)
    with pytest.raises(TypeError, match="is a list"):
        HandlerState.of([1, 2])
