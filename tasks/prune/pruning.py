"""Diversity-aware data pruning (B2NERD section 3.2, section 5.4, appendix B.4).

One pool per (dataset, entity type), each holding at most ``k`` samples. A dataset's samples are
visited in a seeded random order; a sample offers itself to every non-full pool of its types and
joins each with probability ``p = clip(1 - max cos(x, y in pool) + b, 0, 1)`` (an empty pool
accepts). A sample that joins any pool is kept whole, with all its entities, and so takes a
place in every open pool of its types (``kept_counts_in: all_types``, the default; ``joined``
counts it only in the pools whose draw it passed, the other reading of "all entity mentions
within it are retained"). A pool's type is the dataset's own label (``pool_label: raw_label``,
the default, as Table 15 counts types) or the standardized one (``label``). On the real
training sets at k = 400, b = 0, the defaults keep within 10% of Table 15's counts for 6 of 10
datasets, joined for 1 (README, Prune). Up to ``k // 5`` samples without entities (the first in
visit order) are kept per dataset. A dataset stops when all its pools are full or all its
samples are visited.

Strategies (``strategy``):

* ``diversity``: the rule above (the paper's, default);
* ``threshold``: appendix B.4's hard filter: join iff ``1 - max cos >= min_distance``;
* ``random_per_type``: the first ``k`` samples of each type in visit order (``p = 1``);
* ``random``: uniform down-sampling of the whole corpus to as many samples as
  ``random_per_type`` keeps with the same ``k``, regardless of type (pools are then unbounded).

Identical results with or without lazy embedding: all randomness is drawn up front from a
generator seeded by ``(seed, dataset)``: the visit order, and one uniform per (sample, type) in
the dataset's row order. Embeddings only decide, never consume random numbers, so embedding
every sample first (``eager``) or only the samples that reach a non-full pool, in batches of
``lookahead`` (the default), selects the same samples. A batch is gathered before its samples are
processed, so a sample whose pools filled meanwhile was embedded for nothing, which changes no
decision. A text's vector does not depend on the texts embedded with it (each text is padded to
a length set by its own token count, :func:`tasks.core.embeddings.encode_by_length`), so lazy and
eager runs see the same vectors bit for bit, in float32 as in bfloat16. A pool is a
preallocated ``float32[k, d]`` matrix of unit vectors; one matrix-vector product gives a
candidate's similarities to all of it.

Resources: CPU for the selection (a Python loop over candidate samples only; samples whose pools
are all full are skipped in vectorized windows), the encoder for embeddings (GPU when present).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import pyarrow as pa

from tasks.core.embeddings import Embedder
from tasks.core.progress import Progress
from tasks.core.schema import STANDARDIZED_SCHEMA
from tasks.prune.options import EMBEDDING_STRATEGIES, PruneOptions

PRUNED_SCHEMA = STANDARDIZED_SCHEMA.append(pa.field("pools", pa.list_(pa.string()), nullable=False))
POOL_FILL_SCHEMA = {
    "dataset": pl.String,
    "lang": pl.String,
    "type": pl.String,
    "available": pl.Int64,
    "kept": pl.Int64,
    "full": pl.Boolean,
    "mean_cosine": pl.Float64,
}
WINDOW = 65_536  # samples checked at once for a non-full pool
MIN_BATCH = 16  # fewest candidates embedded together

EmbedRows = Callable[[np.ndarray], np.ndarray]
log = logging.getLogger(__name__)


@dataclass
class VisitPlan:
    """One dataset's samples in visit order, with their pools as CSR arrays.

    Position ``i`` visits sample row ``order[i]``; its pools are
    ``member_pool[member_offsets[i]:member_offsets[i + 1]]`` (ids into ``pool_types``, sorted),
    each with its own pre-drawn uniform in ``member_uniform``. ``negatives`` are the rows without
    entities, in visit order.
    """

    dataset: str
    order: np.ndarray
    member_offsets: np.ndarray
    member_pool: np.ndarray
    member_uniform: np.ndarray
    pool_types: list[str]
    negatives: np.ndarray

    @property
    def size(self) -> int:
        return len(self.order)


@dataclass
class Selection:
    """What one dataset's pruning kept: ``pools`` has one row per (sample row, pool type) joined."""

    dataset: str
    pools: pl.DataFrame  # row, type
    negatives: np.ndarray  # kept rows without entities
    candidates: int = 0  # samples that reached a non-full pool
    embedded: int = 0  # samples whose vector was asked for (candidates, plus those wasted in a batch)
    pool_mean_cosine: dict[str, float] = field(default_factory=dict)


