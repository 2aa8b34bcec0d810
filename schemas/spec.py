"""The pipeline spec: one TOML file that adapts streamml to a use case.

It declares the event fields (types, valid ranges), the entity keys, the streaming aggregates, the
label and its feedback window, the champion and challenger models and the drift detectors. Load it
with :func:`load_spec`, which accepts a built-in name (``clicks``) or a path, and raises
:class:`SpecError` naming the problem.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.named_files import builtin_names, find_named_file

BUILTIN_DIR = Path(__file__).parent / "specs"

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Closed):
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


class AggregateSpec(_Closed):
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


class LabelSpec(_Closed):
    """The natural label: its type, how long to wait for it, what silence means."""

    type: Literal["binary", "multiclass", "regression"]
    feedback_window_seconds: float = Field(gt=0, le=7 * 24 * 3600)
    on_timeout: Literal["negative", "drop"] = "drop"
    negative_value: bool | int | float | str = 0

    @model_validator(mode="after")
    def _timeout_fits_type(self) -> LabelSpec:
        if self.on_timeout == "negative" and self.type == "regression":
            raise ValueError("on_timeout = 'negative' needs a binary or multiclass label")
        return self


class ModelSpec(_Closed):
    """An estimator: a dotted name under ``river`` (``linear_model.LogisticRegression``) or a
    user factory ``package.module:function``, called with ``params``. The name must resolve when
    the spec is loaded, so a typo fails at start, not in the model service's log."""

    name: Identifier
    estimator: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$")
    params: dict[str, bool | int | float | str] = Field(default_factory=dict)
    scale: bool = False

    def locate(self) -> tuple[str, str]:
        """The module to import and the attribute in it that builds the estimator."""
        if ":" in self.estimator:
            module_name, _, attribute = self.estimator.partition(":")
            return module_name, attribute
        module_path, _, attribute = self.estimator.rpartition(".")
        return (f"river.{module_path}" if module_path else "river"), attribute

    @model_validator(mode="after")
    def _estimator_exists(self) -> ModelSpec:
        module_name, attribute = self.locate()
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"unknown estimator {self.estimator!r}: {error}") from error
        if not callable(getattr(module, attribute, None)):
            raise ValueError(f"unknown estimator {self.estimator!r}: {module_name} has no "
                             f"{attribute!r}")
        return self


class PromotionSpec(_Closed):
    """When a challenger replaces the champion: a sequential test on paired outcomes.

    On every label both models are scored; where one was right and the other wrong (or, for
    regression, one had the smaller error), the challenger wins or loses. The evidence that it
    wins a share ``0.5 + effect`` rather than 0.5 is accumulated as a CUSUM of log-likelihood
    ratios (floored at zero, so it weighs the recent run of labels and recovers after a drift)
    and the challenger is promoted when it reaches ``log(1 / alpha)``, never before
    ``min_labels`` labels. With the defaults an equal challenger went unpromoted in 300 runs of
    20,000 labels and a clearly better one (20% vs 40% errors) was promoted after ~350 labels.
    """

    min_labels: int = Field(default=500, ge=1)
    effect: float = Field(default=0.1, gt=0, lt=0.5)
    alpha: float = Field(default=1e-5, gt=0, lt=0.5)


class ModelsSpec(_Closed):
    """The champion that serves predictions and the challengers that learn in its shadow.

    ``on_concept_drift`` says what a concept-drift alert on the champion's error does:
    ``add_challenger`` starts a fresh copy of the champion's estimator as a challenger (it can
    win the race after the drift), ``reset_champion`` replaces the champion by a fresh one.
    """

    champion: ModelSpec
    challengers: tuple[ModelSpec, ...] = ()
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    on_concept_drift: Literal["none", "add_challenger", "reset_champion"] = "none"


class DetectorSpec(_Closed):
    """A River drift detector by name under ``river.drift`` with its parameters.

    It watches a model's error stream (``1.0`` wrong, ``0.0`` right); see
    ``services/drift/detectors.py`` for what each detector reports as statistic and threshold.
    ``direction = "up"`` (the default) alerts only when the error rate rises: a model that gets
    better (it learned, or the world became easier) is no reason to start a challenger.
    ``"both"`` alerts on any change of the error rate.
    """

    detector: Literal["ADWIN", "PageHinkley", "KSWIN", "DDM"] = "ADWIN"
    params: dict[str, float | int] = Field(default_factory=dict)
    cooldown_observations: int = Field(default=500, ge=0)
    direction: Literal["up", "both"] = "up"


