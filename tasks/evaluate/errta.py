"""ERRTA: error type analysis of NER predictions (OmniNER2025 section 5), and its guided prompt.

Units are (mention, category) pairs located at character spans (:func:`tasks.evaluate.answers.locate_mentions`),
so Chinese (no spaces) and English are handled alike and a repeated mention is two units.
Per sample, after exact matches (same span, same label) are removed, the remaining gold and
predicted units are classified in this order, each unit used at most once:

1. ``classification``: same span, different label (one gold, one prediction).
2. ``split``: one gold unit with two or more predictions inside its span, labels ignored
   (``2024 Olympics`` -> ``2024`` + ``Olympics``); counted once per split gold unit.
3. ``merge``: one prediction whose span holds two or more gold units; counted once per prediction.
4. ``split`` or ``merge`` at the edges: a gold and a predicted unit that overlap and differ only
   by whitespace or punctuation at their ends (section 5.1.5's ``2.0t`` against ``2.0t.``); a
   ``split`` when the prediction is the shorter (it splits characters off the entity), else a
   ``merge`` (it merges characters into it). Labels are ignored, as in steps 2 and 3.
5. ``boundary``: a gold and a predicted unit that overlap but differ in span. Pairs of the same
   label are taken first, then by largest overlap; a pair whose labels also differ is still one
   boundary error (its example shows both labels).
6. ``missing``: gold units left; ``redundant``: predictions left, including those whose mention
   is not in the text.

The paper's five types are these six with ``split`` and ``merge`` together as its "splitting or
merging errors" (SME). Within each step candidates are ordered by offsets and labels, never by set
or hash order, so the same input always gives the same counts. (The OmniNER2025 release walks
Python sets, whose order changes with the hash seed, and detects splits by whitespace tokens,
which never fires on Chinese text.)

Where the reference script is ambiguous, the paper's letter decides, case by case (each case is
a test in tests/test_errta.py):

- A trailing space or punctuation mark against the gold mention (section 5.1.5, sentences s8
  and s9) is a splitting or merging error, not a boundary error: step 4. A gold mention whose
  annotated span ends in a space (``Nanci `` against the predicted ``Nanci``) is the same case.
- A predicted mention with spaces around it (``Nanci `` in the answer) is not an error here: the
  answer parser strips them before the mention is located, the remedy section 5.1.5 itself names
  ("removing leading and trailing spaces"), so F1 scores the pair correct and ERRTA, which only
  explains what F1 counts wrong, agrees with it.
- Where the paper is silent, these choices are written down: a wrong span with a wrong label is
  one boundary error (not a classification error too); a repeated mention is one unit per
  occurrence; a predicted mention not found in the text is redundant; pieces of a split and parts
  of a merge may carry any labels; the category of a ``redundant`` or ``merge`` error is the
  predicted label, of every other type the gold label.

``ERRTA_GUIDANCE`` is the ERRTA-guided prompt of OmniNER2025 Figure 2 (role, five error types
with corrections, self-check), in English and Chinese; :func:`with_errta_guidance` puts it in
front of an instruction prompt so that its effect on F1 and error counts can be measured as in
Table 6. The figure's own output-format lines are left out: the B2NERD instruction that follows
states the answer format the parser expects.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

import polars as pl

from tasks.evaluate.answers import label_key
from tasks.evaluate.scoring import map_distinct

ERROR_TYPES = ("classification", "boundary", "missing", "redundant", "split", "merge")
ERROR_SCHEMA = {
    "dataset": pl.String,
    "sample_id": pl.String,
    "error_type": pl.String,
    "category": pl.String,
    "gold": pl.String,
    "predicted": pl.String,
    "text": pl.String,
    "position": pl.Int64,
}

EDGE_CHARACTERS = "".join(
    chr(code) for code in range(0x10000) if chr(code).isspace() or unicodedata.category(chr(code)).startswith("P")
)  # whitespace and punctuation of the Basic Multilingual Plane (CJK's and full-width forms' too): step 4's edges

ERRTA_GUIDANCE = {
    "en": (
        "You are an advanced AI model specifically designed for precise named entity recognition and classification "
        "in text. Named entities include {categories}. Follow the steps below to ensure accurate entity extraction "
        "and categorization.\n"
        "Step 1: Understanding Common Error Types. Before making predictions, recognize five common error types and "
        "avoid them.\n"
        "- Classification Error (CE): the entity is recognized correctly, but its classification is incorrect. "
        'Example: labelling ["Chanel", "product category"] when the correct classification is ["Chanel", "brand"]. '
        'Correction: "Chanel" refers to a brand, not a product category.\n'
        "- Boundary Error (BE): the extracted entity span does not match the full correct phrase. Example: extracting "
        '["Shampoo", "product category"] when the correct entity is ["Gentle Shampoo", "product category"]. '
        "Correction: extract the full entity phrase without truncation.\n"
        "- Missing Entity (ME): an entity that should be present is not recognized. Example: not recognizing "
        '["Hairball Syndrome", "pet health issue"]. Correction: identify all meaningful entities in the text.\n'
        "- Redundant Entity (RE): non-entity words are recognized as named entities. Example: extracting "
        '["Beautiful", "style"]. Correction: filter out adjectives, verbs and general descriptive words.\n'
        "- Splitting/Merging Error (SME): entities are incorrectly split or merged. Example: outputting "
        '["2024", "time"] and ["Olympics", "event"] when the correct entity is ["2024 Olympics", "event"]. '
        "Correction: extract multi-word entities as a whole without improper splitting.\n"
        "Step 2: Error Self-Check. Before giving the final answer, check: Is each entity span complete? Is each "
        "classification accurate (if several categories apply, choose the most specific correct one)? Are all "
        "important entities included? Are redundant entities removed? Are entities properly split or merged?"
    ),
    "zh": (
        "你是一个专门用于在文本中精确识别和分类命名实体的高级人工智能模型。"
        "命名实体包括{categories}。请按照以下步骤确保实体抽取和分类准确。"
        "\n"
        "第一步：理解常见错误类型。在预测之前，先认识以下五种常见错误并避免它们。\n"
        '- 分类错误（CE）：实体识别正确，但类别错误。例如：模型标注["香奈儿", "产品类别"]，正确应为["香奈儿", "品牌"]。'
        '纠正："香奈儿"指品牌，而不是产品类别。\n'
        "- 边界错误（BE）：抽取的实体范围与完整正确的短语不一致。例如："
        '模型抽取["洗发水", "产品类别"]，正确实体为["温和洗发水", "产品类别"]。'
        "纠正：完整抽取实体短语，不要截断。\n"
        '- 实体缺失（ME）：模型没有识别出应当存在的实体。例如：没有识别出["毛球症", "宠物健康问题"]。'
        "纠正：确保识别出文本中所有有意义的实体。\n"
        '- 多余实体（RE）：模型把非实体词语识别为命名实体。例如：抽取["漂亮", "风格"]。'
        "纠正：过滤掉形容词、动词和一般描述性词语。\n"
        '- 拆分或合并错误（SME）：模型错误地拆分或合并实体。例如：输出["2024", "时间"]和["奥运会", "事件"]，'
        '正确实体应为["2024奥运会", "事件"]。'
        "纠正：多词实体应作为整体抽取，不要错误拆分。\n"
        "第二步：错误自检。在给出最终答案之前检查：实体范围是否完整？实体分类是否准确（若多个类别适用，"
        "选择最具体且正确的一个）？"
        "是否包含了所有重要实体？是否去除了多余实体？实体是否被正确拆分或合并？"
    ),
}


def with_errta_guidance(prompt: str, label_set: list[str], lang: str) -> str:
    """The ERRTA-guided variant of an instruction ``prompt``: Figure 2's guidance, then the prompt."""
    separator = "、" if lang == "zh" else ", "
    guidance = ERRTA_GUIDANCE["zh" if lang == "zh" else "en"].format(categories=separator.join(label_set))
    return f"{guidance}\n\n{prompt}"