def dataset_rng(seed: int, dataset: str) -> np.random.Generator:
    """The generator of one dataset: adding or removing another dataset changes nothing here."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode("utf-8"))])


def sample_types(samples: pl.DataFrame, pool_label: str) -> pl.DataFrame:
    """One row ``(row, type)`` per distinct entity label (field ``pool_label``) of each sample, sorted."""
    return (
        samples.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
            pl.col("entities").list.eval(pl.element().struct.field(pool_label)).alias("type"),
        )
        .explode("type")
        .drop_nulls("type")
        .unique()
        .sort("row", "type")
    )


def visit_plan(samples: pl.DataFrame, dataset: str, seed: int, pool_label: str) -> VisitPlan:
    """Draw one dataset's visit order and its per-(sample, type) uniforms; build the CSR arrays."""
    rng = dataset_rng(seed, dataset)
    order = rng.permutation(samples.height)
    members = sample_types(samples, pool_label)
    uniform = rng.random(members.height)
    pool_types = members["type"].unique().sort().to_list()
    position = np.empty(samples.height, dtype=np.int64)
    position[order] = np.arange(samples.height)
    by_position = members.with_columns(
        pl.Series("position", position[members["row"].to_numpy()]),
        pl.col("type").cast(pl.Enum(pool_types)).to_physical().cast(pl.Int32).alias("pool"),
        pl.Series("uniform", uniform),
    ).sort("position", "pool")
    counts = np.bincount(by_position["position"].to_numpy(), minlength=samples.height)
    has_entities = np.zeros(samples.height, dtype=bool)
    has_entities[members["row"].to_numpy()] = True
    return VisitPlan(
        dataset=dataset,
        order=order,
        member_offsets=np.concatenate([[0], np.cumsum(counts)]),
        member_pool=by_position["pool"].to_numpy(),
        member_uniform=by_position["uniform"].to_numpy(),
        pool_types=pool_types,
        negatives=order[~has_entities[order]],
    )


def next_candidates(plan: VisitPlan, open_pools: np.ndarray, start: int, limit: int) -> tuple[np.ndarray, int]:
    """Up to ``limit`` positions from ``start`` on whose sample has a non-full pool now; and where to go on.

    Pools only ever fill, so a sample skipped here would find its pools full at its turn too.
    """
    offsets, found, position = plan.member_offsets, [], start
    wanted = limit
    while position < plan.size and wanted:
        stop = min(plan.size, position + WINDOW)
        open_members = np.concatenate([[0], np.cumsum(open_pools[plan.member_pool[offsets[position] : offsets[stop]]])])
        window_offsets = offsets[position : stop + 1] - offsets[position]
        hits = np.flatnonzero(open_members[window_offsets[1:]] > open_members[window_offsets[:-1]])[:wanted] + position
        found.append(hits)
        wanted -= hits.size
        position = int(hits[-1]) + 1 if not wanted else stop
    return (np.concatenate(found) if found else np.empty(0, dtype=np.int64)), position


def batch_size(fill: np.ndarray, open_pools: np.ndarray, k: int, types_per_sample: float, lookahead: int) -> int:
    """How many candidates to embed next: about as many as could still fill the open pools, at most ``lookahead``.

    A candidate takes at most one slot in each of its pools, so fewer candidates than
    ``free slots / types per sample`` cannot fill them: asking for more only wastes embeddings
    near the end, when most pools are full.
    """
    free_slots = int((k - fill[open_pools]).sum())
    return int(np.clip(free_slots / types_per_sample, MIN_BATCH, lookahead))


def member_joins(
    plan: VisitPlan,
    member: int,
    pools: dict[int, np.ndarray],
    fill: np.ndarray,
    vector: np.ndarray,
    options: PruneOptions,
) -> bool:
    """Whether the sample of ``member`` passes the draw of that member's pool (an empty pool accepts)."""
    pool = int(plan.member_pool[member])
    if not fill[pool]:
        return True
    distance = 1.0 - float(np.max(pools[pool][: fill[pool]] @ vector))
    if options.strategy == "threshold":
        return distance >= options.min_distance
    return bool(plan.member_uniform[member] < distance + options.b)