class ShiftSpec(_Closed):
    """A distribution shift monitor: a reference window against a sliding recent window.

    The reference is the first ``reference_size`` observations; the recent window the last
    ``window_size`` observations after it, compared every ``check_every`` observations by the
    Population Stability Index over ``bins`` bins (categories for categorical values). After an
    alert the monitor is quiet for ``cooldown_observations`` and until ``reference_size``
    observations have arrived since the alert; the last ``reference_size`` of them become the new
    reference (re-base), so a persistent new regime raises one alert, not one per check.

    The windows must be large enough that, with no shift at all, PSI stays below
    ``psi_threshold`` (its sampling noise is about ``(bins - 1) * (1/reference_size +
    1/window_size)``): a configuration where one check in a million would raise a false alarm
    is refused.
    """

    enabled: bool = True
    reference_size: int = Field(default=1000, ge=10)
    window_size: int = Field(default=500, ge=10)
    check_every: int = Field(default=50, ge=1)
    bins: int = Field(default=10, ge=2, le=100)
    psi_threshold: float = Field(default=0.2, gt=0)
    cooldown_observations: int = Field(default=1000, ge=0)

    @model_validator(mode="after")
    def _windows_hold_enough(self) -> ShiftSpec:
        # The same bound as services/drift/psi.py:psi_is_reliable, for full windows: PSI times
        # n·m/(n+m) is about chi-square with bins-1 degrees of freedom, and Laurent-Massart's
        # tail bound P(X > k + 2·sqrt(k·x) + 2·x) <= exp(-x) with x = ln(1e6).
        import math

        k, x = self.bins - 1, math.log(1e6)
        needed = k + 2 * math.sqrt(k * x) + 2 * x
        scale = 1 / self.reference_size + 1 / self.window_size
        if self.psi_threshold / scale < needed:
            raise ValueError(
                f"reference_size {self.reference_size} and window_size {self.window_size} are "
                f"too small for {self.bins} bins and psi_threshold {self.psi_threshold}: with no "
                f"shift at all PSI would exceed the threshold too often (needs 1/reference_size"
                f" + 1/window_size <= {self.psi_threshold / needed:.5f})"
            )
        return self


class LabelShiftSpec(ShiftSpec):
    """Label shift on the champion's outcomes. A binary label is compared by its positive rate:
    an alert when the recent rate differs from the reference rate by more than
    ``rate_threshold``; a multiclass label by PSI over the classes, a regression label by PSI
    over quantile bins."""

    reference_size: int = Field(default=2000, ge=10)
    window_size: int = Field(default=1000, ge=10)
    check_every: int = Field(default=100, ge=1)
    cooldown_observations: int = Field(default=2000, ge=0)
    rate_threshold: float = Field(default=0.1, gt=0, lt=1)


class CovariateSpec(ShiftSpec):
    """Covariate shift per feature: ``features`` is ``"all"`` (every field of the spec) or a list
    of field and aggregate names. Numbers are compared by PSI over bins fixed at the reference's
    quantiles, categories (and bools) by PSI over the reference's categories. Two schema checks
    come first: the share of missing values rising by more than ``missing_rate_threshold``, and
    values never seen in the reference taking more than ``new_category_share`` of the recent
    window."""

    features: Literal["all"] | tuple[Identifier, ...] = "all"
    missing_rate_threshold: float = Field(default=0.1, gt=0, le=1)
    new_category_share: float = Field(default=0.05, gt=0, le=1)

    @model_validator(mode="after")
    def _features_are_distinct(self) -> CovariateSpec:
        if self.features != "all":
            if not self.features:
                raise ValueError("features: give at least one name, or \"all\"")
            if len(set(self.features)) != len(self.features):
                raise ValueError(f"features: names repeat in {list(self.features)}")
        return self


class DriftSpec(_Closed):
    """Which detectors watch what: concept drift on each model's errors, covariate shift on the
    features, label shift and prediction drift (the champion's scores) on the outcomes."""

    concept: DetectorSpec = Field(default_factory=DetectorSpec)
    covariate: CovariateSpec = Field(default_factory=CovariateSpec)
    label: LabelShiftSpec = Field(default_factory=LabelShiftSpec)
    prediction: ShiftSpec = Field(default_factory=ShiftSpec)


