"""Embeddings: the bundled encoder offline, and a disk cache that embeds nothing twice and survives killed writers."""

import numpy as np
import pytest

from tasks.core.embeddings import (
    COMPACT_ABOVE_SHARDS,
    DEFAULT_MODEL,
    Embedder,
    EmbeddingCache,
    EncoderNotFoundError,
    model_slug,
    resolve_model,
    text_keys,
)

TEXTS = [
    "The president visited Paris on Monday .",
    "The prime minister travelled to Berlin on Tuesday .",
    "Mix the flour with two eggs and bake for an hour .",
    "北京是中国的首都。",
    "上海是中国最大的城市。",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bundled_model_gives_unit_vectors_that_rank_meaning(tmp_path):
    embedder = Embedder(cache_dir=tmp_path)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1, "two state visits are closer than a visit and a recipe"
    assert embedder.computed == 5 and embedder.reused == 0


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_vector_does_not_depend_on_the_texts_batched_with_it(precision):
    """Lazy pruning embeds small batches, eager pruning everything at once: both must see the same vector of a text."""
    alone = [Embedder(cache_dir=None, precision=precision).embed([text])[0] for text in TEXTS]
    together = Embedder(cache_dir=None, precision=precision, batch_size=2).embed(
        TEXTS[::-1] + ["A much longer sentence that would pad every other text of its batch if batches were padded ."]
    )
    assert all(np.array_equal(vector, together[len(TEXTS) - 1 - i]) for i, vector in enumerate(alone)), "bit for bit"


def test_cache_embeds_nothing_twice(tmp_path):
    first = Embedder(cache_dir=tmp_path)
    vectors = first.embed(TEXTS[:3])
    first.flush()
    [shard] = (tmp_path / model_slug(DEFAULT_MODEL, precision=first.precision)).glob("shard-*.npz")
    assert not list(shard.parent.glob(".*.partial")), "a finished shard leaves no partial file"

    second = Embedder(cache_dir=tmp_path)  # a fresh instance reads the shard from disk
    again = second.embed(TEXTS)
    assert second.computed == 2 and second.reused == 3
    assert np.array_equal(again[:3], vectors), "cached vectors come back bit for bit"
    second.embed(TEXTS + TEXTS[:1])
    assert second.computed == 2, "texts already seen in this process are not encoded again"


def test_killed_and_damaged_shards_are_ignored(tmp_path):
    root = tmp_path / "model"
    cache = EmbeddingCache(root)
    cache.add(text_keys(["kept"]), np.ones((1, 4), dtype=np.float32))
    cache.flush()
    (root / ".shard-1-1-dead.npz.partial").write_bytes(b"half a shard from a killed writer")
    (root / "shard-2-2-damaged.npz").write_bytes(b"not an npz file")
    reloaded = EmbeddingCache(root)
    assert len(reloaded) == 1 and np.array_equal(reloaded.get(text_keys(["kept"])), np.ones((1, 4)))


def test_many_shards_are_compacted_into_one(tmp_path):
    root = tmp_path / "model"
    writer = EmbeddingCache(root)
    for index in range(COMPACT_ABOVE_SHARDS + 1):
        writer.add(text_keys([f"text {index}"]), np.full((1, 4), index, dtype=np.float32))
        writer.flush()
    assert len(list(root.glob("shard-*.npz"))) == COMPACT_ABOVE_SHARDS + 1
    compacted = EmbeddingCache(root)
    assert len(list(root.glob("shard-*.npz"))) == 1
    assert len(compacted) == COMPACT_ABOVE_SHARDS + 1
    assert compacted.get(text_keys(["text 7"]))[0, 0] == 7


def test_unknown_model_fails_without_downloading(tmp_path):
    with pytest.raises(EncoderNotFoundError, match="no-such-org/no-such-model.*nothing is downloaded"):
        resolve_model("no-such-org/no-such-model")
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(EncoderNotFoundError, match="neither modules.json nor config.json"):
        resolve_model(str(tmp_path / "empty-model"))
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == resolve_model(DEFAULT_MODEL)


def test_slug_separates_models_and_truncation(tmp_path):
    assert model_slug(DEFAULT_MODEL) == model_slug("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert model_slug(DEFAULT_MODEL, 128) == "all-MiniLM-L6-v2-len128"
    assert model_slug("WhereIsAI/UAE-Large-V1") == "WhereIsAI--UAE-Large-V1"
    (tmp_path / "a" / "model").mkdir(parents=True)
    (tmp_path / "b" / "model").mkdir(parents=True)
    assert model_slug(str(tmp_path / "a" / "model")) != model_slug(str(tmp_path / "b" / "model"))