class Unit(NamedTuple):
    """One (mention, category) unit; ``start`` is None for a prediction not found in the text.

    Immutable, equal and hashed by its four fields (a tuple: built several times faster than a frozen dataclass).
    """

    label: str
    mention: str
    start: int | None
    end: int | None

    @property
    def order(self) -> tuple:
        return (self.start is None, self.start or 0, self.end or 0, label_key(self.label), self.mention)

    def contains(self, other: Unit) -> bool:
        return (
            self.start is not None and other.start is not None and self.start <= other.start and other.end <= self.end
        )

    def overlap(self, other: Unit) -> int:
        if self.start is None or other.start is None:
            return 0
        return max(0, min(self.end, other.end) - max(self.start, other.start))

    def core(self) -> str:
        """The mention without whitespace and punctuation at its ends."""
        return self.mention.strip(EDGE_CHARACTERS) if self.start is not None else ""

    def describe(self) -> str:
        where = f" [{self.start},{self.end})" if self.start is not None else " [not in text]"
        return f"{self.label}: {self.mention}{where}"


def classify_errors(gold: list[Unit], predicted: list[Unit]) -> list[tuple[str, list[Unit], list[Unit]]]:
    """The ERRTA errors of one sample as (error_type, gold units, predicted units), by the module's rules."""
    gold = sorted(gold, key=lambda unit: unit.order)
    left = sorted(predicted, key=lambda unit: unit.order)
    errors: list[tuple[str, list[Unit], list[Unit]]] = []

    def same_span(a: Unit, b: Unit) -> bool:
        return a.start is not None and (a.start, a.end) == (b.start, b.end)

    def take(candidates: list[Unit], test) -> Unit | None:
        for unit in candidates:
            if test(unit):
                candidates.remove(unit)
                return unit
        return None

    missing = []
    for unit in gold:  # exact matches are not errors
        if take(left, lambda p, unit=unit: same_span(p, unit) and label_key(p.label) == label_key(unit.label)) is None:
            missing.append(unit)
    for unit in list(missing):
        wrong_label = take(left, lambda p, unit=unit: same_span(p, unit))
        if wrong_label is not None:
            missing.remove(unit)
            errors.append(("classification", [unit], [wrong_label]))
    for unit in list(missing):
        pieces = [p for p in left if unit.contains(p) and not same_span(p, unit)]
        if len(pieces) >= 2:
            missing.remove(unit)
            left[:] = [p for p in left if p not in pieces]
            errors.append(("split", [unit], pieces))
    for prediction in list(left):
        parts = [g for g in missing if prediction.contains(g) and not same_span(g, prediction)]
        if len(parts) >= 2:
            left.remove(prediction)
            missing[:] = [g for g in missing if g not in parts]
            errors.append(("merge", parts, [prediction]))
    for g, p in [(g, p) for g in missing for p in left if g.overlap(p) > 0 and g.core() and g.core() == p.core()]:
        if g in missing and p in left:
            missing.remove(g)
            left.remove(p)
            errors.append(("split" if p.end - p.start < g.end - g.start else "merge", [g], [p]))
    pairs = sorted(
        ((g, p) for g in missing for p in left if g.overlap(p) > 0),
        key=lambda pair: (
            label_key(pair[0].label) != label_key(pair[1].label),
            -pair[0].overlap(pair[1]),
            pair[0].order,
            pair[1].order,
        ),
    )
    for g, p in pairs:
        if g in missing and p in left:
            missing.remove(g)
            left.remove(p)
            errors.append(("boundary", [g], [p]))
    errors.extend(("missing", [g], []) for g in missing)
    errors.extend(("redundant", [], [p]) for p in left)
    return errors