class SourceSpec(_Closed):
    """How the rows of a replayed file (CSV or JSONL) become events and labels.

    ``label_column`` holds the label; every column that is one of the spec's fields becomes an
    event field. ``id_column`` gives the ``event_id`` (default: ``<spec>-<row number>``).
    Entity values come from ``entity_columns`` or the constants in ``entity``.
    """

    label_column: str
    id_column: str | None = None
    entity: dict[Identifier, str] = Field(default_factory=dict)
    entity_columns: dict[Identifier, str] = Field(default_factory=dict)


class PipelineSpec(_Closed):
    """A whole use case. Entity keys name the event's ``entity`` map; the first is the partition
    key of the ``events`` topic."""

    name: Identifier
    description: str = ""
    entity_keys: tuple[Identifier, ...] = Field(min_length=1)
    fields: dict[Identifier, FieldSpec] = Field(min_length=1)
    aggregates: tuple[AggregateSpec, ...] = ()
    label: LabelSpec
    models: ModelsSpec
    drift: DriftSpec = Field(default_factory=DriftSpec)
    source: SourceSpec | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> PipelineSpec:
        names = set(self.fields)
        for aggregate in self.aggregates:
            if aggregate.entity not in self.entity_keys:
                raise ValueError(
                    f"aggregate '{aggregate.name}': entity '{aggregate.entity}' is not one of "
                    f"entity_keys {list(self.entity_keys)}"
                )
            if aggregate.field is not None:
                if aggregate.field not in names:
                    raise ValueError(
                        f"aggregate '{aggregate.name}': unknown field '{aggregate.field}'"
                    )
                if (self.fields[aggregate.field].type == "categorical"
                        and aggregate.function in NUMERIC_FUNCTIONS):
                    raise ValueError(
                        f"aggregate '{aggregate.name}': '{aggregate.function}' of categorical "
                        f"field '{aggregate.field}'"
                    )
            if aggregate.name in names:
                raise ValueError(f"aggregate '{aggregate.name}' has the name of a field")
        if self.source is not None:
            given = set(self.source.entity) | set(self.source.entity_columns)
            if given != set(self.entity_keys):
                raise ValueError(
                    f"source: entity and entity_columns must give exactly the entity keys "
                    f"{list(self.entity_keys)}, got {sorted(given)}"
                )
        model_names = [self.models.champion.name, *(m.name for m in self.models.challengers)]
        if len(set(model_names)) != len(model_names):
            raise ValueError(f"model names must be unique, got {model_names}")
        return self


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file, the place and the problem."""


def builtin_specs() -> list[str]:
    """Names of the specs shipped with streamml."""
    return builtin_names(BUILTIN_DIR)


def resolve_spec_path(name_or_path: str) -> Path:
    """A built-in spec's file, or ``name_or_path`` itself when it is a file."""
    path = find_named_file(name_or_path, BUILTIN_DIR)
    if path is None:
        raise SpecError(
            f"no spec '{name_or_path}': not a file, and the built-in specs are {builtin_specs()}"
        )
    return path


def load_spec(name_or_path: str) -> PipelineSpec:
    """Read and validate a spec; raise :class:`SpecError` with a precise message."""
    path = resolve_spec_path(name_or_path)
    text = path.read_text()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML: {error}") from error
    try:
        return PipelineSpec.model_validate(document)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            location = ".".join(str(part) for part in detail["loc"])
            line = _line_of(text, detail["loc"])
            where = f"line {line}, " if line else ""
            problems.append(f"  {where}{location or '<top>'}: {detail['msg']}")
        raise SpecError(f"{path}: invalid spec\n" + "\n".join(problems)) from error


def _line_of(text: str, location: tuple[int | str, ...]) -> int | None:
    """Best-effort line number of the deepest part of ``location`` found in the TOML text.

    Each table header and ``key = value`` line is given its full path (``[[array]]`` headers are
    counted, so ``aggregates.1`` is the second ``[[aggregates]]``); the line whose path is the
    longest prefix of ``location`` wins.
    """
    wanted = [str(part) for part in location]
    best, best_length = None, 0
    table: list[str] = []
    arrays: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[["):
            name = stripped[2:].split("]]", 1)[0].strip()
            index = arrays.get(name, 0)
            arrays[name] = index + 1
            table = [*_key_path(name), str(index)]
            path = table
        elif stripped.startswith("["):
            table = _key_path(stripped[1:].split("]", 1)[0])
            path = table
        elif "=" in stripped and not stripped.startswith("#"):
            path = [*table, *_key_path(stripped.split("=", 1)[0])]
        else:
            continue
        if best_length < len(path) <= len(wanted) and wanted[: len(path)] == path:
            best, best_length = number, len(path)
    return best


def _key_path(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]