def diverse_selection(
    plan: VisitPlan, embed_rows: EmbedRows, options: PruneOptions, progress: Progress | None = None
) -> Selection:
    """Fill one dataset's pools by the ``diversity`` or ``threshold`` rule (see the module docstring).

    ``embed_rows(rows)`` returns the unit vectors of sample rows; it is only called for samples
    that reach a non-full pool, ``options.lookahead`` at a time. ``progress`` counts the samples
    visited (skipped ones included) after each batch, and notes how many were embedded.
    """
    k = options.k
    fill = np.zeros(len(plan.pool_types), dtype=np.int64)
    open_pools = np.ones(len(plan.pool_types), dtype=bool)
    pools: dict[int, np.ndarray] = {}
    joined_rows, joined_pools = [], []
    position, candidates, embedded = 0, 0, 0
    types_per_sample = max(len(plan.member_pool) / max(plan.size - len(plan.negatives), 1), 1.0)
    while position < plan.size and open_pools.any():
        visited = position
        batch, position = next_candidates(
            plan, open_pools, position, batch_size(fill, open_pools, k, types_per_sample, options.lookahead)
        )
        if not batch.size:
            break
        vectors = embed_rows(plan.order[batch])
        embedded += batch.size
        for candidate, vector in zip(batch.tolist(), vectors):
            members = range(plan.member_offsets[candidate], plan.member_offsets[candidate + 1])
            reached = [m for m in members if open_pools[plan.member_pool[m]]]
            candidates += bool(reached)
            draws = (member_joins(plan, member, pools, fill, vector, options) for member in reached)
            if options.kept_counts_in == "all_types":  # the first pool that accepts decides for all: no more draws
                joins = [any(draws)] * len(reached)
            else:
                joins = list(draws)
            for member in (member for member, join in zip(reached, joins) if join):
                pool = int(plan.member_pool[member])
                if pool not in pools:
                    pools[pool] = np.empty((k, vector.shape[0]), dtype=np.float32)
                pools[pool][fill[pool]] = vector
                fill[pool] += 1
                open_pools[pool] = fill[pool] < k
                joined_rows.append(int(plan.order[candidate]))
                joined_pools.append(plan.pool_types[pool])
        if progress:
            progress.note(f"{plan.dataset}: {embedded} embedded")
            progress.update(position - visited)
    return Selection(
        dataset=plan.dataset,
        pools=pl.DataFrame({"row": joined_rows, "type": joined_pools}, schema={"row": pl.Int64, "type": pl.String}),
        negatives=plan.negatives[: options.negatives],
        candidates=candidates,
        embedded=embedded,
        pool_mean_cosine={
            plan.pool_types[pool]: mean_pairwise_cosine(matrix[: fill[pool]])
            for pool, matrix in pools.items()
            if fill[pool] > 1
        },
    )


