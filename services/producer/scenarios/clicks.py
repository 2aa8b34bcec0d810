"""Click-through scenario: users see items; a hidden logistic model decides who clicks.

Without a timeline the world never changes. With one (:mod:`.timeline`) the input mix, the base
rate and the hidden model change phase by phase, and :meth:`ClicksScenario.ground_truth` says
where. Clicks arrive after a feedback delay (:mod:`.labels`) inside the spec's window; non-clicks
are never sent unless ``explicit_negatives`` is set (the model service infers them when the
window closes).

Inputs, clicks, gradual mixing and label delays each come from their own generator seeded from
``seed``, so the same seed and clock give the same stream, and e.g. changing the label options
does not change the events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.events import Event
from schemas.truth import DRIFT_KINDS, DriftPoint, GroundTruth, PhaseSpan
from services.producer.scenarios.base import LabelledEvent
from services.producer.scenarios.labels import NaturalLabels
from services.producer.scenarios.timeline import Phase, Timeline
from services.producer.scenarios.world import DEVICES, Device, World

CLICKS_FEEDBACK_WINDOW_SECONDS = 30.0
"""The feedback window of the ``clicks`` spec (``schemas/specs/clicks.toml``)."""


@dataclass
class ClicksScenario:
    """Seeded click stream, stationary unless given a ``timeline``."""

    seed: int = 7
    users: int = 500
    items: int = 100
    explicit_negatives: bool = False
    timeline: Timeline | None = None
    labels: NaturalLabels = field(default_factory=NaturalLabels)
    feedback_window_seconds: float = CLICKS_FEEDBACK_WINDOW_SECONDS
    spec_name: str = "clicks"
    entity_key: str = "user"

    def click_probability(self, device: Device, position: int, price: float, hour: int) -> float:
        """The hidden model at the start of the stream (before any drift)."""
        first = self._phases()[0]
        return first[2].concept.probability(device, position, price, hour)

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        """An endless, deterministic stream of labelled events at ``start + i * interval``."""
        self.labels.check(self.feedback_window_seconds)
        inputs = self._rng("inputs")
        outcomes = self._rng("clicks")
        mixing = self._rng("mixing")
        delays = self._rng("labels")
        phases = self._phases()
        current, phase_start = 0, 0
        for index in range(10**12):
            while current + 1 < len(phases) and index >= phase_start + phases[current][0].events:
                phase_start += phases[current][0].events
                current += 1
            phase, old, new = phases[current]
            weight = phase.weight(index - phase_start)
            world = new if weight >= 1.0 or mixing.random() < weight else old
            event_time = start + timedelta(seconds=index * interval_seconds)
            device = inputs.choices(DEVICES, weights=world.mix.device_weights())[0]
            position = inputs.randint(1, 10)
            price = round(min(inputs.lognormvariate(3.5, 0.8) * world.mix.price_scale, 9999.0), 2)
            hour = event_time.hour
            user, item = inputs.randrange(self.users), inputs.randrange(self.items)
            clicked = outcomes.random() < world.concept.probability(device, position, price, hour)
            event = Event(
                event_id=f"clk-{self.seed}-{index}",
                event_time=event_time,
                entity={"user": f"u{user}", "item": f"i{item}"},
                fields={"device": device, "hour": hour, "price": price, "position": position},
            )
            sent = clicked or self.explicit_negatives
            delay = self.labels.draw_delay(delays, self.feedback_window_seconds) if sent else None
            yield LabelledEvent(event, int(clicked), delay)

    def ground_truth(self, start: datetime, interval_seconds: float) -> GroundTruth:
        """Where the stream of ``events(start, interval_seconds)`` drifts, and how."""
        if self.timeline is None:
            return GroundTruth(scenario=self.spec_name, seed=self.seed, start=start,
                               interval_seconds=interval_seconds)

        def at(index: int) -> datetime:
            return start + timedelta(seconds=index * interval_seconds)

        phases, points = [], []
        for number, (phase, begin) in enumerate(zip(self.timeline.phases,
                                                    self.timeline.starts(), strict=True)):
            phases.append(PhaseSpan(name=phase.name, kind=phase.kind, start_index=begin,
                                    end_index=begin + phase.events, start_time=at(begin)))
            if number == 0:
                continue
            gradual = phase.transition == "gradual"
            points.append(DriftPoint(
                index=begin, event_time=at(begin), phase=phase.name, kind=phase.kind,
                drift_kind=DRIFT_KINDS[phase.kind], transition=phase.transition,
                width=phase.width, mixing=phase.mixing if gradual else None,
                end_index=begin + phase.width, end_time=at(begin + phase.width),
            ))
        return GroundTruth(
            scenario=self.spec_name, seed=self.seed, timeline=self.timeline.name or None,
            start=start, interval_seconds=interval_seconds,
            total_events=self.timeline.total_events, phases=tuple(phases),
            drift_points=tuple(points),
        )

    def _phases(self) -> list[tuple[Phase, World, World]]:
        """Each phase with the world before it and the world it brings; one endless phase when
        there is no timeline."""
        if self.timeline is None:
            world = World()
            return [(Phase(name="stationary", kind="stationary", events=10**10), world, world)]
        pairs = self.timeline.worlds()
        return [(phase, old, new)
                for phase, (old, new) in zip(self.timeline.phases, pairs, strict=True)]

    def _rng(self, purpose: str) -> random.Random:
        return random.Random(f"clicks:{self.seed}:{purpose}")  # noqa: S311 - simulation
