"""Writing validates the canonical invariants; nested samples are flagged."""

import polars as pl
import pytest

from tasks.core.schema import ENTITY_DTYPE, InvalidSamplesError, read_samples, with_nested_flag, write_samples


def frame(text, entities, nested=False):
    return pl.DataFrame(
        {
            "dataset": ["d"],
            "lang": ["en"],
            "split": ["train"],
            "sample_id": ["d:train:1"],
            "record": [1],
            "text": [text],
            "entities": pl.Series([entities], dtype=ENTITY_DTYPE),
            "nested": [nested],
        }
    )


def test_valid_sample_round_trips_as_zstd_parquet(tmp_path):
    samples = frame("John lives in Paris", [{"start": 0, "end": 4, "label": "PER", "mention": "John"}])
    write_samples(samples, tmp_path / "s.parquet")
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert read_samples(tmp_path / "s.parquet").to_dicts() == samples.to_dicts()
    assert not (tmp_path / "s.parquet.partial").exists()


@pytest.mark.parametrize(
    "entity, reason",
    [
        ({"start": 14, "end": 25, "label": "LOC", "mention": "Paris"}, "span out of range"),
        ({"start": 0, "end": 4, "label": "PER", "mention": "Jon"}, "mention/offset mismatch"),
        ({"start": 0, "end": 4, "label": " ", "mention": "John"}, "empty label"),
    ],
)
def test_write_refuses_invalid_samples(tmp_path, entity, reason):
    with pytest.raises(InvalidSamplesError, match=reason):
        write_samples(frame("John lives in Paris", [entity]), tmp_path / "s.parquet")
    assert not list(tmp_path.iterdir()), "a refused write leaves no file behind"


def test_write_refuses_empty_text(tmp_path):
    with pytest.raises(InvalidSamplesError, match="empty text"):
        write_samples(frame("", []), tmp_path / "s.parquet")


def test_nested_flag_and_entity_order():
    samples = with_nested_flag(
        pl.concat(
            [
                frame(
                    "New York City",
                    [
                        {"start": 0, "end": 13, "label": "LOC", "mention": "New York City"},
                        {"start": 0, "end": 8, "label": "GPE", "mention": "New York"},
                    ],
                ),
                frame(
                    "New York City",
                    [
                        {"start": 9, "end": 13, "label": "X", "mention": "City"},
                        {"start": 0, "end": 3, "label": "X", "mention": "New"},
                    ],
                ),
            ]
        )
    )
    assert samples["nested"].to_list() == [True, False]
    assert [e["start"] for e in samples["entities"][1]] == [0, 9]
    assert [e["end"] for e in samples["entities"][0]] == [8, 13]


def test_read_samples_refuses_a_corrupted_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InvalidSamplesError, match="bad.parquet: not a readable Parquet file"):
        read_samples(tmp_path)


def test_nested_flag_on_sorted_unsorted_touching_and_empty_samples():
    def entity(start, end, label="X"):
        return {"start": start, "end": end, "label": label, "mention": "abcdefghij"[start:end]}

    samples = with_nested_flag(
        pl.concat(
            [
                frame("abcdefghij", [entity(0, 3), entity(3, 5)]),  # touching, sorted: flat
                frame("abcdefghij", [entity(0, 10), entity(2, 3), entity(5, 6)]),  # overlap, sorted
                frame("abcdefghij", []),  # no entities
                frame("abcdefghij", [entity(5, 6), entity(0, 3), entity(3, 5)]),  # unsorted, flat
                frame("abcdefghij", [entity(2, 4, "B"), entity(2, 4, "A")]),  # same span, two labels
            ]
        )
    )
    assert samples["nested"].to_list() == [False, True, False, False, True]
    assert [(e["start"], e["end"]) for e in samples["entities"][3]] == [(0, 3), (3, 5), (5, 6)]
    assert [e["label"] for e in samples["entities"][4]] == ["A", "B"]
