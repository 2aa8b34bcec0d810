"""Sensor scenario: machines report readings; a few readings are anomalies, some confirmed later.

Each of ``machines`` machines has its own normal operating point (temperature, vibration,
pressure and load, each normalised to [0, 1]) and reports it with small noise. A share
(``anomaly_share``) of readings is an anomaly, of one of three kinds: one sensor far off its
usual value (a spike), every sensor drifting together (overheating), or the load far from the
others (a stalled machine). An engineer confirms most of them (``confirmed_share``) as incidents
after a delay: a label ``1`` sent for that event. Normal readings are never labelled (the
``sensors`` spec reads silence as "no incident" when its feedback window closes), and neither
are the anomalies nobody confirmed; those count as missed incidents nowhere but in the ground
truth (``LabelledEvent.label`` is 1 for every anomaly).

No timeline: the machines stay as they are. The same seed gives the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.events import Event
from schemas.truth import GroundTruth
from services.producer.scenarios.base import LabelledEvent
from services.producer.scenarios.labels import NaturalLabels
from services.producer.scenarios.timeline import Timeline

SENSORS_FEEDBACK_WINDOW_SECONDS = 60.0
"""The feedback window of the ``sensors`` spec (``schemas/specs/sensors.toml``)."""
SENSORS = ("temperature", "vibration", "pressure", "load")


@dataclass
class SensorsScenario:
    """Seeded sensor readings with injected anomalies."""

    seed: int = 7
    machines: int = 50
    anomaly_share: float = 0.01
    confirmed_share: float = 0.8
    noise: float = 0.03
    explicit_negatives: bool = False
    timeline: Timeline | None = None
    labels: NaturalLabels = field(default_factory=NaturalLabels)
    feedback_window_seconds: float = SENSORS_FEEDBACK_WINDOW_SECONDS
    spec_name: str = "sensors"
    entity_key: str = "machine"

    def __post_init__(self) -> None:
        if self.timeline is not None:
            raise ValueError("the sensors scenario has no drift timeline; leave --timeline out")

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        """An endless, deterministic stream of readings at ``start + i * interval``."""
        self.labels.check(self.feedback_window_seconds)
        machines = self._rng("machines")
        normal = [{name: machines.uniform(0.35, 0.65) for name in SENSORS}
                  for _ in range(self.machines)]
        inputs, faults, delays = self._rng("inputs"), self._rng("faults"), self._rng("labels")
        for index in range(10**12):
            machine = inputs.randrange(self.machines)
            reading = {name: value + inputs.gauss(0.0, self.noise)
                       for name, value in normal[machine].items()}
            anomalous = faults.random() < self.anomaly_share
            if anomalous:
                _inject(reading, faults)
            event = Event(
                event_id=f"sns-{self.seed}-{index}",
                event_time=start + timedelta(seconds=index * interval_seconds),
                entity={"machine": f"m{machine}"},
                fields={name: round(min(1.0, max(0.0, value)), 4)
                        for name, value in reading.items()},
            )
            confirmed = anomalous and faults.random() < self.confirmed_share
            sent = confirmed or (self.explicit_negatives and not anomalous)
            delay = self.labels.draw_delay(delays, self.feedback_window_seconds) if sent else None
            yield LabelledEvent(event, int(anomalous), delay)

    def ground_truth(self, start: datetime, interval_seconds: float) -> GroundTruth:
        """Stationary: no drift points."""
        return GroundTruth(scenario=self.spec_name, seed=self.seed, start=start,
                           interval_seconds=interval_seconds)

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"sensors:{self.seed}:{purpose}")  # noqa: S311 - simulation


def _inject(reading: dict[str, float], faults: random.Random) -> None:
    """Turn a normal reading into an anomaly of a random kind."""
    kind = faults.randrange(3)
    if kind == 0:  # one sensor spikes
        name = faults.choice(SENSORS)
        reading[name] += faults.choice((-1.0, 1.0)) * faults.uniform(0.3, 0.45)
    elif kind == 1:  # overheating: everything rises together
        for name in ("temperature", "vibration", "pressure"):
            reading[name] += faults.uniform(0.15, 0.3)
    else:  # stalled: load collapses while the rest runs on
        reading["load"] = faults.uniform(0.0, 0.1)