def error_category(error_type: str, gold: list[Unit], predicted: list[Unit]) -> str:
    """The category an error is filed under: the gold label, or the predicted one where no gold unit leads."""
    return predicted[0].label if error_type in ("redundant", "merge") else gold[0].label


def rows_with_errors(samples: pl.DataFrame) -> pl.Series:
    """Indices of the samples where :func:`classify_errors` can find an error, in order.

    The others have the same gold and predicted units as multisets of (start, end, label key), all
    located: every gold unit then has its exact match, and no unit is left over.
    """
    row = pl.int_range(pl.len(), dtype=pl.UInt32).alias("row")
    sides = [
        samples.select(row, column)
        .explode(column)
        .drop_nulls(column)
        .unnest(column)
        .select("row", "start", "end", "label", pl.lit(sign, dtype=pl.Int32).alias("side"))
        for column, sign in (("entities", 1), ("pred", -1))
    ]
    units = pl.concat(sides)
    unlocated = pl.col("start").is_null() | pl.col("end").is_null()
    differing = (
        units.with_columns(map_distinct(units["label"], label_key).alias("key"))
        .group_by("row", "start", "end", "key")
        .agg(((pl.col("side").sum() != 0) | unlocated.any()).alias("differs"))
    )
    return differing.filter("differs")["row"].unique().sort()


