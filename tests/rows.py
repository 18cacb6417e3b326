"""Rows that tests build by hand: a sample in the pipeline's schema, and a prediction to score."""

from __future__ import annotations


def sample_row(dataset: str, lang: str, split: str, record: int, text: str, entities: list[dict]) -> dict:
    """A sample of ``dataset`` (id ``<dataset>:<split>:<record>``, not nested) holding ``entities`` as given."""
    return {
        "dataset": dataset,
        "lang": lang,
        "split": split,
        "sample_id": f"{dataset}:{split}:{record}",
        "record": record,
        "text": text,
        "entities": entities,
        "nested": False,
    }


def prediction_row(sample: dict, labels: list[str], gold: list[dict], predicted: list[dict]) -> dict:
    """What scoring reads for ``sample`` (its id, dataset, lang, text): the gold, and the answer naming ``predicted``
    in the B2NERD answer format (``label: mention; ...``, ``None`` when empty)."""
    answer = "; ".join(f"{entity['label']}: {entity['mention']}" for entity in predicted) or "None"
    return {
        **{key: sample[key] for key in ("sample_id", "dataset", "lang", "text")},
        "label_set": labels,
        "entities": gold,
        "prediction": answer,
    }
