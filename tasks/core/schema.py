"""The canonical NER sample: one Arrow schema, its validation, and its Parquet I/O.

Every stage reads and writes samples through this module, so the shape of the data is
defined in exactly one place. Offsets are character offsets into ``text``, end exclusive.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.core.files import atomic_path

ENTITY_TYPE = pa.struct(
    [
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("mention", pa.string(), nullable=False),
    ]
)

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("sample_id", pa.string(), nullable=False),
        # 1-based record number in the source file: sentence ordinal, JSON line or array element.
        pa.field("record", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("entities", pa.list_(ENTITY_TYPE), nullable=False),
        # True when two entities of the sample overlap (ACE, GENIA, CMeEE are nested).
        pa.field("nested", pa.bool_(), nullable=False),
    ]
)

# The standardize stage's output: the same columns, each entity keeping the dataset's own label
# in ``raw_label`` beside the universal one in ``label``.
STANDARDIZED_ENTITY_TYPE = pa.struct([*ENTITY_TYPE, pa.field("raw_label", pa.string(), nullable=False)])
STANDARDIZED_SCHEMA = SAMPLE_SCHEMA.set(
    SAMPLE_SCHEMA.get_field_index("entities"), pa.field("entities", pa.list_(STANDARDIZED_ENTITY_TYPE), nullable=False)
)
# The label sets a test prompt can ask in: the universal ``label`` or the dataset's own ``raw_label``.
LABEL_SOURCES = ("standardized", "original")

POLARS_SCHEMA = pl.Schema(pl.from_arrow(SAMPLE_SCHEMA.empty_table()).schema)
ENTITY_DTYPE = POLARS_SCHEMA["entities"]
STANDARDIZED_ENTITY_DTYPE = pl.from_arrow(STANDARDIZED_SCHEMA.empty_table()).schema["entities"]

REJECT_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string()),
        pa.field("split", pa.string()),
        pa.field("file", pa.string()),
        pa.field("record", pa.int64()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("snippet", pa.string()),
    ]
)

# zstd level 1, not 3: encoding is the critical path of ingest (its background thread is what the
# readers wait for); level 1 cuts the encoding CPU of the B2NERD files by about a fifth, for files
# about 14% larger. Checksums: a flipped byte fails the read.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 1,
    "write_page_checksum": True,
}


UNIQUE_FIELDS = ("sample_id", "record", "text", "mention")  # nearly all distinct: no Parquet dictionary


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The Parquet leaf column paths of ``schema`` to dictionary encode: all but :data:`UNIQUE_FIELDS`.

    A dictionary for nearly distinct strings is built, outgrows its page and is thrown away,
    costing time for nothing; labels, datasets and splits gain from one.
    """

    def leaves(name: str, kind: pa.DataType) -> list[tuple[str, str]]:
        if pa.types.is_list(kind):
            return leaves(f"{name}.list.element", kind.value_type)
        if pa.types.is_struct(kind):
            return [leaf for child in kind for leaf in leaves(f"{name}.{child.name}", child.type)]
        return [(name, name.rsplit(".", 1)[-1])]

    paths = [leaf for field in schema for leaf in leaves(field.name, field.type)]
    return [path for path, last in paths if last not in UNIQUE_FIELDS]


class InvalidSamplesError(ValueError):
    """Raised when a table violates the canonical schema's invariants."""


