"""The scaled serving layout: predictor replicas serve, one learner learns.

``model-releases`` (compacted) carries the learner's models to the predictors;
``prediction-log`` carries back what each predictor served and from which features, so the
learner learns on exactly the inputs the predictions were made from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareDatetime, Contract
from schemas.features import FeatureVector
from schemas.predictions import Prediction


class ModelRelease(Contract):
    """The learner's models as of ``labels_learned`` labels: what a predictor serves.

    Key: the learner id; compaction keeps the newest. ``state`` is the base64 of the compressed,
    pickled models (champion first); ``library_versions`` the versions it was pickled with (a
    predictor with incompatible ones refuses it and says so). ``labels_learned`` is the release's
    version: it only grows, across restarts of the learner too.
    """

    schema_version: Literal[1] = 1
    learner: str
    labels_learned: int = Field(ge=0)
    champion: str
    champion_version: int = Field(ge=1)
    created_at: AwareDatetime
    library_versions: dict[str, str]
    state: str


class ServedPrediction(Contract):
    """One event as a predictor served it: the feature vector every model predicted from, every
    model's answer (champion first; only the champion's goes to ``predictions``) and the release
    used. Keyed like the ``features`` message it answers, so an entity's records keep their
    order. ``event_time`` repeats the vector's, first, where the learner's alignment reads it.
    """

    schema_version: Literal[1] = 1
    event_time: AwareDatetime
    vector: FeatureVector
    answers: list[Prediction] = Field(min_length=1)
    release_labels: int = Field(ge=0)
    """``labels_learned`` of the release the answers came from ..."""
    release_created_at: AwareDatetime
    """... and when the learner made it."""
    received_at: AwareDatetime
