"""Drift timelines of the clicks scenario: phases of a hidden world, read from TOML.

A timeline is a ``[[phases]]`` array. Each phase lasts ``events`` events and changes the world the
previous phase left behind: a change holds until a later phase changes it again, the first phase
changes the default :class:`~.world.World` from event 0, and after the last phase its world
persists. ::

    [[phases]]
    name = "baseline"
    kind = "stationary"               # nothing changes
    events = 20000

    [[phases]]
    name = "tablets"
    kind = "covariate_shift"          # the input mix changes; P(click | inputs) does not
    events = 10000
    device_mix = { mobile = 0.25, desktop = 0.35, tablet = 0.40 }   # weights; unlisted: 0
    price_scale = 2.0                 # factor on the default price distribution

    [[phases]]
    name = "fewer-clicks"
    kind = "label_shift"              # the base rate changes: added to the hidden intercept
    events = 10000
    intercept_shift = -1.0

    [[phases]]
    name = "surge"
    kind = "concept_drift"            # hidden coefficients change (to these absolute values)
    events = 20000
    transition = "gradual"            # or "abrupt" (the default, for every kind)
    width = 5000                      # events over which the old world turns into the new one
    mixing = "sigmoid"                # or "linear"
    concept = { intercept = 1.5, price = -0.0005 }

In a gradual transition each event is drawn from the new world with probability
:meth:`Phase.weight` and from the old one otherwise. :func:`load_timeline` reads a built-in name
(see :func:`builtin_timelines`) or a path, and raises :class:`TimelineError` naming the file and
the phase.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.named_files import builtin_names, find_named_file
from schemas.truth import Mixing, PhaseKind, Transition
from services.producer.scenarios.world import Concept, Device, InputMix, World

BUILTIN_DIR = Path(__file__).parent / "timelines"
SIGMOID_STEEPNESS = 8.0
"""Steepness of the sigmoid ramp over a gradual transition (in units of its width)."""

_PARAMETERS: dict[PhaseKind, tuple[str, ...]] = {
    "stationary": (),
    "covariate_shift": ("device_mix", "price_scale"),
    "label_shift": ("intercept_shift",),
    "concept_drift": ("concept",),
}


class TimelineError(ValueError):
    """A timeline that cannot be used; the message names the file, the phase and the problem."""


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ConceptChange(_Closed):
    """New values for some coefficients of the hidden :class:`~.world.Concept`."""

    intercept: float | None = None
    position: float | None = None
    device: dict[Device, float] | None = None
    price: float | None = None
    evening: float | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ConceptChange:
        if not self.model_dump(exclude_none=True):
            raise ValueError("concept changes nothing: set intercept, position, device, price "
                             "or evening")
        return self

    def apply(self, concept: Concept) -> Concept:
        """``concept`` with these coefficients replaced (device effects merged per device)."""
        changes = self.model_dump(exclude_none=True)
        if self.device is not None:
            changes["device"] = {**concept.device, **self.device}
        return Concept.model_validate({**concept.model_dump(), **changes})


class Phase(_Closed):
    """One stretch of the stream, ``events`` long, and the change it makes to the world."""

    name: str = Field(min_length=1, max_length=64)
    kind: PhaseKind
    events: int = Field(gt=0, le=10**10)
    description: str = ""
    device_mix: dict[Device, float] | None = None
    price_scale: float | None = Field(default=None, gt=0, le=100)
    intercept_shift: float | None = Field(default=None, ge=-20, le=20)
    concept: ConceptChange | None = None
    transition: Transition = "abrupt"
    width: int = Field(default=0, ge=0)
    mixing: Mixing = "sigmoid"

    @model_validator(mode="after")
    def _parameters_fit_kind(self) -> Phase:
        allowed = _PARAMETERS[self.kind]
        given = [name for names in _PARAMETERS.values() for name in names
                 if getattr(self, name) is not None]
        for name in given:
            if name not in allowed:
                takes = f"it takes {' and/or '.join(allowed)}" if allowed else "it changes nothing"
                raise ValueError(f"'{name}' does not belong in a {self.kind} phase ({takes})")
        if allowed and not given:
            raise ValueError(f"a {self.kind} phase needs {' and/or '.join(allowed)}")
        if self.intercept_shift == 0:
            raise ValueError("intercept_shift = 0 changes nothing")
        if self.device_mix is not None:
            InputMix(device_mix=self.device_mix)
        if self.kind == "stationary" and self.transition != "abrupt":
            raise ValueError("a stationary phase changes nothing, so it has no transition")
        if self.transition == "gradual":
            if self.width < 1:
                raise ValueError("a gradual transition needs width >= 1 (events)")
            if self.width > self.events:
                raise ValueError(f"width ({self.width}) is longer than the phase "
                                 f"({self.events} events)")
        elif self.width:
            raise ValueError("width is only for gradual transitions")
        return self

    def apply(self, world: World) -> World:
        """The world this phase changes ``world`` into."""
        if self.kind == "covariate_shift":
            mix = InputMix(
                device_mix=self.device_mix or world.mix.device_mix,
                price_scale=self.price_scale or world.mix.price_scale,
            )
            return World(mix=mix, concept=world.concept)
        if self.kind == "label_shift" and self.intercept_shift is not None:
            shifted = world.concept.intercept + self.intercept_shift
            return World(mix=world.mix, concept=world.concept.model_copy(
                update={"intercept": shifted}))
        if self.kind == "concept_drift" and self.concept is not None:
            return World(mix=world.mix, concept=self.concept.apply(world.concept))
        return world

    def weight(self, offset: int) -> float:
        """The probability that the event ``offset`` events into this phase is drawn from the new
        world: 1 when abrupt; when gradual, a ramp from 0 at offset 0 to 1 at ``width``."""
        if self.transition == "abrupt" or offset >= self.width:
            return 1.0
        if offset <= 0:
            return 0.0
        share = offset / self.width
        if self.mixing == "linear":
            return share

        def sigmoid(x: float) -> float:
            return 1.0 / (1.0 + math.exp(-SIGMOID_STEEPNESS * (x - 0.5)))

        return (sigmoid(share) - sigmoid(0.0)) / (sigmoid(1.0) - sigmoid(0.0))


class Timeline(_Closed):
    """Phases in stream order; their boundaries are the run's ground-truth drift points."""

    name: str = Field(default="", max_length=64)
    description: str = ""
    phases: tuple[Phase, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _phases_are_distinct(self) -> Timeline:
        names = [phase.name for phase in self.phases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"phase names must be unique, repeated: {duplicates}")
        if self.phases[0].transition == "gradual":
            raise ValueError(f"the first phase ('{self.phases[0].name}') has nothing to turn "
                             "from gradually; make it abrupt")
        return self

    @property
    def total_events(self) -> int:
        """The number of events the phases cover."""
        return sum(phase.events for phase in self.phases)

    def starts(self) -> list[int]:
        """The event index at which each phase begins."""
        starts, index = [], 0
        for phase in self.phases:
            starts.append(index)
            index += phase.events
        return starts

    def worlds(self, base: World | None = None) -> list[tuple[World, World]]:
        """For each phase, the world before it and the world it changes that into."""
        pairs, world = [], base or World()
        for phase in self.phases:
            changed = phase.apply(world)
            pairs.append((world, changed))
            world = changed
        return pairs


def builtin_timelines() -> list[str]:
    """Names of the timelines shipped with streamml."""
    return builtin_names(BUILTIN_DIR)


def resolve_timeline_path(name_or_path: str) -> Path:
    """A built-in timeline's file, or ``name_or_path`` itself when it is a file."""
    path = find_named_file(name_or_path, BUILTIN_DIR)
    if path is None:
        raise TimelineError(f"no timeline '{name_or_path}': not a file, and the built-in "
                            f"timelines are {builtin_timelines()}")
    return path


def load_timeline(name_or_path: str) -> Timeline:
    """Read and validate a timeline (its name defaults to the file's stem)."""
    path = resolve_timeline_path(name_or_path)
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise TimelineError(f"{path}: not valid TOML: {error}") from error
    except OSError as error:
        raise TimelineError(f"{path}: cannot be read: {error}") from error
    return parse_timeline({"name": path.stem, **document}, str(path))


def parse_timeline(document: dict[str, Any], source: str = "<timeline>") -> Timeline:
    """Validate a timeline given as a mapping; ``source`` names it in a :class:`TimelineError`."""
    try:
        return Timeline.model_validate(document)
    except ValidationError as error:
        problems = [f"  {_where(document, detail['loc'])}: {_message(detail['msg'])}"
                    for detail in error.errors()]
        raise TimelineError(f"{source}: invalid timeline\n" + "\n".join(problems)) from error


def _where(document: dict[str, Any], location: tuple[int | str, ...]) -> str:
    """``phase 2 'surge', width`` for ``('phases', 1, 'width')``; the dotted path otherwise."""
    if len(location) >= 2 and location[0] == "phases" and isinstance(location[1], int):
        phases = document.get("phases")
        raw = phases[location[1]] if isinstance(phases, list) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        where = f"phase {location[1] + 1}" + (f" '{name}'" if name else "")
        rest = ".".join(str(part) for part in location[2:])
        return f"{where}, {rest}" if rest else where
    return ".".join(str(part) for part in location) or "<top>"


def _message(message: str) -> str:
    return message.removeprefix("Value error, ")
