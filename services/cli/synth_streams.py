"""Standard synthetic streams with known change points, as scenarios the pipeline can run.

Each :class:`StreamRecipe` names a generator of River's ``datasets.synth`` (SEA, Agrawal,
Hyperplane, STAGGER), how long the stream is and where its concept changes. A
:class:`SynthScenario` turns one recipe, one :class:`LabelTiming` and one seed into the
producer's :class:`~services.producer.scenarios.base.Scenario` (events with their label and
feedback delay) and its :class:`~schemas.truth.GroundTruth`, so
:func:`services.cli.pipeline_in_process.run_in_process` runs it through the features, model and
drift logic like any other scenario. :func:`spec_for` builds the matching pipeline spec.

How the concept changes:

* ``abrupt`` and ``gradual``: one generator per concept (e.g. SEA variants 1, 2, 3), each seeded
  on its own; at event ``i`` the stream draws from concept ``k`` with River's
  ``ConceptDriftStream`` probabilities, ``1 / (1 + exp(-4 (i - centre) / width))`` per change.
  An abrupt change has width 1 (the new concept from its index on); a gradual one has its ramp
  centred at ``index + width / 2``, so 12% of the events come from the new concept at ``index``
  and 88% at ``index + width``. Only the labelling function changes: the inputs are drawn the
  same way by every concept, so there is no covariate shift.
* ``incremental`` (Hyperplane): one generator whose hyperplane starts to move at the change
  (``mag_change`` set from then on); before it the hyperplane is still. The change lasts until
  the end of the stream.
* ``none``: the first concept throughout (a stationary stream).

Labels are ``0``/``1``; features are named fields (``x0`` .. for SEA and Hyperplane), typed as
the spec declares them (:func:`spec_for`). Every random draw comes from generators seeded from
``seed``, so the same seed gives the same stream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from schemas.events import Event, FieldValue
from schemas.spec import FieldSpec, PipelineSpec
from schemas.truth import DriftPoint, GroundTruth, PhaseSpan
from services.producer.scenarios.base import LabelledEvent

Generator = Literal["SEA", "Agrawal", "Hyperplane", "STAGGER"]
Change = Literal["none", "abrupt", "gradual", "incremental"]
Timing = Literal["immediate", "delayed", "implicit"]

HYPERPLANE_FEATURES = 10
HYPERPLANE_DRIFT_FEATURES = 5
HYPERPLANE_MAG_CHANGE = 0.01
SEA_NOISE = 0.1
STAGGER_NAMES = {
    "size": ("small", "medium", "large"),
    "color": ("red", "blue", "green"),
    "shape": ("circle", "square", "triangle"),
}
"""STAGGER's attribute codes as River names them."""


@dataclass(frozen=True)
class StreamRecipe:
    """One synthetic stream: generator, length, concepts in order and where they change.

    ``concepts`` are the generator's variants (SEA ``variant``, Agrawal and STAGGER
    ``classification_function``); ``changes`` the 0-based event indexes where the next concept
    begins (the start of the ramp when gradual). Hyperplane has one concept; its ``changes``
    say where the incremental drift starts.
    """

    name: str
    generator: Generator
    change: Change
    events: int
    concepts: tuple[int, ...] = (0,)
    changes: tuple[int, ...] = ()
    width: int = 1

    def __post_init__(self) -> None:
        expected = 0 if self.change == "none" else (
            1 if self.change == "incremental" else len(self.concepts) - 1)
        if len(self.changes) != expected or list(self.changes) != sorted(self.changes):
            raise ValueError(f"{self.name}: {self.change} needs {expected} ordered change(s)")
        if self.changes and (self.changes[0] < 1 or self.changes[-1] + self.width > self.events):
            raise ValueError(f"{self.name}: changes must lie inside the stream")
        if self.width < 1:
            raise ValueError(f"{self.name}: width must be at least 1")

    @property
    def stationary(self) -> bool:
        """Whether the concept never changes."""
        return self.change == "none"


