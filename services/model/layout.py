"""One prediction per event across layouts: a deployment either predicts in the model service
(``layout = "single"``) or in predictor replicas (the model service as ``learner``), never both.

Each side looks at the other's consumer group at start and refuses, in one line, to run beside
it: a one-process model service next to replicas (or replicas next to it) would predict every
event twice. The check sees the groups as the broker does at that moment; a member that died
less than its session timeout ago still counts.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from services.common.runtime import StartupError

log = logging.getLogger(__name__)
DESCRIBE_TIMEOUT_S = 10.0
RETRY_SECONDS = 30.0
RETRY_CODES = frozenset({KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                         KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT,
                         KafkaError._TRANSPORT})
"""Errors of a coordinator that is moving or loading: asked again."""


def assigned_topics(admin: AdminClient, group: str) -> tuple[int, set[str]]:
    """How many members ``group`` has and which topics they are assigned (0 and none when the
    group does not exist). A retriable error (a coordinator still loading after a broker start)
    is asked again for up to :data:`RETRY_SECONDS`; after that the check is skipped with a
    warning rather than keep the service from starting."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        future = admin.describe_consumer_groups([group], request_timeout=DESCRIBE_TIMEOUT_S)[group]
        try:
            description = future.result()
            break
        except KafkaException as exception:
            error = exception.args[0]
            if error.code() == KafkaError.GROUP_ID_NOT_FOUND:
                return 0, set()
            if not error.retriable() and error.code() not in RETRY_CODES:
                raise
            if time.monotonic() >= deadline:
                log.warning("could not see consumer group %s (%s); not checking the layout",
                            group, error.str())
                return 0, set()
            time.sleep(0.5)
    members = list(description.members or [])
    topics = {partition.topic for member in members
              for partition in (member.assignment.topic_partitions or [])}
    return len(members), topics


def refuse_beside_predictors(admin: AdminClient, predictor_group: str, features_topic: str) -> None:
    """For a one-process model service: refuse while predictor replicas consume ``features``."""
    members, topics = assigned_topics(admin, predictor_group)
    if members and (not topics or features_topic in topics):
        raise StartupError(
            f"{members} predictor replica(s) serve {features_topic} (consumer group "
            f"{predictor_group}); this model service would predict every event again: run it "
            "as their learner (STREAMML_MODEL__LAYOUT=learner, as `streamml up --predictors N` "
            "does) or stop the replicas")


def refuse_beside_one_process(admin: AdminClient, model_group: str, features_topic: str) -> None:
    """For a predictor replica: refuse while the model service predicts on ``features``."""
    members, topics = assigned_topics(admin, model_group)
    if members and features_topic in topics:
        raise StartupError(
            f"the model service (consumer group {model_group}) predicts on {features_topic} "
            "itself; a replica would predict every event again: restart it as the learner "
            "(STREAMML_MODEL__LAYOUT=learner, as `streamml up --predictors N` does)")
