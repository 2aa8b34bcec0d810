"""A deployment predicts in one place: a one-process model service refuses to start beside
predictor replicas, and a replica beside a one-process model service (the real broker's view of
the consumer groups)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer

from services.common.kafka import make_admin, make_consumer
from services.common.runtime import StartupError
from services.common.settings import KafkaSettings
from services.model.layout import refuse_beside_one_process, refuse_beside_predictors
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@contextmanager
def member_of(kafka: KafkaSettings, group: str, topic: str) -> Iterator[Consumer]:
    """A consumer of ``topic`` in ``group``, once it has its partitions."""
    consumer = make_consumer(kafka, group)
    consumer.subscribe([topic])
    try:
        wait_for(lambda: bool(consumer.poll(0.2) is None and consumer.assignment()),
                 timeout=30, what=f"{group} to be assigned {topic}")
        yield consumer
    finally:
        consumer.close()


def test_one_process_model_refuses_to_start_beside_predictor_replicas(
    kafka: KafkaSettings, topics: str
) -> None:
    admin, features = make_admin(kafka), f"{topics}features"
    refuse_beside_predictors(admin, f"{topics}streamml-predictor", features)  # none: no refusal
    with (member_of(kafka, f"{topics}streamml-predictor", features),
          pytest.raises(StartupError, match=r"predictor replica.*STREAMML_MODEL__LAYOUT")):
        refuse_beside_predictors(admin, f"{topics}streamml-predictor", features)


def test_a_replica_refuses_to_start_beside_a_one_process_model_but_not_beside_a_learner(
    kafka: KafkaSettings, topics: str
) -> None:
    admin, features = make_admin(kafka), f"{topics}features"
    with member_of(kafka, f"{topics}streamml-model", f"{topics}prediction-log"):
        refuse_beside_one_process(admin, f"{topics}streamml-model", features)  # a learner
    with (member_of(kafka, f"{topics}streamml-model", features),
          pytest.raises(StartupError, match=r"predicts on .*features itself")):
        refuse_beside_one_process(admin, f"{topics}streamml-model", features)