def sample_problems(samples: pl.DataFrame) -> pl.DataFrame:
    """Return one row ``(row, reason)`` per sample that breaks an invariant, first problem only.

    Checks, vectorized over all entities at once: non-empty text, offsets inside the text
    with ``start < end``, ``mention == text[start:end]``, non-empty label.
    """
    rows = samples.lazy().select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "text", "entities")
    empty_text = rows.filter(pl.col("text").str.len_chars() == 0).select("row", pl.lit("empty text").alias("reason"))
    spans = (
        rows.explode("entities")
        .drop_nulls("entities")
        .unnest("entities")
        .with_columns(pl.col("text").str.len_chars().alias("length"))
    )
    in_range = (pl.col("start") >= 0) & (pl.col("start") < pl.col("end")) & (pl.col("end") <= pl.col("length"))
    covered = pl.col("text").str.slice(pl.col("start"), pl.col("end") - pl.col("start"))
    reason = (
        pl.when(~in_range)
        .then(pl.format("span out of range: [{}, {}) in text of {} chars", "start", "end", "length"))
        .when(covered != pl.col("mention"))
        .then(
            pl.format(
                "mention/offset mismatch: mention '{}' but text[{}:{}] is '{}'", "mention", "start", "end", covered
            )
        )
        .when(pl.col("label").str.strip_chars() == "")
        .then(pl.lit("empty label"))
    )
    suspect = ~in_range | (covered != pl.col("mention")) | (pl.col("label").str.strip_chars() == "")
    # Messages are formatted for the few suspect spans only, not for every entity.
    bad_spans = spans.filter(suspect).select("row", reason.alias("reason")).drop_nulls("reason")
    # One query: polars runs it as one plan, which matters for the many small batches of small files.
    return (
        pl.concat([empty_text, bad_spans])
        .group_by("row", maintain_order=True)
        .agg(pl.col("reason").first())
        .sort("row")
        .collect()
    )


def with_nested_flag(samples: pl.DataFrame) -> pl.DataFrame:
    """Sort each sample's entities by (start, end, label) and set ``nested`` where two overlap.

    Works on the entities laid flat, one row each, in sample order: readers mostly emit them
    sorted already, so only the samples found out of order pay for a per-list sort. Sorted by
    start, a sample is nested iff two neighbours overlap (if any entity overlaps an earlier
    one, the entity right after that earlier one overlaps it too).
    """

    def flat(frame: pl.DataFrame) -> pl.LazyFrame:
        return (
            frame.lazy()
            .select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "entities")
            .explode("entities")
            .unnest("entities")
        )

    def rows_where(condition: pl.Expr) -> pl.Expr:
        return pl.col("row").filter(condition).unique().implode()

    row = pl.int_range(pl.len(), dtype=pl.Int64)
    same_sample = pl.col("row") == pl.col("row").shift(1)
    earlier = {name: pl.col(name).shift(1) for name in ("start", "end", "label")}
    out_of_order = same_sample & (
        (pl.col("start") < earlier["start"])
        | (
            (pl.col("start") == earlier["start"])
            & (
                (pl.col("end") < earlier["end"])
                | ((pl.col("end") == earlier["end"]) & (pl.col("label") < earlier["label"]))
            )
        )
    )
    overlaps = same_sample & (pl.col("start") < earlier["end"])
    # One pass finds both: the overlaps found are right unless some sample must be sorted first.
    found = (
        flat(samples)
        .select(rows_where(out_of_order).alias("unsorted"), rows_where(overlaps).alias("overlapping"))
        .collect()
    )
    unsorted, overlapping = found["unsorted"][0], found["overlapping"][0]
    if len(unsorted):
        by_position = pl.col("entities").list.eval(
            pl.element().sort_by(
                pl.element().struct.field("start"), pl.element().struct.field("end"), pl.element().struct.field("label")
            )
        )
        samples = samples.with_columns(
            pl.when(row.is_in(unsorted.implode())).then(by_position).otherwise("entities").alias("entities")
        )
        overlapping = flat(samples).select(rows_where(overlaps)).collect().to_series()[0]
    return samples.with_columns(row.is_in(overlapping.implode()).alias("nested"))


def to_arrow(samples: pl.DataFrame, schema: pa.Schema = SAMPLE_SCHEMA) -> pa.Table:
    """Cast a polars frame with the canonical columns to the Arrow table of ``schema``."""
    return samples.select(schema.names).to_arrow().cast(schema)


def validate(samples: pl.DataFrame) -> None:
    """Raise :class:`InvalidSamplesError` naming the first bad sample, if any breaks an invariant."""
    missing = [name for name in SAMPLE_SCHEMA.names if name not in samples.columns]
    if missing:
        raise InvalidSamplesError(f"missing columns {missing}")
    problems = sample_problems(samples)
    if problems.height:
        row, reason = problems.row(0)
        sample_id = samples["sample_id"][row]
        raise InvalidSamplesError(f"{problems.height} invalid samples; first: {sample_id}: {reason}")


_ENCODERS: dict[int, ThreadPoolExecutor] = {}


