"""The topic catalogue, dead-letter headers and the committed JSON Schema files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas import generate
from schemas.dead_letters import HEADER_PREFIX, DeadLetterHeaders
from schemas.events import Event, Label
from schemas.features import FeatureVector
from schemas.topics import TOPICS, topic_spec


def test_catalogue_has_every_topic_once() -> None:
    names = [spec.name for spec in TOPICS]
    assert sorted(names) == sorted([
        "events", "labels", "features", "predictions", "outcomes", "drift-alerts",
        "dead-letters", "model-snapshots", "model-events", "drift-state",
        "prediction-log", "model-releases",
    ])
    assert len(set(names)) == len(names)


def test_events_and_features_keep_an_entitys_order_and_labels_need_only_the_event_id() -> None:
    events, features, labels = topic_spec("events"), topic_spec("features"), topic_spec("labels")
    assert events.partitions == features.partitions
    assert events.key == features.key == "primary entity value"
    assert labels.key == "event_id"


def test_state_topics_are_compacted_and_others_are_not() -> None:
    assert topic_spec("model-snapshots").config["cleanup.policy"] == "compact"
    assert topic_spec("drift-state").config["cleanup.policy"] == "compact"
    assert topic_spec("model-releases").config["cleanup.policy"] == "compact"
    for spec in TOPICS:
        if spec.name not in ("model-snapshots", "drift-state", "model-releases"):
            assert spec.config.get("cleanup.policy", "delete") == "delete", spec.name


def test_every_topic_has_a_positive_partition_count() -> None:
    assert all(spec.partitions >= 1 for spec in TOPICS)


def test_value_contracts_match_their_topics() -> None:
    assert topic_spec("events").value_model is Event
    assert topic_spec("labels").value_model is Label
    assert topic_spec("features").value_model is FeatureVector
    assert topic_spec("dead-letters").value_model is None


def test_unknown_topic_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        topic_spec("nope")  # type: ignore[arg-type]


def test_full_name_applies_the_deployment_prefix() -> None:
    assert topic_spec("events").full_name("staging.") == "staging.events"
    assert topic_spec("events").full_name() == "events"


def _headers() -> DeadLetterHeaders:
    return DeadLetterHeaders(
        source_topic="acme.events", source_partition=3, source_offset=1042, service="features",
        reason_code="spec_invalid", error_class="DeadLetter",
        reason="field 'price': -1 is below the minimum 0.0 (ünïcode ok)",
    )


def test_dead_letter_headers_round_trip_through_kafka_headers() -> None:
    headers = _headers()
    kafka = headers.to_kafka_headers()
    assert all(name.startswith(HEADER_PREFIX) for name, _ in kafka)
    assert all(isinstance(value, bytes) for _, value in kafka)
    assert DeadLetterHeaders.from_kafka_headers(list(kafka)) == headers


def test_dead_letter_headers_ignore_foreign_headers_and_keep_negative_positions() -> None:
    headers = _headers().model_copy(update={"source_partition": -1, "source_offset": -1})
    kafka: list[tuple[str, bytes | None]] = [
        ("traceparent", b"00-abc"), *headers.to_kafka_headers(), ("other", None),
    ]
    assert DeadLetterHeaders.from_kafka_headers(kafka) == headers


def test_dead_letter_headers_missing_a_field_do_not_parse() -> None:
    kafka = [(name, value) for name, value in _headers().to_kafka_headers()
             if name != HEADER_PREFIX + "reason_code"]
    with pytest.raises(ValidationError):
        DeadLetterHeaders.from_kafka_headers(list(kafka))


def test_dead_letter_headers_reject_an_unknown_reason_code() -> None:
    kafka = [(name, b"because" if name == HEADER_PREFIX + "reason_code" else value)
             for name, value in _headers().to_kafka_headers()]
    with pytest.raises(ValidationError):
        DeadLetterHeaders.from_kafka_headers(list(kafka))


def test_committed_json_schema_files_equal_the_models() -> None:
    stale = generate.stale_files()
    assert stale == [], f"run `python -m schemas.generate`; stale: {stale}"


def test_committed_schema_files_are_valid_json_schema_documents() -> None:
    for stem in generate.contracts():
        document = json.loads((generate.SCHEMA_DIR / f"{stem}.json").read_text())
        assert document["type"] == "object"
        assert document["additionalProperties"] is False


def test_schema_check_notices_an_edited_and_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generate, "SCHEMA_DIR", tmp_path)
    assert generate.main([]) == 0
    assert generate.stale_files() == []
    assert generate.main(["--check"]) == 0

    edited = tmp_path / "labels.json"
    edited.write_text(edited.read_text().replace('"label_time"', '"label_tyme"'))
    (tmp_path / "events.json").unlink()
    assert sorted(generate.stale_files()) == sorted([edited, tmp_path / "events.json"])
    assert generate.main(["--check"]) == 1
