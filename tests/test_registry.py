"""The registry: one entry per row of the paper's Tables 15 and 16, real folders covered."""

from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from tasks.core.registry import REGISTRY_DIR, DatasetEntry, RegistryError, load_registry, select_datasets

ROOT = Path(__file__).resolve().parents[1]


def test_every_paper_row_has_an_entry():
    registry = load_registry()
    paper = select_datasets(registry, "paper")
    roles = Counter(entry.role for entry in paper)
    # 26 English + 30 Chinese rows: 40 used for training (PolyglotNER counted, pruned to 0),
    # 14 held out, plus FNED and Military-ner, also pruned to zero.
    assert len(paper) == 56
    assert roles == {"train": 39, "ood_test": 14, "pruned_to_zero": 3}
    assert Counter(entry.lang for entry in paper) == {"en": 26, "zh": 30}
    assert registry["conll2003"].paper == {
        "types": 4,
        "pruned_train": 1069,
        "raw_train": 12613,
        "test": 3184,
        "has_train_split": True,
        "has_test_split": True,
    }
    assert all(entry.obtain for entry in paper)


def test_every_real_folder_is_a_registry_entry_with_its_files(shared_data):
    registry = load_registry()
    folders = sorted(p.name for p in shared_data.iterdir() if p.is_dir())
    assert len(folders) == 22
    for folder in folders:
        entry = registry[folder]
        present = sorted(p.name for p in (shared_data / folder).iterdir() if p.name != "label.txt")
        assert sorted(entry.files.values()) == present, folder


def test_selection_errors_are_clear():
    with pytest.raises(RegistryError, match="not in the registry: \\['nope'\\]"):
        select_datasets(load_registry(), ["conll2003", "nope"])
    with pytest.raises(RegistryError, match="unknown dataset selection"):
        select_datasets(load_registry(), "everything")


DROP = object()  # a field left out of the entry


def private_entry(**fields) -> dict:
    entry = {
        "name": "my_data",
        "title": "My data",
        "lang": "en",
        "domain": "news",
        "role": "train",
        "local_dir": "my_data",
        "format": "conll",
        "files": {"train": "train.txt"},
    }
    return {key: value for key, value in {**entry, **fields}.items() if value is not DROP}


def write_entries(folder: Path, *entries: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        (folder / f"{entry['name']}.yaml").write_text(yaml.safe_dump(entry))
    return folder


def test_private_entries_are_added_and_override_built_ins_saying_so(tmp_path):
    private = write_entries(tmp_path / "private", private_entry(), private_entry(name="conll2003", title="Our CoNLL"))
    said = []
    registry = load_registry(private, report=said.append)
    built_in = load_registry()
    assert set(registry) == set(built_in) | {"my_data"}
    assert registry["conll2003"].title == "Our CoNLL" and registry["ontonotes5"] == built_in["ontonotes5"]
    assert said == [f"{private / 'conll2003.yaml'} overrides the built-in registry entry 'conll2003'"]
    assert [entry.name for entry in select_datasets(registry, "paper")].count("my_data") == 1


def test_the_built_in_folder_as_private_folder_adds_nothing():
    said = []
    assert load_registry(REGISTRY_DIR, report=said.append) == load_registry() and said == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"files": DROP}, "missing field 'files'"),
        ({"lang": DROP, "title": DROP}, "missing fields 'title', 'lang'"),
        ({"fromat": "conll"}, "unknown field 'fromat'; an entry's fields: name, title, lang, domain, role, local_dir"),
        ({"files": "train.txt"}, "field 'files' must be a mapping of split to file name, not str"),
        ({"files": {}}, "field 'files' must be a mapping of split to file name, not an empty one or one with other"),
        ({"format_options": {"sepp": "tab"}}, "unknown format option 'sepp'; known: sep, scheme, segment_digit"),
        ({"format": "csv"}, "unknown format 'csv'"),
        ({"title": 3}, "field 'title' must be text, not int"),
        ({"domain": None}, "field 'domain' must be text, not NoneType"),
        ({"format_options": 3}, "field 'format_options' must be a mapping, not int"),
    ],
)
def test_bad_entry_names_its_file_and_field(tmp_path, fields, message):
    private = write_entries(tmp_path / "private", private_entry(**fields))
    with pytest.raises(RegistryError) as error:
        load_registry(private)
    assert str(error.value).startswith(f"{private / 'my_data.yaml'}: {message}"), str(error.value)


@pytest.mark.parametrize("content, message", [("", "not a mapping of fields"), ("name: [", "not valid YAML")])
def test_entry_that_is_not_a_mapping_names_its_file(tmp_path, content, message):
    (tmp_path / "bad.yaml").write_text(content)
    with pytest.raises(RegistryError, match=f"^{tmp_path / 'bad.yaml'}: {message}"):
        load_registry(tmp_path)


def test_private_folder_without_entries_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match=f"private registry folder {tmp_path / 'nope'} does not exist"):
        load_registry(tmp_path / "nope")
    with pytest.raises(RegistryError, match=f"private registry folder {tmp_path} holds no \\*.yaml entries"):
        load_registry(tmp_path)


def test_selection_matching_no_dataset_says_why():
    registry = {name: entry for name, entry in load_registry().items() if entry.role != "demo"}
    with pytest.raises(
        RegistryError,
        match="^dataset selection 'demo' matches none of the 56 registry entries: "
        "it selects role demo, and their roles are ood_test, pruned_to_zero, train$",
    ):
        select_datasets(registry, "demo")
    with pytest.raises(RegistryError, match="^dataset selection is an empty list"):
        select_datasets(registry, [])


def test_readme_lists_every_entry_field_with_a_worked_example(tmp_path):
    section = (ROOT / "README.md").read_text().split("## Dataset registry")[1].split("\n## ")[0]
    for field in fields(DatasetEntry):
        assert f"`{field.name}`" in section, field.name
    example = yaml.safe_load(section.split("```yaml\n")[1].split("```")[0])
    (tmp_path / f"{example['name']}.yaml").write_text(yaml.safe_dump(example))
    entry = load_registry(tmp_path)[example["name"]]
    assert entry.format_spec() and entry.name not in load_registry()
