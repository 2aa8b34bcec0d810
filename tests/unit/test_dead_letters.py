"""Dead-letter publishing: original bytes unchanged, headers naming origin and reason."""

from __future__ import annotations

import pytest

from schemas.codec import ContractError, decode
from schemas.events import Event
from services.common.dead_letters import DeadLetter, DeadLetterPublisher
from tests.unit.fakes import FakeProducer

POISON = b'{"event_id": "e-1", \xff\xfe not json'


def contract_error(raw: bytes) -> DeadLetter:
    try:
        decode(Event, raw)
    except ContractError as error:
        return DeadLetter.from_contract_error(error)
    raise AssertionError("expected a ContractError")


def test_published_value_and_key_are_the_original_bytes() -> None:
    producer = FakeProducer()
    publisher = DeadLetterPublisher(producer, "acme.dead-letters", "features")
    publisher.publish(POISON, b"u-7", "acme.events", 2, 4711, contract_error(POISON))
    [record] = producer.records
    assert record.topic == "acme.dead-letters"
    assert record.value == POISON
    assert record.key == b"u-7"


def test_headers_name_source_error_class_and_reason() -> None:
    producer = FakeProducer()
    publisher = DeadLetterPublisher(producer, "dead-letters", "features")
    returned = publisher.publish(POISON, None, "events", 2, 4711, contract_error(POISON))
    [record] = producer.records
    headers = record.dead_letter_headers()
    assert headers == returned
    assert headers.source_topic == "events"
    assert headers.source_partition == 2
    assert headers.source_offset == 4711
    assert headers.service == "features"
    assert headers.reason_code == "malformed_json"
    assert headers.error_class == "ContractError"
    assert "not valid JSON" in headers.reason


def test_schema_violation_keeps_its_reason_code() -> None:
    dead = contract_error(b'{"event_id": "e-1"}')
    assert dead.reason_code == "schema_invalid"
    assert isinstance(dead.__cause__, ContractError)


def test_a_plain_dead_letter_is_its_own_error_class() -> None:
    producer = FakeProducer()
    publisher = DeadLetterPublisher(producer, "dead-letters", "model")
    headers = publisher.publish(b"{}", None, "labels", 0, 9, DeadLetter("late_label", "too late"))
    assert headers.error_class == "DeadLetter"
    assert headers.reason_code == "late_label"
    assert headers.reason == "too late"
    assert publisher.service == "model"


def test_an_unexpected_exception_as_cause_names_its_class() -> None:
    dead = DeadLetter("processing_error", "boom")
    dead.__cause__ = ZeroDivisionError("division by zero")
    headers = DeadLetterPublisher(FakeProducer(), "dl", "drift").publish(
        b"x", None, "outcomes", 1, 2, dead
    )
    assert headers.error_class == "ZeroDivisionError"


def test_a_null_value_is_dead_lettered_as_null() -> None:
    producer = FakeProducer()
    DeadLetterPublisher(producer, "dl", "features").publish(
        None, b"k", "events", 0, 0, contract_error_for_none()
    )
    assert producer.records[0].value is None


def contract_error_for_none() -> DeadLetter:
    with pytest.raises(ContractError) as raised:
        decode(Event, None)
    return DeadLetter.from_contract_error(raised.value)


def test_a_very_long_reason_is_truncated_to_fit_the_headers() -> None:
    producer = FakeProducer()
    headers = DeadLetterPublisher(producer, "dl", "features").publish(
        b"x", None, "events", 0, 0, DeadLetter("spec_invalid", "why " * 5000)
    )
    assert len(headers.reason) == 2000
    assert producer.records[0].dead_letter_headers() == headers
