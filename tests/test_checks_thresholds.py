"""Every threshold of the checks is a real knob: a field of Thresholds, a [quality] parameter, a line of luigi.cfg."""
from __future__ import annotations

import configparser
import dataclasses

import pytest

from pipeline.core.checks.thresholds import Thresholds
from tasks import config
from tests.conftest import PROJECT_ROOT


def test_every_threshold_is_a_quality_parameter_with_the_same_default():
    params = dict(config.quality.get_params())
    for field in dataclasses.fields(Thresholds):
        assert field.name in params, f"[quality] has no parameter {field.name}"
        assert Thresholds(**{field.name: params[field.name]._default}) == Thresholds(), field.name
    # CheckSnapshot builds its thresholds so: a field without a parameter would be an AttributeError
    settings = type("Settings", (), {name: p._default for name, p in params.items()})()
    assert Thresholds.from_settings(settings) == Thresholds()


def test_every_threshold_is_in_luigi_cfg_with_a_comment_and_the_default():
    lines = (PROJECT_ROOT / "luigi.cfg").read_text().splitlines()
    section = lines[lines.index("[quality]") + 1:]
    section = section[:next(i for i, line in enumerate(section) if line.startswith("["))]
    keys = {line.split("=")[0].strip(): i for i, line in enumerate(section) if line and not line.startswith("#")}
    assert set(keys) == {f.name for f in dataclasses.fields(Thresholds)} | {"accept", "compare_previous"}
    for key, i in keys.items():
        assert section[i - 1].startswith("# "), f"luigi.cfg [quality] {key}: no comment line above it"
    parser = configparser.ConfigParser()
    parser.read(PROJECT_ROOT / "luigi.cfg")
    settings = type("Settings", (), {})()
    for field in dataclasses.fields(Thresholds):
        text = parser.get("quality", field.name)
        setattr(settings, field.name, text if field.name == "closed_events" else type(field.default)(text))
    assert Thresholds.from_settings(settings) == Thresholds()


def test_closed_events_are_comma_separated_names():
    assert Thresholds(closed_events="Christmas, Mother's day,").closed_events == ("Christmas", "Mother's day")
    assert Thresholds(closed_events=["Christmas"]) == Thresholds()
    assert Thresholds(closed_events="").closed_events == ()


@pytest.mark.parametrize("name, value, rule", [
    ("regular_share", 0.0, "in (0, 1]"), ("regular_days", 0, ">= 1"), ("history_quantile", 1.5, "in [0, 1]"),
    ("price_jump_factor", 1.0, "> 1"), ("outlier_min_reference", 0, ">= 1"), ("max_offending", 0, ">= 1"),
])
def test_a_threshold_out_of_range_is_refused_by_name(name, value, rule):
    with pytest.raises(ValueError) as info:
        Thresholds(**{name: value})
    assert f"{name}={value!r} (must be {rule})" in str(info.value)
