"""BENCHMARKS.md upkeep shared by the benchmark scripts."""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
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


def machine(cores: int) -> str:
    """CPUs (available and used), CPU model, RAM and Python, from os and /proc."""
    model, memory = platform.processor() or "unknown CPU", "unknown RAM"
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.is_file():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    if meminfo.is_file():
        found = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.MULTILINE)
        memory = f"{int(found.group(1)) / 1024**2:.1f} GiB RAM" if found else memory
    return (
        f"{len(os.sched_getaffinity(0))} CPUs available, {cores} used; {model}; {memory}; "
        f"Python {platform.python_version()}"
    )


def command_line() -> str:
    """How this benchmark was started, as ``python -m benchmarks.<name> args``."""
    import __main__

    module = getattr(getattr(__main__, "__spec__", None), "name", None)
    return " ".join(["python", "-m", module] if module else ["python", sys.argv[0]]) + "".join(
        f" {arg}" for arg in sys.argv[1:]
    )


def run_header(cores: int) -> str:
    """Date, machine, load average and command of this run: the line every section starts with."""
    return (
        f"Date {datetime.date.today().isoformat()}; machine: {machine(cores)}; "
        f"load average {os.getloadavg()[0]:.1f} at the start. "
        f"Command: `{command_line()}`."
    )
