"""The taxonomy check: the shipped taxonomy covers the demo and the real data; breakage is named exactly."""

import shutil

import polars as pl
import pytest
import yaml

from tasks.core.registry import load_registry, select_datasets
from tasks.ingest.ingest import ingest_dataset
from tasks.ingest.options import IngestOptions
from tasks.standardize.taxonomy import TAXONOMY_DIR, check_taxonomy, load_taxonomy, main


def ingested_label_counts(raw_dir, selection, out_dir) -> pl.DataFrame:
    """Ingest's label counts (dataset, split, label, count) for the selected datasets found in ``raw_dir``."""
    options = IngestOptions(raw_dir=str(raw_dir))
    reports = [ingest_dataset(entry, options, out_dir) for entry in select_datasets(load_registry(), selection)]
    return pl.concat([report.label_counts for report in reports if report.status == "ok"])


def test_shipped_taxonomy_covers_the_demo_corpus(demo_ingested):
    label_counts = pl.read_parquet(demo_ingested / "label_counts.parquet")
    report = check_taxonomy(load_taxonomy(), label_counts)
    assert report.errors == []
    assert label_counts["dataset"].n_unique() == 8


@pytest.mark.real_data
def test_shipped_taxonomy_covers_the_real_data(shared_data, tmp_path):
    label_counts = ingested_label_counts(shared_data, "paper", tmp_path / "out")
    report = check_taxonomy(load_taxonomy(), label_counts)
    assert report.errors == []
    assert label_counts["dataset"].n_unique() >= 20


def test_shipped_taxonomy_cli_passes(capsys):
    assert main(["check"]) == 0
    assert "taxonomy check: OK" in capsys.readouterr().out


@pytest.fixture
def broken_taxonomy(tmp_path):
    """A copy of the shipped taxonomy with one unknown type, one duplicated type and one bad split rule."""
    directory = tmp_path / "taxonomy"
    shutil.copytree(TAXONOMY_DIR, directory)
    types = yaml.safe_load((directory / "types.yaml").read_text(encoding="utf-8"))
    types["types"].append(dict(types["types"][0]))  # the "person" type, again
    (directory / "types.yaml").write_text(yaml.safe_dump(types, allow_unicode=True), encoding="utf-8")
    maps = yaml.safe_load((directory / "label_maps.yaml").read_text(encoding="utf-8"))
    maps["conll2003"]["PER"] = "no such type"
    maps["ace04"]["PER"]["split"][0]["when"] = "plural"
    (directory / "label_maps.yaml").write_text(yaml.safe_dump(maps, allow_unicode=True), encoding="utf-8")
    label_counts = pl.DataFrame(
        {
            "dataset": ["conll2003", "conll2003", "conll2003"],
            "split": ["train", "test", "train"],
            "label": ["FOO", "FOO", "LOC"],
            "count": [5, 2, 9],
        }
    )
    label_counts.write_parquet(tmp_path / "label_counts.parquet")
    return directory, tmp_path / "label_counts.parquet"


EXPECTED_ERRORS = [
    "malformed map ace04 'PER': split rule 'when: plural' must be one of named, nominal, pronoun",
    "duplicate type id 'person'",
    "duplicate zh name '人名'",
    "unknown type 'no such type' in map conll2003 'PER'",
    "unmapped raw label: conll2003 'FOO' (7 entities)",
]


def test_broken_taxonomy_is_reported_with_each_error(broken_taxonomy):
    directory, label_counts = broken_taxonomy
    report = check_taxonomy(load_taxonomy(directory), pl.read_parquet(label_counts))
    assert report.errors == EXPECTED_ERRORS


def test_broken_taxonomy_cli_exits_1(broken_taxonomy, capsys):
    directory, label_counts = broken_taxonomy
    assert main(["check", "--taxonomy-dir", str(directory), "--label-counts", str(label_counts)]) == 1
    out = capsys.readouterr().out
    assert all(error in out for error in EXPECTED_ERRORS)
    assert "taxonomy check: FAILED" in out


def test_repeated_yaml_key_is_an_error(tmp_path):
    directory = tmp_path / "taxonomy"
    shutil.copytree(TAXONOMY_DIR, directory)
    maps_file = directory / "label_maps.yaml"
    lines = maps_file.read_text(encoding="utf-8").splitlines()
    maps_file.write_text("\n".join([*lines, "test_set:", "  PER: person", "  PER: location", ""]), encoding="utf-8")
    report = check_taxonomy(load_taxonomy(directory))
    assert report.errors == [f"label_maps.yaml: duplicate key 'PER' at line {len(lines) + 3}"]


def test_types_no_map_uses_are_warnings_not_errors():
    report = check_taxonomy(load_taxonomy())
    assert report.errors == []
    assert "type 'person->victim' is used by no map" in report.warnings