@dataclass(frozen=True)
class LabelTiming:
    """When labels come back, in events (the pipeline runs at one event per second).

    * ``immediate``: every label half an event later (learned before the next prediction).
    * ``delayed``: every label ``delay`` events later; explicit labels, ``on_timeout = "drop"``.
    * ``implicit``: positives after 1 to ``delay`` events; negatives are never sent and become
      known when their feedback window of ``window`` events closes (``on_timeout =
      "negative"``), which is also when the model learns them.
    """

    name: Timing
    delay: float
    window: float

    @property
    def on_timeout(self) -> Literal["negative", "drop"]:
        """The spec's timeout policy for this timing."""
        return "negative" if self.name == "implicit" else "drop"

    def label_delay(self, label: int, rng: random.Random) -> float | None:
        """Seconds (= events) until ``label`` is sent; ``None``: never sent."""
        if self.name == "immediate":
            return 0.5
        if self.name == "delayed":
            return self.delay
        return 1.0 + rng.random() * (self.delay - 1.0) if label == 1 else None


TIMINGS = {
    "immediate": LabelTiming("immediate", 0.5, 10.0),
    "delayed": LabelTiming("delayed", 500.0, 1000.0),
    "implicit": LabelTiming("implicit", 50.0, 500.0),
}
"""The label timings of the benchmark, by name."""


