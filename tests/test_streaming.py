"""Readers stream: peak memory does not grow with the file."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import resource, sys
from pathlib import Path
from tasks.formats import FormatSpec, read_file
spec = FormatSpec(sys.argv[2], "en")
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
samples = sum(batch.samples.height for batch in read_file(Path(sys.argv[1]), spec, batch_bytes=1 << 20))
print(samples, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline)
"""


def peak_growth_kb(path: Path, fmt: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), fmt], cwd=ROOT, capture_output=True, text=True, check=True
    )
    samples, growth = out.stdout.split()
    return int(samples), int(growth)


def write_files(folder: Path, sentences: int) -> tuple[Path, Path]:
    sentence = "".join(f"word{i}\t{'B-PER' if i == 3 else 'O'}\n" for i in range(20)) + "\n"
    conll = folder / f"{sentences}.txt"
    conll.write_text(sentence * sentences)
    record = (
        json.dumps(
            {"sentence": "Ann met Bob in town today", "entities": [{"name": "Ann", "type": "person", "pos": [0, 3]}]}
        )
        + "\n"
    )
    lines = folder / f"{sentences}.json"
    lines.write_text(record * sentences)
    return conll, lines


@pytest.mark.integration
def test_memory_stays_flat_as_files_grow(tmp_path):
    small = write_files(tmp_path, 20_000)
    large = write_files(tmp_path, 160_000)  # 8x the records; about 40 MB of tags
    for small_file, large_file, fmt in ((small[0], large[0], "conll"), (small[1], large[1], "b2nerd")):
        small_count, small_growth = peak_growth_kb(small_file, fmt)
        large_count, large_growth = peak_growth_kb(large_file, fmt)
        assert (small_count, large_count) == (20_000, 160_000)
        # A reader that loaded the whole file would grow about 8x; allow noise, not scaling.
        assert large_growth < 2 * small_growth + 64_000, (fmt, small_growth, large_growth)