def random_per_type_selection(plan: VisitPlan, options: PruneOptions) -> Selection:
    """The first ``k`` samples of each type in visit order: the diversity loop with ``p = 1``, vectorized."""
    position = np.repeat(np.arange(plan.size), np.diff(plan.member_offsets))
    members = pl.DataFrame({"position": position, "pool": plan.member_pool})
    chosen = members.group_by("pool", maintain_order=True).head(options.k).sort("position", "pool")
    types = np.asarray(plan.pool_types, dtype=object)
    return Selection(
        dataset=plan.dataset,
        pools=pl.DataFrame(
            {"row": plan.order[chosen["position"].to_numpy()], "type": types[chosen["pool"].to_numpy()].tolist()},
            schema={"row": pl.Int64, "type": pl.String},
        ),
        negatives=plan.negatives[: options.negatives],
    )


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine over distinct pairs of unit vectors: ``(|sum x|^2 - n) / (n (n - 1))``, no pair loop."""
    n = len(vectors)
    total = vectors.sum(axis=0, dtype=np.float64)
    return float((total @ total - n) / (n * (n - 1)))


def select_dataset(
    samples: pl.DataFrame,
    dataset: str,
    options: PruneOptions,
    embedder: Embedder | None,
    progress: Progress | None = None,
) -> Selection:
    """Prune one dataset's samples (row order as given) by a per-type strategy.

    ``progress``: see :func:`diverse_selection`.
    """
    plan = visit_plan(samples, dataset, options.seed, options.pool_label)
    if options.strategy not in EMBEDDING_STRATEGIES:
        return random_per_type_selection(plan, options)
    texts = samples["text"]
    if options.eager:
        everything = embedder.embed(texts.to_list())
        selection = diverse_selection(plan, lambda rows: everything[rows], options, progress)
        return replace(selection, embedded=samples.height)
    return diverse_selection(plan, lambda rows: embedder.embed(texts.gather(rows).to_list()), options, progress)


@dataclass
class PruneResult:
    """The kept samples (with their pools), per-pool fill, the table-2 statistics and the counts."""

    kept: pl.DataFrame
    pool_fill: pl.DataFrame
    stats: pl.DataFrame
    counts: dict
    by_dataset: pl.DataFrame  # dataset, raw, kept


def random_down_sampling(samples: pl.DataFrame, options: PruneOptions) -> pl.DataFrame:
    """``row`` of a uniform sample of the whole corpus, as large as ``random_per_type`` would keep."""
    per_type_options = replace(options, strategy="random_per_type")
    per_type = [select_dataset(part, dataset, per_type_options, None) for dataset, part in datasets_of(samples)]
    size = sum(selection.pools["row"].n_unique() + len(selection.negatives) for selection in per_type)
    rows = np.random.default_rng([options.seed, zlib.crc32(b"random")]).choice(samples.height, size=size, replace=False)
    return pl.DataFrame({"row": np.sort(rows)}, schema={"row": pl.Int64})


def datasets_of(samples: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """Each dataset's samples, in dataset name order, rows in their given order."""
    parts = samples.partition_by("dataset", as_dict=True, maintain_order=True)
    return [(name, parts[(name,)]) for name in sorted(name for (name,) in parts)]


