"""Writing a run's ground truth (``truth.json``) so drift detection can be scored later."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson

from services.producer.scenarios.base import KnowsGroundTruth, Scenario


def write_truth(
    path: Path, scenario: Scenario, start: datetime, interval_seconds: float
) -> Path:
    """Write the ground truth of ``scenario.events(start, interval_seconds)`` to ``path``.

    Creates the parent folders; replaces an existing file whole (written aside, then renamed).
    Raises ``ValueError`` for a scenario that cannot tell where it drifts.
    """
    if not isinstance(scenario, KnowsGroundTruth):
        raise ValueError(f"scenario '{scenario.spec_name}' has no ground truth to write")
    truth = scenario.ground_truth(start, interval_seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(orjson.dumps(truth.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    partial.replace(path)
    return path
