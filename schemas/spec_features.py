"""The model's inputs in the pipeline spec: raw event fields and the streaming aggregates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.spec_base import ClosedSpec, Identifier


class FieldSpec(ClosedSpec):
    """One raw event field: its type and what values are valid."""

    type: Literal["float", "int", "bool", "categorical"]
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None
    required: bool = True

    @model_validator(mode="after")
    def _range_fits_type(self) -> FieldSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("a categorical field takes 'values', not min/max")
        if self.type != "categorical" and self.values is not None:
            raise ValueError("'values' is only for categorical fields")
        return self


AggregateFunction = Literal[
    "count", "sum", "mean", "min", "max", "last", "distinct_count", "time_since_last",
    "decayed_count",
]
WINDOWED_FUNCTIONS = frozenset({"count", "sum", "mean", "min", "max", "last", "distinct_count"})
NUMERIC_FUNCTIONS = frozenset({"sum", "mean", "min", "max"})


class AggregateSpec(ClosedSpec):
    """An aggregate of ``field`` per ``entity``.

    Windowed functions (count, sum, mean, min, max, last, distinct_count) take a tumbling or
    hopping window in event time (``size_seconds``, and ``step_seconds`` when hopping).
    ``time_since_last`` is the seconds since the entity's previous event; ``decayed_count`` is an
    exponentially decayed event count with ``half_life_seconds``. ``distinct_count`` is
    approximate (a K-minimum-values sketch, exact below 64 distinct values).
    """

    name: Identifier
    entity: Identifier
    function: AggregateFunction
    field: Identifier | None = None
    window: Literal["tumbling", "hopping"] = "tumbling"
    size_seconds: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    step_seconds: float | None = Field(default=None, gt=0)
    half_life_seconds: float | None = Field(default=None, gt=0, le=365 * 24 * 3600)

    @model_validator(mode="after")
    def _window_is_possible(self) -> AggregateSpec:
        where = f"aggregate '{self.name}'"
        needs_field = self.function in NUMERIC_FUNCTIONS | {"last", "distinct_count"}
        if needs_field and self.field is None:
            raise ValueError(f"{where}: function '{self.function}' needs a field")
        if self.function == "decayed_count" and self.half_life_seconds is None:
            raise ValueError(f"{where}: decayed_count needs half_life_seconds")
        if self.function != "decayed_count" and self.half_life_seconds is not None:
            raise ValueError(f"{where}: half_life_seconds is only for decayed_count")
        if self.function not in WINDOWED_FUNCTIONS:
            if self.size_seconds is not None or self.step_seconds is not None:
                raise ValueError(f"{where}: '{self.function}' takes no window")
            return self
        if self.size_seconds is None:
            raise ValueError(f"{where}: '{self.function}' needs a window: size_seconds")
        if self.window == "hopping":
            if self.step_seconds is None:
                raise ValueError(f"{where}: a hopping window needs step_seconds")
            if self.step_seconds > self.size_seconds:
                raise ValueError(
                    f"{where}: step_seconds ({self.step_seconds}) is larger "
                    f"than size_seconds ({self.size_seconds})"
                )
        elif self.step_seconds is not None:
            raise ValueError(f"{where}: step_seconds is only for hopping windows")
        return self

    @property
    def window_seconds(self) -> float:
        """The window size of a windowed aggregate."""
        if self.size_seconds is None:
            raise ValueError(f"aggregate '{self.name}' has no window")
        return self.size_seconds
