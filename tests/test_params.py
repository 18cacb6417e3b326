"""params.yaml is the one place for knobs: every section key is an options field and agrees with it."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest
import yaml

from tasks.contamination.options import ContaminationOptions
from tasks.core.params import SHIPPED_PARAMS, ParamsError, field_help, load_section, option, options, to_options
from tasks.core.tracking import TrackingOptions
from tasks.crossval.options import CrossvalOptions
from tasks.evaluate.options import EvaluateOptions
from tasks.export.options import ExportOptions
from tasks.ingest.options import IngestOptions
from tasks.instruct.options import InstructOptions
from tasks.prune.options import PruneOptions
from tasks.report.options import ReportOptions
from tasks.screen.options import ScreenOptions
from tasks.standardize.options import StandardizeOptions
from tasks.train.options import TrainOptions

SECTIONS = {
    "ingest": IngestOptions,
    "screen": ScreenOptions,
    "standardize": StandardizeOptions,
    "contamination": ContaminationOptions,
    "mlflow": TrackingOptions,
    "evaluate": EvaluateOptions,
    "instruct": InstructOptions,
    "export": ExportOptions,
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


@pytest.mark.parametrize("section", SECTIONS)
def test_every_field_says_what_it_means_and_names_its_section(section):
    cls = SECTIONS[section]
    assert cls.SECTION == section
    assert [name for name, text in field_help(cls).items() if not text] == []


def test_a_default_written_in_the_class_is_refused():
    """params.yaml is the one place for defaults: a second copy in the class does not even build."""
    with pytest.raises(TypeError, match="a default belongs in params.yaml ingest"):

        @options("ingest")
        class Stale:
            batch_mb: int = 16


def test_a_field_without_a_key_fails_naming_both():
    @options("ingest")
    class Extra:
        batch_mb: int = option("MiB")
        not_in_params: int = option("nowhere")

    with pytest.raises(ParamsError, match="ingest: no key 'not_in_params'"):
        Extra()


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (IngestOptions, {"batch_mb": 0}, "batch_mb must be >= 1, not 0"),
        (IngestOptions, {"max_reject_share": 1.5}, "max_reject_share must be <= 1, not 1.5"),
        (IngestOptions, {"on_broken_tags": "fix"}, r"on_broken_tags must be one of \['reject', 'repair'\], not 'fix'"),
        (InstructOptions, {"label_dropout": 1.0}, "label_dropout must be < 1, not 1.0"),
        (CrossvalOptions, {"learning_rate": 0}, "learning_rate must be > 0, not 0"),
        (ScreenOptions, {"workers": "2"}, "workers must be a number >= 1, not '2'"),
        (PruneOptions, {"scaling_ks": [100, 0]}, r"scaling_ks must be >= 1, not \[100, 0\]"),
        (TrainOptions, {"max_steps": None}, None),  # null passes every bound
    ],
)
def test_declared_choices_and_bounds_are_checked_in_one_way(cls, values, message):
    if message is None:
        to_options(cls, values, "params.yaml")
        return
    with pytest.raises(ParamsError, match=message):
        to_options(cls, values, "params.yaml")