def units_per_sample(column: pl.Series) -> list[list[Unit]]:
    """The Units of each list of a column of (label, mention, start, end) structs; none for a null list.

    Converted field by field, flat: several times faster than structs row by row.
    """
    lengths = column.list.len().fill_null(0)
    flat = column.filter(lengths > 0).list.explode().struct.unnest()
    units = list(map(Unit, *(flat[name].to_list() for name in ("label", "mention", "start", "end"))))
    out, first = [], 0
    for length in lengths.to_list():
        out.append(units[first : first + length])
        first += length
    return out


def errta_errors(samples: pl.DataFrame) -> pl.DataFrame:
    """One row per ERRTA error over parsed samples.

    ``entities`` is the gold, ``pred`` the prediction from :func:`tasks.evaluate.scoring.parse_predictions`.
    Only the samples of :func:`rows_with_errors` are classified.
    """
    rows = rows_with_errors(samples)
    chosen = samples[rows]
    found: dict[str, list] = {"row": [], "error_type": [], "category": [], "gold": [], "predicted": [], "position": []}
    for row, gold, predicted in zip(
        rows.to_list(), units_per_sample(chosen["entities"]), units_per_sample(chosen["pred"])
    ):
        for position, (error_type, gold_units, predicted_units) in enumerate(classify_errors(gold, predicted)):
            values = (
                row,
                error_type,
                error_category(error_type, gold_units, predicted_units),
                "; ".join(u.describe() for u in gold_units),
                "; ".join(u.describe() for u in predicted_units),
                position,
            )
            for name, value in zip(found, values):
                found[name].append(value)
    errors = pl.DataFrame(found, schema={"row": pl.UInt32} | {name: ERROR_SCHEMA[name] for name in list(found)[1:]})
    context = samples.select("dataset", "sample_id", "text")[errors["row"]]
    return pl.concat([context, errors.drop("row")], how="horizontal").select(list(ERROR_SCHEMA))


def errta_counts(errors: pl.DataFrame) -> pl.DataFrame:
    """Errors per (dataset, error_type, category): the per-category error distribution."""
    return (
        errors.group_by("dataset", "error_type", "category")
        .len("count")
        .with_columns(pl.col("count").cast(pl.Int64))
        .sort("dataset", "error_type", "count", "category", descending=[False, False, True, False])
    )


def errta_totals(errors: pl.DataFrame) -> dict[str, int]:
    """Count of each error type over all samples, every type present (0 when none)."""
    found = dict(errors.group_by("error_type").len().iter_rows())
    return {error_type: int(found.get(error_type, 0)) for error_type in ERROR_TYPES}


def typical_examples(errors: pl.DataFrame, per_type: int) -> pl.DataFrame:
    """Up to ``per_type`` examples of each error type, one per category, most frequent categories first."""
    frequency = errors.group_by("error_type", "category").len("category_count")
    ranked = (
        errors.sort("sample_id", "position")
        .with_columns(pl.int_range(pl.len()).over("error_type", "category").alias("rank_in_category"))
        .join(frequency, on=["error_type", "category"])
        .sort(["error_type", "rank_in_category", "category_count", "category"], descending=[False, False, True, False])
    )
    return ranked.group_by("error_type", maintain_order=True).head(per_type).drop("rank_in_category", "position")
