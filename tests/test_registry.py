"""The registry: one entry per row of the paper's Tables 15 and 16, real folders covered."""

from collections import Counter

import pytest

from tasks.registry import RegistryError, load_registry, select_datasets


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
        "types": 4, "pruned_train": 1069, "raw_train": 12613, "test": 3184, "has_train_split": True, "has_test_split": True,
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
