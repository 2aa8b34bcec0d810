"""The chaos suite's poison corpus: every kind is judged as the corpus says it will be.

Events kinds go through the features service's own validation, label kinds through the label
contract; the two that only the model can judge (a second event with a known ``event_id``, a label
for an event never seen) must pass both, as they would on the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.codec import ContractError, decode, encode
from schemas.events import Event, Label
from schemas.spec import load_spec
from services.common.dead_letters import DeadLetter
from services.features.validation import Limits, validate_event
from services.producer.scenarios.clicks import ClicksScenario
from tests.chaos.poison import KINDS, make_poison

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
SPEC = load_spec("clicks")


def good_event() -> Event:
    return next(iter(ClicksScenario(seed=3).events(NOW, 0.01))).event


def test_the_corpus_has_at_least_fifteen_kinds() -> None:
    assert len(KINDS) >= 15


def test_the_good_event_it_starts_from_is_valid() -> None:
    assert validate_event(encode(good_event()), SPEC, NOW, Limits()) == good_event()


@pytest.mark.parametrize("kind", [k for k in KINDS if make_poison(k, good_event(), "t").service
                                  == "features"])
def test_an_events_poison_is_dead_lettered_by_validation_with_its_reason(kind: str) -> None:
    poison = make_poison(kind, good_event(), "1")
    assert poison.topic == "events"
    with pytest.raises(DeadLetter) as raised:
        validate_event(poison.value, SPEC, NOW, Limits())
    assert raised.value.reason_code == poison.reason_code, raised.value.reason


@pytest.mark.parametrize("kind", [k for k in KINDS if make_poison(k, good_event(), "t").topic
                                  == "labels"])
def test_a_labels_poison_fails_the_label_contract_unless_only_the_model_can_tell(
    kind: str,
) -> None:
    poison = make_poison(kind, good_event(), "1")
    if poison.reason_code == "unknown_event":
        assert decode(Label, poison.value).event_id.startswith("ghost-")
        return
    with pytest.raises(ContractError) as raised:
        decode(Label, poison.value)
    assert raised.value.reason_code == poison.reason_code, raised.value.reason


def test_a_duplicate_is_a_valid_event_with_a_known_event_id() -> None:
    good = good_event()
    poison = make_poison("duplicate_event_id", good, "1")
    assert (poison.topic, poison.service, poison.reason_code) == ("events", "model", "duplicate")
    assert validate_event(poison.value, SPEC, NOW, Limits()) == good
