"""Where a benchmark's time goes: cProfile's top entries, named and tabled the same way in every section."""

from __future__ import annotations

import cProfile
import pstats
import re
from pathlib import Path


def top_entries(profiler: cProfile.Profile, entries: int) -> list[dict]:
    """The ``entries`` functions with the most own time in everything ``profiler`` ran.

    Each row: ``function`` (:func:`function_name`), ``calls``, ``own_s``, ``cumulative_s`` and
    ``share`` (own seconds over all profiled seconds).
    """
    stats = pstats.Stats(profiler)
    total = max(stats.total_tt, 1e-9)
    # stats.stats: {(file, line, name): (primitive calls, calls, own s, cumulative s, callers)}
    top = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:entries]
    return [
        {
            "function": function_name(*where),
            "calls": calls,
            "own_s": own,
            "cumulative_s": cumulative,
            "share": own / total,
        }
        for where, (_, calls, own, cumulative, _) in top
    ]


def own_share(profiler: cProfile.Profile, pattern: str) -> float:
    """Share of all profiled own time spent in functions whose :func:`function_name` matches ``pattern``."""
    stats = pstats.Stats(profiler)
    matching = re.compile(pattern)
    own = sum(row[2] for where, row in stats.stats.items() if matching.search(function_name(*where)))
    return own / max(stats.total_tt, 1e-9)


def function_name(file: str, line: int, name: str) -> str:
    """``tasks/evaluate/errta.py:133 classify_errors``; a built-in as its name, a library file from its package."""
    if file == "~":
        return re.sub(r" at 0x[0-9a-f]+", "", name).strip("<>")
    path = Path(file)
    parts = path.parts
    shown = "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else file
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        shown = str(path.relative_to(Path.cwd()))
    return f"{shown}:{line} {name}"


def profile_table(rows: list[dict]) -> str:
    """:func:`top_entries` as a Markdown table."""
    lines = [
        "| function | calls | own s | share of profiled time | cumulative s |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.3f} | {row['share']:.1%} "
            f"| {row['cumulative_s']:.3f} |"
        )
    return "\n".join(lines)
