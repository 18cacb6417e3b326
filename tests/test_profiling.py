"""The benchmarks' profile tables (benchmarks/profiling.py): the right functions, named, with their shares."""

from __future__ import annotations

import cProfile
import time

from benchmarks.profiling import function_name, own_share, profile_table, top_entries


def _sleepy() -> None:
    time.sleep(0.2)


def _busy() -> int:
    return sum(i * i for i in range(2_000))


def _both() -> None:
    _sleepy()
    _busy()


def test_the_top_entry_is_the_function_with_the_most_own_time():
    profiler = cProfile.Profile()
    profiler.runcall(_both)
    top = top_entries(profiler, 3)
    assert top[0]["function"] == "built-in method time.sleep"
    assert 0.19 < top[0]["own_s"] < 1.0
    assert abs(sum(row["share"] for row in top_entries(profiler, 100)) - 1) < 1e-6
    assert own_share(profiler, r"time\.sleep") == top[0]["share"]
    assert own_share(profiler, r"no such function") == 0


def test_names_are_relative_to_the_project_and_tables_show_each_row():
    assert function_name(__file__, 12, "_sleepy") == "tests/test_profiling.py:12 _sleepy"
    assert function_name("~", 0, "<built-in method torch._C._nn.linear>") == "built-in method torch._C._nn.linear"
    assert function_name("/x/site-packages/polars/frame.py", 3, "f") == "polars/frame.py:3 f"
    table = profile_table([{"function": "f", "calls": 1200, "own_s": 0.5, "cumulative_s": 1.0, "share": 0.25}])
    assert table.splitlines()[2] == "| `f` | 1,200 | 0.500 | 25.0% | 1.000 |"
