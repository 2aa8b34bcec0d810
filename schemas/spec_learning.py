"""What is learned and by which models: the label, the champion, its challengers, promotion."""

from __future__ import annotations

import importlib
from typing import Literal

from pydantic import Field, model_validator

from schemas.spec_base import ClosedSpec, Identifier


class LabelSpec(ClosedSpec):
    """The natural label: its type, how long to wait for it, what silence means.

    ``learn_at`` (with ``on_timeout = "negative"`` only): ``"label"`` (the default) learns each
    label as it comes; ``"window_close"`` learns a label that came, and publishes its outcome,
    when its event's feedback window closes, like the negatives that silence stands for.
    Learning the quick labels (clicks) at once while the negatives wait a whole window feeds the
    models a sample rich in positives, which they then predict too often; ``"window_close"``
    learns every event in event-time order, a window later.
    """

    type: Literal["binary", "multiclass", "regression"]
    feedback_window_seconds: float = Field(gt=0, le=7 * 24 * 3600)
    on_timeout: Literal["negative", "drop"] = "drop"
    negative_value: bool | int | float | str = 0
    learn_at: Literal["label", "window_close"] = "label"

    @model_validator(mode="after")
    def _timeout_fits_type(self) -> LabelSpec:
        if self.on_timeout == "negative" and self.type == "regression":
            raise ValueError("on_timeout = 'negative' needs a binary or multiclass label")
        return self


class ModelSpec(ClosedSpec):
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


class PromotionSpec(ClosedSpec):
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


class AnomalySpec(ClosedSpec):
    """How an anomaly model's scores become flags: a score above the ``quantile`` of the last
    ``window`` scores (its own, before it) flags the event; none is flagged before ``warmup``
    scores have been seen."""

    quantile: float = Field(default=0.99, gt=0, lt=1)
    window: int = Field(default=2000, ge=10)
    warmup: int = Field(default=500, ge=0)


class ModelsSpec(ClosedSpec):
    """The champion that serves predictions and the challengers that learn in its shadow.

    ``on_concept_drift`` says what a concept-drift alert on the champion's error does:
    ``add_challenger`` starts a fresh copy of the champion's estimator as a challenger (it can
    win the race after the drift), ``reset_champion`` replaces the champion by a fresh one.
    """

    champion: ModelSpec
    challengers: tuple[ModelSpec, ...] = ()
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    on_concept_drift: Literal["none", "add_challenger", "reset_champion"] = "none"
    task: Literal["classify", "anomaly"] = "classify"
    """``classify`` (or regress, by the label's type): the models learn from labels.
    ``anomaly``: the models are River anomaly detectors (``anomaly.HalfSpaceTrees``, ...) that
    score every event and learn from it at once, without labels; the prediction is whether the
    score passes the ``anomaly`` rule, and labels (confirmed incidents, binary) only judge it."""
    anomaly: AnomalySpec = Field(default_factory=AnomalySpec)
    segment_by: Identifier | None = None
    """An entity key or a categorical field: one independent copy of every model per value
    (a device type, a country), created when the value is first seen."""
    max_segments: int = Field(default=1000, ge=1)
    """Segments kept at most; the least recently used is dropped (and counted) beyond."""