def _encoder() -> ThreadPoolExecutor:
    """The thread that encodes and compresses Parquet batches, shared by every writer of this process.

    Starting one per file costs more than a small file's whole encoding. Keyed by process id: a
    forked child, which inherits the executor but not its thread, gets its own.
    """
    pid = os.getpid()
    if pid not in _ENCODERS:
        _ENCODERS[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
    return _ENCODERS[pid]


class SampleWriter:
    """Stream validated samples into one zstd Parquet file, atomically.

    Rows go to ``<path>.partial`` (:func:`tasks.core.files.atomic_path`) and the file is renamed into
    place only on :meth:`close`, so a killed run never leaves a file that a later stage could
    mistake for complete. A batch is encoded and compressed on a background thread (one for all
    writers) while the caller prepares the next one; at most one batch per writer is in flight, so
    memory stays flat, and an error of a batch is raised by the next :meth:`write` or by :meth:`close`.
    """

    def __init__(self, path: Path, schema: pa.Schema = SAMPLE_SCHEMA):
        self.path = Path(path)
        self.schema = schema
        self._target = ExitStack()
        self._writer = pq.ParquetWriter(
            self._target.enter_context(atomic_path(self.path)),
            schema,
            use_dictionary=dictionary_columns(schema),
            **PARQUET_OPTIONS,
        )
        self._pending: Future | None = None
        self.rows = 0

    def write(self, samples: pl.DataFrame, validated: bool = False) -> None:
        """Validate ``samples`` and append them; ``validated``: the caller already dropped every sample
        :func:`sample_problems` flags, so they are not checked twice."""
        if not validated:
            validate(samples)
        self._finish_pending()
        self._pending = _encoder().submit(self._append, samples)
        self.rows += samples.height

    def _append(self, samples: pl.DataFrame) -> None:
        self._writer.write_table(to_arrow(samples, self.schema))

    def _finish_pending(self) -> None:
        """Wait for the batch in flight, raising its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Finish the file and move it into place."""
        self._finish_pending()
        self._writer.close()
        self._target.close()

    def _abandon(self, error: BaseException) -> None:
        """Stop writing and remove the partial file."""
        if self._pending is not None:
            wait([self._pending])  # the batch in flight ends before its file goes
        self._writer.close()
        self._target.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abandon(exc)
            return
        try:
            self._finish_pending()
        except BaseException as error:
            self._abandon(error)
            raise
        self.close()


def write_samples(samples: pl.DataFrame, path: Path) -> None:
    """Validate and write one table of samples to ``path`` as zstd Parquet, atomically."""
    with SampleWriter(path) as writer:
        writer.write(samples)


def read_samples(path: Path | str, schema: pa.Schema = SAMPLE_SCHEMA) -> pl.DataFrame:
    """Read samples of ``schema`` from a Parquet file, a directory of them, or a glob.

    Fails with a clear error when a file is not valid Parquet or lacks the canonical columns,
    so a corrupted intermediate is never silently consumed.
    """
    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else sorted(path.parent.glob(path.name))
    if not files:
        raise FileNotFoundError(f"no Parquet samples at {path}")
    frames = []
    for file in files:
        try:
            table = pq.read_table(file, page_checksum_verification=True)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise InvalidSamplesError(f"{file}: not a readable Parquet file ({error})") from error
        missing = [name for name in schema.names if name not in table.column_names]
        if missing:
            raise InvalidSamplesError(f"{file}: missing canonical columns {missing}")
        frames.append(pl.from_arrow(table.select(schema.names).cast(schema)))
    return pl.concat(frames)


def parquet_rows(path: Path | str) -> int:
    """Rows in every Parquet file under ``path`` (a file or a folder), from the files' metadata alone."""
    path = Path(path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    return sum(pq.read_metadata(file).num_rows for file in files)


def first_split(samples_dir: Path, dataset: str, splits: list[str]) -> tuple[str, Path] | None:
    """The first of ``splits`` whose ``<samples_dir>/<dataset>/<split>.parquet`` exists, with its path.

    None if none does.
    """
    for split in splits:
        path = Path(samples_dir) / dataset / f"{split}.parquet"
        if path.is_file():
            return split, path
    return None
