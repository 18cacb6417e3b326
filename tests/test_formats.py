"""Every registered format: samples written by its writer and read back by read_file are the same samples.

What a format cannot hold, its writer refuses with NotRepresentableError; REFUSED lists those
cases, and every other (format, case, language) must round-trip. The registry is the package:
every module not starting with ``_`` is a format, and adding a file registers it.
"""

import importlib
import json
from pathlib import Path

import polars as pl
import pytest

import tasks.formats
from tasks.core.schema import ENTITY_DTYPE
from tasks.formats import FORMATS, FormatSpec, NotRepresentableError, read_file, registry
from tasks.formats._base import SCHEMES, discover


def entity(text: str, mention: str, label: str, occurrence: int = 0) -> dict:
    """The entity of the ``occurrence``-th appearance of ``mention`` in ``text``."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(mention, start + 1)
    return {"start": start, "end": start + len(mention), "label": label, "mention": mention}


def samples(*rows: tuple[str, list[tuple]]) -> pl.DataFrame:
    """A canonical frame from ``(text, [(mention, label[, occurrence]), ...])`` rows."""
    return pl.DataFrame(
        {"text": [text for text, _ in rows], "entities": [[entity(text, *e) for e in ents] for text, ents in rows]},
        schema={"text": pl.String, "entities": ENTITY_DTYPE},
    )


# Entities at the start and at the end of a text, several per sample, a repeated mention, a label
# with a dot, quotes and a backslash, and a sample without entities.
BASIC = {
    "en": samples(
        ("Ann Lee met Bob Smith in Paris", [("Ann Lee", "person"), ("Bob Smith", "person"), ("Paris", "GPE")]),
        ("Nothing happened here .", []),
        ('Paris and " Lyon \\ " and Paris', [("Paris", "LOC.NAM"), ("Lyon", "LOC.NAM"), ("Paris", "LOC.NAM", 1)]),
        ("IBM", [("IBM", "organization")]),
    ),
    "zh": samples(
        ("北京大学的张三在上海", [("北京大学", "organization"), ("张三", "person"), ("上海", "GPE")]),
        ("今天天气很好。", []),
        ("王五说“上海”和上海不同", [("王五", "PER.NAM"), ("上海", "GPE.NAM"), ("上海", "GPE.NAM", 1)]),
    ),
}
HARD = {
    ("nested", "en"): samples(("Bank of China Ltd said so", [("Bank of China Ltd", "organization"), ("China", "GPE")])),
    ("nested", "zh"): samples(("中国银行发布公告", [("中国银行", "organization"), ("中国", "GPE")])),
    ("inside_token", "en"): samples(("Paris-based firms grew", [("Paris", "GPE")])),
    ("blank_token", "en"): samples(("Ann  met Bob", [("Bob", "person")])),
    ("blank_token", "zh"): samples(("张三 在北京", [("北京", "GPE")])),
    ("earlier_occurrence", "en"): samples(("Ann said Paris is not Paris", [("Ann", "person"), ("Paris", "GPE", 1)])),
    ("earlier_occurrence", "zh"): samples(("上海人去了上海", [("上海", "GPE", 1)])),
}
REFUSED = {  # (format, case, language) that the format cannot hold
    ("conll", "nested", "en"),
    ("conll", "nested", "zh"),
    ("conll", "inside_token", "en"),
    ("genia", "inside_token", "en"),
    ("ace", "inside_token", "en"),
    ("conll", "blank_token", "en"),
    ("conll", "blank_token", "zh"),
    ("genia", "blank_token", "en"),
    ("ace", "blank_token", "en"),
    ("omniner", "earlier_occurrence", "en"),
    ("omniner", "earlier_occurrence", "zh"),
}


def read_back(path: Path, spec: FormatSpec) -> pl.DataFrame:
    return pl.concat(batch.samples for batch in read_file(path, spec))


def assert_same_samples(read: pl.DataFrame, written: pl.DataFrame) -> None:
    """Same texts in the same order, each with the same entities (cluener groups them by label, so order aside)."""

    def normalized(frame: pl.DataFrame) -> list[tuple[str, list[dict]]]:
        return [
            (text, sorted(entities, key=lambda e: (e["start"], e["end"], e["label"])))
            for text, entities in frame.select("text", "entities").iter_rows()
        ]

    assert read["entities"].dtype == ENTITY_DTYPE
    assert normalized(read) == normalized(written)


def round_trip(tmp_path: Path, spec: FormatSpec, written: pl.DataFrame, **layout) -> Path:
    path = tmp_path / "written"
    registry()[spec.format].write(written, path, spec, **layout)
    assert_same_samples(read_back(path, spec), written)
    return path


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", FORMATS)
def test_every_format_round_trips(tmp_path, name, lang):
    round_trip(tmp_path, FormatSpec(name, lang), BASIC[lang])


@pytest.mark.parametrize("case, lang", sorted(HARD))
@pytest.mark.parametrize("name", FORMATS)
def test_a_writer_refuses_what_its_format_cannot_hold_and_round_trips_the_rest(tmp_path, name, case, lang):
    spec, written = FormatSpec(name, lang), HARD[case, lang]
    if (name, case, lang) in REFUSED:
        with pytest.raises(NotRepresentableError):
            registry()[name].write(written, tmp_path / "refused", spec)
        assert not (tmp_path / "refused").exists()
    else:
        round_trip(tmp_path, spec, written)


@pytest.mark.parametrize("segment_digit", [False, True])
@pytest.mark.parametrize("sep", ["tab", "space"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_conll_round_trips_in_every_scheme_and_separator(tmp_path, scheme, sep, segment_digit):
    prefixes = set()
    for lang, written in BASIC.items():
        spec = FormatSpec("conll", lang, sep=sep, scheme=scheme, segment_digit=segment_digit)
        lines = round_trip(tmp_path, spec, written).read_text(encoding="utf-8").splitlines()
        prefixes |= {line.rsplit("\t" if sep == "tab" else " ", 1)[1][0] for line in lines if line}
    assert prefixes == set("O" + {"bio": "BI", "iob1": "BI", "bioes": "BIES", "bmes": "BMES"}[scheme])


def test_conll_segment_digits_come_from_the_segments_column(tmp_path):
    written = samples(("张三在上海", [("张三", "PER.NAM"), ("上海", "GPE.NAM")]))
    spec = FormatSpec("conll", "zh", segment_digit=True)
    path = round_trip(tmp_path, spec, written.with_columns(segments=pl.Series([[0, 1, 0, 0, 1]])))
    assert path.read_text(encoding="utf-8").split("\n")[:2] == ["张0\tB-PER.NAM", "三1\tI-PER.NAM"]
    with pytest.raises(ValueError, match="segments"):
        registry()["conll"].write(written.with_columns(segments=pl.Series([[0, 1]])), path, spec)


def test_conll_sentence_starting_with_a_blank_token_keeps_its_entity_offsets(tmp_path):
    path = tmp_path / "blank-first.txt"
    path.write_text("Hello\tO\nworld\tO\n\n \tO\nJohn\tB-PER\nSmith\tI-PER\n\n", encoding="utf-8")
    (batch,) = read_file(path, FormatSpec("conll", "en"))
    assert batch.samples["text"].to_list() == ["Hello world", "John Smith"]
    assert batch.samples["entities"].to_list()[1] == [{"start": 0, "end": 10, "label": "PER", "mention": "John Smith"}]


def test_conll_labels_may_hold_spaces_only_between_tab_separated_fields(tmp_path):
    written = samples(("Ann rated it five stars", [("five stars", "average ratings")]))
    round_trip(tmp_path, FormatSpec("conll", "en", sep="tab"), written)
    with pytest.raises(NotRepresentableError, match="average ratings"):
        registry()["conll"].write(written, tmp_path / "space.txt", FormatSpec("conll", "en", sep="space"))


@pytest.mark.parametrize(
    "name, layout, check",
    [
        ("conll", {"docstart": True}, lambda raw: raw.startswith(b"-DOCSTART- -X- -X- O\n\nAnn\tB-person\n")),
        ("conll", {"newline": "\r\n"}, lambda raw: raw.count(b"\r\n") == raw.count(b"\n") > 0),
        ("cluener", {}, lambda raw: list(json.loads(raw.splitlines()[0])["label"]) == ["person", "GPE"]),
        (
            "cluener",
            {"sort_labels": True},
            lambda raw: list(json.loads(raw.splitlines()[0])["label"]) == ["GPE", "person"],
        ),
        ("cmeee", {"final_newline": False}, lambda raw: raw.endswith(b"]") and raw.startswith(b'[\n  {\n    "text"')),
        ("b2nerd", {"compact": True}, lambda raw: raw.startswith(b'{"sentence":"Ann Lee met Bob Smith in Paris"')),
        ("b2nerd", {}, lambda raw: raw.startswith(b'{"sentence": "Ann Lee met Bob Smith in Paris", "entities": [')),
        ("b2nerd", {"array": True}, lambda raw: json.loads(raw)[0]["entities"][0]["pos"] == [0, 7]),
        (
            "ace",
            {"document_sizes": [1, 3]},
            lambda raw: [len(json.loads(d)["sentences"]) for d in raw.splitlines()] == [1, 3],
        ),
        ("ace", {}, lambda raw: json.loads(raw)["ner"][2][2] == [7 + 4 + 7, 7 + 4 + 7, "LOC.NAM"]),
    ],
)
def test_layout_options_change_the_bytes_not_the_samples(tmp_path, name, layout, check):
    path = round_trip(tmp_path, FormatSpec(name, "en"), BASIC["en"], **layout)
    assert check(path.read_bytes())


def test_ace_refuses_document_sizes_that_do_not_split_the_samples(tmp_path):
    with pytest.raises(ValueError, match="document sizes"):
        registry()["ace"].write(BASIC["en"], tmp_path / "ace.json", FormatSpec("ace", "en"), document_sizes=[2, 3])


def test_the_registry_is_every_module_of_the_package():
    modules = sorted(path.stem for path in Path(tasks.formats.__file__).parent.glob("*.py"))
    assert list(FORMATS) == list(registry()) == [name for name in modules if not name.startswith("_")]
    assert all(registry()[name].name == name for name in FORMATS)


def test_adding_a_file_registers_a_format_and_a_file_without_one_fails(tmp_path, monkeypatch):
    package = tmp_path / "extra_formats"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_shared.py").write_text("HELPER = 1\n")
    declare = "from tasks.formats import Format\n\nFORMAT = Format(name={!r}, read=None, write=None)\n"
    (package / "alpha.py").write_text(declare.format("alpha"))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(discover("extra_formats")) == ["alpha"]

    (package / "beta.py").write_text(declare.format("beta"))
    importlib.invalidate_caches()
    assert list(discover("extra_formats")) == ["alpha", "beta"]

    (package / "gamma.py").write_text(declare.format("not_gamma"))
    importlib.invalidate_caches()
    with pytest.raises(TypeError, match="extra_formats.gamma must define FORMAT"):
        discover("extra_formats")


def test_an_unknown_format_names_the_registered_ones():
    with pytest.raises(ValueError, match="expected one of .*'conll'"):
        FormatSpec("xml", "en")
