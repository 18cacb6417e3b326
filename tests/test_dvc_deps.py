"""dvc.yaml's code deps cover everything a stage's command imports, so a change anywhere in its code reruns it."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Imported by every flow, yet no output depends on it: it only picks the Prefect server that runs report to.
NOT_A_DEP = {"flows/__init__.py"}
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def module_file(module: str) -> Path | None:
    """The project file of a dotted module name, or None for a third-party module."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_imports(start: str) -> set[Path]:
    """Every project file that module ``start`` imports, transitively (top-level and function-level imports)."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = module_file(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
        todo += [".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])]  # a package's __init__
    return {path for path in seen if path.name != "__init__.py" or path.stat().st_size}


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    if relative in NOT_A_DEP:
        return True
    return any(relative == dep or relative.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", [name for name, stage in STAGES.items() if "python -m" in stage["cmd"]])
def test_stage_deps_cover_its_code(name):
    stage = STAGES[name]
    module = re.search(r"python -m (\S+)", stage["cmd"]).group(1)
    deps = [dep if isinstance(dep, str) else next(iter(dep)) for dep in stage.get("deps", [])]
    missing = sorted(p.relative_to(ROOT).as_posix() for p in project_imports(module) if not covered(p, deps))
    assert not missing, f"dvc.yaml stage {name} imports files its deps do not list: {missing}"


@pytest.mark.parametrize("name", [name for name, stage in STAGES.items() if "python -m flows." in stage["cmd"]])
def test_stage_depends_on_its_package_folder(name):
    package = re.search(r"python -m flows\.(\w+)", STAGES[name]["cmd"]).group(1)
    assert f"tasks/{package}" in STAGES[name]["deps"]
