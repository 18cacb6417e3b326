"""BENCHMARKS.md upkeep shared by the benchmark scripts."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = "# Benchmarks\n\nWritten by the scripts in `benchmarks/` (see benchmarks/README.md).\n"


def write_section(path: Path | str, section: str) -> None:
    """Replace the ``## Title`` section that ``section`` starts with, or append it; creates the file if needed."""
    path = Path(path)
    title = section.splitlines()[0]
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    body = section.rstrip("\n") + "\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text, encoding="utf-8")
