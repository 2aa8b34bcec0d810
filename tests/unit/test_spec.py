"""The pipeline spec: the built-in one loads, bad ones fail with a message naming the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.spec import PipelineSpec, SpecError, builtin_specs, load_spec, resolve_spec_path

VALID = """\
name = "shop"
entity_keys = ["user", "item"]

[fields.device]
type = "categorical"
values = ["mobile", "desktop"]

[fields.price]
type = "float"
min = 0
max = 100

[[aggregates]]
name = "user_events"
entity = "user"
function = "count"
size_seconds = 60

[[aggregates]]
name = "item_mean_price"
entity = "item"
function = "mean"
field = "price"
window = "hopping"
size_seconds = 600
step_seconds = 60

[label]
type = "binary"
feedback_window_seconds = 30
on_timeout = "negative"

[models.champion]
name = "logreg"
estimator = "linear_model.LogisticRegression"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return str(path)


def line_number(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the ``occurrence``-th line of ``text`` containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[occurrence - 1]


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as raised:
        load_spec(write(tmp_path, text))
    return str(raised.value)


def test_builtin_clicks_spec_loads() -> None:
    assert "clicks" in builtin_specs()
    spec = load_spec("clicks")
    assert spec.name == "clicks"
    assert spec.entity_keys[0] == "user"
    assert spec.label.on_timeout == "negative"
    aggregate_fields = {a.field for a in spec.aggregates if a.field is not None}
    assert aggregate_fields <= set(spec.fields)


def test_valid_spec_file_loads_with_defaults_filled_in(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    assert isinstance(spec, PipelineSpec)
    assert [a.name for a in spec.aggregates] == ["user_events", "item_mean_price"]
    assert spec.aggregates[0].window == "tumbling"
    assert spec.fields["price"].required is True
    assert spec.models.challengers == ()
    assert spec.drift.concept.detector == "ADWIN"


def test_unknown_spec_name_lists_the_builtins(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="clicks"):
        resolve_spec_path(str(tmp_path / "missing.toml"))


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    text = VALID.replace('type = "float"', 'type = "float', 1)
    message = load_error(tmp_path, text)
    broken = line_number(text, 'type = "float')
    assert "not valid TOML" in message
    assert "spec.toml" in message
    assert f"line {broken}" in message


def test_unknown_key_in_a_field_names_it_and_its_line(tmp_path: Path) -> None:
    text = VALID.replace("max = 100", "max = 100\nmaximum = 100")
    message = load_error(tmp_path, text)
    assert "fields.price.maximum" in message
    assert "Extra inputs are not permitted" in message
    assert f"line {line_number(text, 'maximum')}," in message


def test_unknown_top_level_key_is_rejected(tmp_path: Path) -> None:
    text = 'colour = "blue"\n' + VALID
    message = load_error(tmp_path, text)
    assert "colour" in message
    assert "line 1," in message


def test_step_larger_than_window_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace("step_seconds = 60", "step_seconds = 900")
    message = load_error(tmp_path, text)
    assert "item_mean_price" in message
    assert "step_seconds (900.0) is larger than size_seconds (600.0)" in message
    assert f"line {line_number(text, '[[aggregates]]', occurrence=2)}," in message


def test_error_in_second_aggregate_points_at_its_own_line(tmp_path: Path) -> None:
    text = VALID.replace('function = "mean"', 'function = "median"')
    message = load_error(tmp_path, text)
    assert "aggregates.1.function" in message
    assert f"line {line_number(text, 'median')}," in message


def test_aggregate_of_an_unknown_field_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('field = "price"', 'field = "cost"')
    message = load_error(tmp_path, text)
    assert "aggregate 'item_mean_price': unknown field 'cost'" in message


def test_mean_of_a_categorical_field_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('field = "price"', 'field = "device"')
    message = load_error(tmp_path, text)
    assert "'mean' of categorical field 'device'" in message


def test_count_of_a_categorical_field_is_allowed(tmp_path: Path) -> None:
    text = VALID.replace('function = "mean"\nfield = "price"', 'function = "count"\n'
                         'field = "device"')
    assert load_spec(write(tmp_path, text)).aggregates[1].field == "device"


def test_aggregate_on_an_undeclared_entity_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('entity = "item"', 'entity = "shop"')
    assert "entity 'shop' is not one of entity_keys" in load_error(tmp_path, text)


def test_hopping_without_step_and_tumbling_with_step_are_rejected(tmp_path: Path) -> None:
    no_step = VALID.replace("step_seconds = 60\n", "")
    assert "a hopping window needs step_seconds" in load_error(tmp_path, no_step)
    tumbling_step = VALID.replace("size_seconds = 60\n", "size_seconds = 60\nstep_seconds = 6\n")
    assert "step_seconds is only for hopping windows" in load_error(tmp_path, tumbling_step)


def test_min_above_max_is_rejected_at_the_field(tmp_path: Path) -> None:
    text = VALID.replace("min = 0", "min = 500")
    message = load_error(tmp_path, text)
    assert "min (500.0) is greater than max (100.0)" in message
    assert "fields.price" in message
    assert f"line {line_number(text, '[fields.price]')}," in message


def test_negative_timeout_for_regression_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('type = "binary"', 'type = "regression"')
    assert "needs a binary or multiclass label" in load_error(tmp_path, text)


def test_duplicate_model_names_are_rejected(tmp_path: Path) -> None:
    text = VALID + (
        '\n[[models.challengers]]\nname = "logreg"\nestimator = "tree.HoeffdingTreeClassifier"\n'
    )
    assert "model names must be unique" in load_error(tmp_path, text)


def test_bad_challenger_estimator_points_at_its_line(tmp_path: Path) -> None:
    text = (VALID + '\n[[models.challengers]]\nname = "a"\nestimator = "tree.A"\n'
            '\n[[models.challengers]]\nname = "b"\nestimator = "not a name!"\n')
    message = load_error(tmp_path, text)
    assert "models.challengers.1.estimator" in message
    assert f"line {line_number(text, 'not a name!')}," in message


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = VALID.replace('type = "categorical"', 'type = "text"').replace(
        "feedback_window_seconds = 30", "feedback_window_seconds = -1"
    )
    message = load_error(tmp_path, text)
    assert re.search(r"fields\.device\.type", message)
    assert re.search(r"label\.feedback_window_seconds", message)


def test_an_unknown_model_names_the_estimator_and_the_models_line(tmp_path: Path) -> None:
    text = VALID.replace("linear_model.LogisticRegression", "linear_model.LogisticRegresion")
    message = load_error(tmp_path, text)
    assert "unknown estimator 'linear_model.LogisticRegresion'" in message
    assert f"line {line_number(text, '[models.champion]')}," in message
