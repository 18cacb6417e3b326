"""params.yaml is the one place for knobs: every section key is an options field and agrees with it."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest
import yaml

from tasks.core.params import SHIPPED_PARAMS, ParamsError, load_section, to_options
from tasks.core.tracking import TrackingOptions
from tasks.crossval.crossval import CrossvalOptions
from tasks.evaluate.options import EvaluateOptions
from tasks.ingest.ingest import IngestOptions
from tasks.instruct.instruct import InstructOptions
from tasks.prune.pruning import PruneOptions
from tasks.report.report import ReportOptions
from tasks.screen.screening import ScreenOptions
from tasks.standardize.standardize import StandardizeOptions
from tasks.train.training import TrainOptions

SECTIONS = {
    "ingest": IngestOptions,
    "screen": ScreenOptions,
    "standardize": StandardizeOptions,
    "mlflow": TrackingOptions,
    "evaluate": EvaluateOptions,
    "instruct": InstructOptions,
    "train": TrainOptions,
    "report": ReportOptions,
    "crossval": CrossvalOptions,
    "prune": PruneOptions,
}


def default_of(item):
    if item.default is not MISSING:
        return item.default
    return item.default_factory() if item.default_factory is not MISSING else MISSING


@pytest.mark.parametrize("section", SECTIONS)
def test_every_key_is_a_field_and_every_field_a_key_with_the_same_default(section):
    cls, values = SECTIONS[section], load_section(section, SHIPPED_PARAMS)
    names = {item.name for item in fields(cls)}
    assert sorted(names - set(values)) == [], f"{cls.__name__} fields missing from params.yaml {section}"
    assert sorted(set(values) - names) == [], f"params.yaml {section} keys {cls.__name__} does not have"
    disagree = {
        item.name: (values[item.name], default)
        for item in fields(cls)
        if (default := default_of(item)) is not MISSING
        and (list(default) if isinstance(default, tuple) else default) != values[item.name]
    }
    assert disagree == {}, f"params.yaml {section} value against the {cls.__name__} default"
    to_options(cls, values, section)  # and the section passes the class's checks


def test_every_params_section_has_its_options_class():
    sections = set(yaml.safe_load(SHIPPED_PARAMS.read_text()))
    assert sections - set(SECTIONS) == {"demo", "real_data"}, (
        "demo and real_data are read by infra scripts, not options classes"
    )


def test_a_changed_default_is_caught(tmp_path):
    """The check above can fail: a params file whose value differs from the field's default."""
    changed = yaml.safe_load(SHIPPED_PARAMS.read_text())
    changed["crossval"]["epochs"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
    section = load_section("crossval", tmp_path / "params.yaml")
    assert to_options(CrossvalOptions, section, "crossval") != CrossvalOptions()
    with pytest.raises(ParamsError, match="unknown keys"):
        to_options(CrossvalOptions, {**section, "epoch": 3}, "crossval")


def test_sections_follow_the_pipeline_order():
    stages = yaml.safe_load((SHIPPED_PARAMS.parent / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    params = yaml.safe_load(SHIPPED_PARAMS.read_text(encoding="utf-8"))
    order = [name.removesuffix("_corpus") for name in stages]  # demo_corpus reads the demo section
    assert [name for name in params if name in order] == [name for name in order if name in params]