def prune(samples: pl.DataFrame, options: PruneOptions, embedder: Embedder | None = None) -> PruneResult:
    """Prune standardized samples (any datasets) by ``options``; ``embedder`` for the embedding strategies."""
    if options.strategy in EMBEDDING_STRATEGIES and embedder is None:
        raise ValueError(f"strategy {options.strategy} needs an embedder")
    started = time.perf_counter()
    embedded_before = (embedder.computed, embedder.reused) if embedder else (0, 0)
    samples = samples.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    with Progress(samples.height, f"prune {options.strategy} k={options.k}", "sample", "prune-progress") as progress:
        if options.strategy == "random":
            kept_rows = random_down_sampling(samples.drop("_row"), options).join(
                sample_types(samples, options.pool_label), on="row", how="left"
            )
            pools = kept_rows.group_by("row").agg(pl.col("type").drop_nulls().alias("pools"))
            selections: list[Selection] = []
            progress.update(samples.height)
        else:
            selections, pools_per_dataset, done = [], [], 0
            for dataset, part in datasets_of(samples):
                selection = select_dataset(part.drop("_row"), dataset, options, embedder, progress)
                selections.append(selection)
                done += part.height
                progress.reach(done, samples.height)  # with the samples left unvisited once its pools were full
                log.info(
                    "%s: %d samples, %d pools, %d kept in pools, %d embedded (%.0f s so far)",
                    dataset,
                    part.height,
                    selection.pools["type"].n_unique(),
                    selection.pools["row"].n_unique(),
                    selection.embedded,
                    time.perf_counter() - started,
                )
                global_row = part["_row"].to_numpy()
                pools_per_dataset.append(
                    pl.concat(
                        [
                            selection.pools.with_columns(
                                pl.Series("row", global_row[selection.pools["row"].to_numpy()], dtype=pl.Int64)
                            ),
                            pl.DataFrame(
                                {"row": global_row[selection.negatives], "type": None},
                                schema={"row": pl.Int64, "type": pl.String},
                            ),
                        ]
                    )
                )
            pools = (
                pl.concat([pl.DataFrame(schema={"row": pl.Int64, "type": pl.String}), *pools_per_dataset])
                .group_by("row")
                .agg(pl.col("type").drop_nulls().sort().alias("pools"))
            )
    kept = samples.join(pools, left_on="_row", right_on="row").sort("_row").drop("_row")
    if embedder:
        embedder.flush()
    pool_fill = pool_fill_table(samples.drop("_row"), kept, options.k, selections, options.pool_label)
    counts = {
        "samples_in": samples.height,
        "samples_out": kept.height,
        # Negatives: samples in no pool (no entity with a pool label), as the visit plan counts them.
        "negatives_raw": samples.height - sample_types(samples, options.pool_label)["row"].n_unique(),
        "negatives_kept": int((kept["pools"].list.len() == 0).sum()),
        "candidates": sum(selection.candidates for selection in selections),
        "samples_embedded": sum(selection.embedded for selection in selections),
        "embeddings_computed": (embedder.computed - embedded_before[0]) if embedder else 0,
        "embeddings_reused": (embedder.reused - embedded_before[1]) if embedder else 0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    by_dataset = (
        samples.group_by("dataset").len("raw").join(kept.group_by("dataset").len("kept"), on="dataset", how="left")
    )
    return PruneResult(
        kept=kept,
        pool_fill=pool_fill,
        stats=statistics_table(samples, kept),
        counts=counts,
        by_dataset=by_dataset.select("dataset", pl.col("raw", "kept").fill_null(0).cast(pl.Int64)).sort("dataset"),
    )


def pool_fill_table(
    samples: pl.DataFrame, kept: pl.DataFrame, k: int, selections: list[Selection], pool_label: str
) -> pl.DataFrame:
    """Per (dataset, type): samples available, kept in the pool, whether full, and the pool's mean pairwise cosine."""

    def per_pool(frame: pl.DataFrame, count: str) -> pl.DataFrame:
        typed = frame.select(
            "dataset",
            "lang",
            pl.col("entities").list.eval(pl.element().struct.field(pool_label)).list.unique().alias("type"),
        )
        return typed.explode("type").drop_nulls("type").group_by("dataset", "lang", "type").len(count)

    if "pools" in kept.columns:
        joined = (
            kept.select("dataset", "lang", pl.col("pools").alias("type"))
            .explode("type")
            .drop_nulls("type")
            .group_by("dataset", "lang", "type")
            .len("kept")
        )
    else:
        joined = per_pool(kept, "kept")
    cosines = pl.DataFrame(
        [(s.dataset, pool, value) for s in selections for pool, value in s.pool_mean_cosine.items()],
        schema={"dataset": pl.String, "type": pl.String, "mean_cosine": pl.Float64},
        orient="row",
    )
    return (
        per_pool(samples, "available")
        .join(joined, on=["dataset", "lang", "type"], how="left")
        .join(cosines, on=["dataset", "type"], how="left")
        .with_columns(pl.col("kept").fill_null(0), (pl.col("kept").fill_null(0) >= k).alias("full"))
        .select(list(POOL_FILL_SCHEMA))
        .cast(POOL_FILL_SCHEMA)
        .sort("dataset", "type")
    )


def statistics_table(samples: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """The paper's table 2 for one split: per language and in total, datasets, types, kept and raw samples.

    ``types`` counts distinct labels of the kept samples (the same label in two datasets once);
    ``pools`` counts (dataset, type) pairs.
    """

    def summary(frame: pl.DataFrame) -> pl.DataFrame:
        labels = (
            frame.select(
                "lang", "dataset", pl.col("entities").list.eval(pl.element().struct.field("label")).alias("type")
            )
            .explode("type")
            .drop_nulls("type")
        )
        counts = frame.group_by("lang").agg(pl.col("dataset").n_unique().alias("datasets"), pl.len().alias("samples"))
        types = labels.group_by("lang").agg(
            pl.col("type").n_unique().alias("types"), pl.struct("dataset", "type").n_unique().alias("pools")
        )
        return counts.join(types, on="lang", how="left")

    def with_total(frame: pl.DataFrame) -> pl.DataFrame:
        return pl.concat([summary(frame), summary(frame.with_columns(pl.lit("total").alias("lang")))])

    raw, pruned = with_total(samples), with_total(kept)
    return (
        raw.select("lang", pl.col("samples").alias("raw"))
        .join(
            pruned.select("lang", "datasets", "types", "pools", pl.col("samples").alias("kept")), on="lang", how="left"
        )
        .select("lang", "datasets", "types", "pools", "kept", "raw")
        .with_columns(
            pl.col("datasets", "types", "pools", "kept").fill_null(0).cast(pl.Int64), pl.col("raw").cast(pl.Int64)
        )
        .sort(pl.col("lang") == "total", "lang")
    )
