"""The docs describe the tree as it is: every code path and ``python -m`` module they name exists."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "BENCHMARKS.md", "infra/README.md", "infra/TRAINING.md", "benchmarks/README.md"]
PATH = re.compile(r"`((?:tasks|flows|benchmarks|infra|tests)/[\w./<>-]*)`")
# Files a user creates from a shipped example, and folders a benchmark creates: named, not shipped.
CREATED_BY_USERS = {"infra/.env", "infra/hostfile", "benchmarks/out", "benchmarks/out/corpus/scale-S_seed-N"}
MODULE = re.compile(r"python -m ((?:tasks|flows|benchmarks)(?:\.\w+)+)")


@pytest.mark.parametrize("doc", DOCS)
def test_every_code_path_a_doc_names_exists(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    named = {path.rstrip("/.") for path in PATH.findall(text) if "<" not in path and "*" not in path}
    assert sorted(path for path in named - CREATED_BY_USERS if not (ROOT / path).exists()) == []


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_a_doc_runs_exists(doc):
    text = (ROOT / doc).read_text(encoding="utf-8")
    modules = set(MODULE.findall(text))
    assert sorted(name for name in modules if importlib.util.find_spec(name) is None) == []


def test_the_layout_table_lists_every_stage_package():
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    packages = sorted(path.parent.name for path in (ROOT / "tasks").glob("*/__init__.py"))
    assert [name for name in packages if f"`{name}`" not in layout and f"tasks/{name}/" not in layout] == []
