"""The export stage's report: per export and in total, samples and entities in, out and left out with the reason."""

from __future__ import annotations

from tasks.core.counts import stage_counts
from tasks.export.exports import ExportCounts


def export_entry(counts: ExportCounts, read_back: int) -> dict:
    """One export's counts: ``samples_*`` and ``dropped/<reason>``, ``entities_in``, ``entities_out`` and
    ``entities_dropped/<reason>``, both reconciled; ``entities_skipped_by_tool/<reason>`` (exported, but the tool's
    training skips them); and the samples its read-back check found as written."""
    samples = stage_counts(f"export {counts.name}", counts.samples_in, counts.samples_out, counts.samples_dropped)
    entities = stage_counts(
        f"export {counts.name} entities", counts.entities_in, counts.entities_out, counts.entities_dropped
    )
    return {
        **samples,
        **{"entities_" + key.removeprefix("samples_"): value for key, value in entities.items()},
        **{f"entities_skipped_by_tool/{reason}": n for reason, n in counts.entities_skipped_by_tool.items()},
        "read_back_samples": read_back,
    }


def export_metrics(results: list[tuple[ExportCounts, int]]) -> dict:
    """The stage's counts over every export (reasons named ``<export>_<reason>``), then each export's own."""
    dropped = {f"{counts.name}_{reason}": n for counts, _ in results for reason, n in counts.samples_dropped.items()}
    return {
        **stage_counts(
            "export",
            samples_in=sum(counts.samples_in for counts, _ in results),
            samples_out=sum(counts.samples_out for counts, _ in results),
            dropped=dropped,
        ),
        "entities_in": sum(counts.entities_in for counts, _ in results),
        "entities_out": sum(counts.entities_out for counts, _ in results),
        **{counts.name: export_entry(counts, read_back) for counts, read_back in results},
    }