def default_recipes(scale: float = 1.0) -> list[StreamRecipe]:
    """The benchmark's streams: a stationary one per generator (100,000 events at scale 1) and
    drift streams of 30,000 events with changes at 1/3 and 2/3 (Hyperplane: 20,000 events,
    incremental drift from the middle). ``scale`` shrinks every length (``--quick``)."""
    def n(events: int) -> int:
        return max(int(events * scale), 300)

    third = n(30_000) // 3
    two = (third, 2 * third)
    return [
        StreamRecipe("sea", "SEA", "none", n(100_000), (1,)),
        StreamRecipe("agrawal", "Agrawal", "none", n(100_000), (0,)),
        StreamRecipe("hyperplane", "Hyperplane", "none", n(100_000)),
        StreamRecipe("stagger", "STAGGER", "none", n(100_000), (0,)),
        StreamRecipe("sea-abrupt", "SEA", "abrupt", 3 * third, (1, 2, 3), two),
        StreamRecipe("sea-gradual", "SEA", "gradual", 3 * third, (1, 2, 3), two,
                     width=max(third // 10, 1)),
        StreamRecipe("agrawal-abrupt", "Agrawal", "abrupt", 3 * third, (0, 2, 4), two),
        StreamRecipe("hyperplane-incremental", "Hyperplane", "incremental", 2 * third,
                     changes=(third,)),
        StreamRecipe("stagger-abrupt", "STAGGER", "abrupt", 3 * third, (0, 1, 2), two),
    ]


def _river_stream(generator: Generator, concept: int, seed: int) -> Any:
    from river.datasets import synth

    if generator == "SEA":
        return synth.SEA(variant=concept, noise=SEA_NOISE, seed=seed)
    if generator == "Agrawal":
        return synth.Agrawal(classification_function=concept, seed=seed)
    if generator == "STAGGER":
        return synth.STAGGER(classification_function=concept, seed=seed)
    return synth.Hyperplane(seed=seed, n_features=HYPERPLANE_FEATURES,
                            n_drift_features=HYPERPLANE_DRIFT_FEATURES, mag_change=0.0)


def _concept_probability(index: int, change: int, width: int) -> float:
    """River ConceptDriftStream's chance that event ``index`` comes from the concept after
    ``change``: a step at ``change`` when ``width`` is 1, else a logistic ramp centred at
    ``change + width / 2``."""
    if width <= 1:
        return 1.0 if index >= change else 0.0
    exponent = -4.0 * (index - (change + width / 2)) / width
    return 0.0 if exponent > 700 else 1.0 / (1.0 + math.exp(exponent))


def raw_stream(recipe: StreamRecipe, seed: int) -> Iterator[tuple[dict[str, FieldValue], int]]:
    """The recipe's ``(features, label)`` pairs for ``seed``, named and typed as in
    :func:`spec_for`; ``recipe.events`` of them."""
    if recipe.generator == "Hyperplane":
        yield from _hyperplane(recipe, seed)
        return
    sources = [iter(_river_stream(recipe.generator, concept, seed * 100 + number))
               for number, concept in enumerate(recipe.concepts)]
    mixing = random.Random(seed * 100 + 99)  # noqa: S311 - simulation
    for index in range(recipe.events):
        draw = mixing.random()
        current = sum(draw < _concept_probability(index, change, recipe.width)
                      for change in recipe.changes)
        x, y = next(sources[current])
        yield _named(recipe.generator, x), int(y)


def _hyperplane(recipe: StreamRecipe, seed: int) -> Iterator[tuple[dict[str, FieldValue], int]]:
    stream = _river_stream("Hyperplane", 0, seed * 100)
    source = iter(stream)
    for index in range(recipe.events):
        if recipe.changes and index == recipe.changes[0]:
            stream.mag_change = HYPERPLANE_MAG_CHANGE  # read by River at every draw
        x, y = next(source)
        yield _named("Hyperplane", x), int(y)


def _named(generator: Generator, x: dict[Any, Any]) -> dict[str, FieldValue]:
    if generator in ("SEA", "Hyperplane"):
        return {f"x{key}": float(value) for key, value in x.items()}
    if generator == "STAGGER":
        return {key: STAGGER_NAMES[key][value] for key, value in x.items()}
    return {key: (str(value) if key in AGRAWAL_CODES else value) for key, value in x.items()}


AGRAWAL_CODES = {"elevel": 5, "car": 20, "zipcode": 9}
"""Agrawal's coded attributes (categories) and how many codes each has (``car`` from 1)."""


def fields_of(generator: Generator) -> dict[str, FieldSpec]:
    """The spec fields of a generator's features: floats, ints and coded categories."""
    if generator == "SEA":
        return {f"x{i}": FieldSpec(type="float", min=0, max=10) for i in range(3)}
    if generator == "Hyperplane":
        return {f"x{i}": FieldSpec(type="float", min=0, max=1)
                for i in range(HYPERPLANE_FEATURES)}
    if generator == "STAGGER":
        return {name: FieldSpec(type="categorical", values=values)
                for name, values in STAGGER_NAMES.items()}
    first = {"car": 1}
    codes = {name: FieldSpec(type="categorical", values=tuple(
        str(code) for code in range(first.get(name, 0), first.get(name, 0) + count)))
        for name, count in AGRAWAL_CODES.items()}
    numbers = {"salary": "float", "commission": "float", "age": "int", "hvalue": "float",
               "hyears": "int", "loan": "float"}
    return {**{name: FieldSpec(type=kind) for name, kind in numbers.items()}, **codes}


def model_of(generator: Generator) -> dict[str, Any]:
    """The champion for a generator: a Hoeffding tree (majority class at the leaves: as accurate
    here as naive Bayes, three times faster) for Agrawal's rules over mixed attributes;
    logistic regression on scaled inputs for the others (SEA's and Hyperplane's concepts are
    hyperplanes; STAGGER's are ANDs and ORs of one-hot attributes, which a linear model
    separates: it learns each in a few hundred labels where a Hoeffding tree needs
    thousands)."""
    if generator != "Agrawal":
        return {"name": "logreg", "estimator": "linear_model.LogisticRegression", "scale": True}
    return {"name": "tree", "estimator": "tree.HoeffdingTreeClassifier",
            "params": {"leaf_prediction": "mc"}}


def spec_for(recipe: StreamRecipe, timing: LabelTiming) -> PipelineSpec:
    """A pipeline spec for the recipe's stream under ``timing``: its fields, a binary label
    with the timing's feedback window and timeout policy, the generator's champion
    (:func:`model_of`), ``on_concept_drift = "add_challenger"`` and the drift section's
    defaults."""
    return PipelineSpec.model_validate({
        "name": recipe.name.replace("-", "_"),
        "description": f"River synth {recipe.generator} ({recipe.change})",
        "entity_keys": ["stream"],
        "fields": fields_of(recipe.generator),
        "label": {"type": "binary", "feedback_window_seconds": timing.window,
                  "on_timeout": timing.on_timeout, "negative_value": 0},
        "models": {"champion": model_of(recipe.generator),
                   "on_concept_drift": "add_challenger"},
    })


@dataclass
class SynthScenario:
    """A recipe's stream under a label timing, as a producer scenario with its ground truth."""

    recipe: StreamRecipe
    timing: LabelTiming
    seed: int
    entity_key: str = "stream"
    spec_name: str = field(init=False)
    """The name of :func:`spec_for`'s spec."""

    def __post_init__(self) -> None:
        self.spec_name = self.recipe.name.replace("-", "_")

    def events(self, start: datetime, interval_seconds: float) -> Iterator[LabelledEvent]:
        """The recipe's events at ``start + i * interval``, each with its label and delay (in
        seconds: the timing's events times ``interval_seconds``); it ends with the recipe."""
        delays = random.Random(self.seed * 100 + 98)  # noqa: S311 - simulation
        for index, (features, label) in enumerate(raw_stream(self.recipe, self.seed)):
            event = Event(
                event_id=f"{self.recipe.name}-{self.seed}-{index}",
                event_time=start + timedelta(seconds=index * interval_seconds),
                entity={self.entity_key: "s"}, fields=features,
            )
            delay = self.timing.label_delay(label, delays)
            yield LabelledEvent(event, label,
                                None if delay is None else delay * interval_seconds)

    def ground_truth(self, start: datetime, interval_seconds: float) -> GroundTruth:
        """Stationary phases between the changes and a ``concept_drift`` phase over each change
        (its width; an incremental change to the end of the stream)."""
        recipe = self.recipe

        def at(index: int) -> datetime:
            return start + timedelta(seconds=index * interval_seconds)

        phases: list[PhaseSpan] = []
        points: list[DriftPoint] = []
        begin = 0
        for number, change in enumerate(recipe.changes):
            end = recipe.events if recipe.change == "incremental" else change + recipe.width
            phases.append(PhaseSpan(name=f"concept-{number}", kind="stationary",
                                    start_index=begin, end_index=change, start_time=at(begin)))
            phases.append(PhaseSpan(name=f"change-{number + 1}", kind="concept_drift",
                                    start_index=change, end_index=end, start_time=at(change)))
            points.append(DriftPoint(
                index=change, event_time=at(change), phase=f"change-{number + 1}",
                kind="concept_drift", drift_kind="concept",
                transition="abrupt" if recipe.change == "abrupt" else "gradual",
                width=0 if recipe.change == "abrupt" else end - change,
                mixing="sigmoid" if recipe.change == "gradual" else (
                    "linear" if recipe.change == "incremental" else None),
                end_index=end, end_time=at(end),
            ))
            begin = end
        if begin < recipe.events:
            phases.append(PhaseSpan(name=f"concept-{len(recipe.changes)}", kind="stationary",
                                    start_index=begin, end_index=recipe.events,
                                    start_time=at(begin)))
        return GroundTruth(
            scenario=f"synth:{recipe.name}", seed=self.seed, timeline=recipe.name,
            start=start, interval_seconds=interval_seconds, total_events=recipe.events,
            phases=tuple(phases), drift_points=tuple(points),
        )
