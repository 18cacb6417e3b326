"""Parsing model answers: malformed answers give the expected pairs, and every oddity is counted."""

import unicodedata
from itertools import permutations

import pytest

from tasks.evaluate.answers import fold, locate_mentions, parse_answer

EN_TEXT = "John Smith met Mary Jones in New York , then flew to Paris ."
EN_LABELS = ["person", "location", "geo-political entity"]
ZH_TEXT = "张三在北京大学读书，去过上海和《三体》展览"
ZH_LABELS = ["人名", "地址", "作品"]


def issues(parsed, **expected):
    return {kind: count for kind, count in parsed.issues.items() if count} == expected


@pytest.mark.parametrize(
    "answer, pairs, counted",
    [
        ("person: John Smith; location: New York", [("person", "John Smith"), ("location", "New York")], {}),
        # label case and spacing, full-width punctuation, trailing separator
        ("Person ：John Smith；LOCATION:New York；", [("person", "John Smith"), ("location", "New York")], {}),
        # a newline separates like ';'; spacing inside a mention follows the text
        (
            "person: John  Smith\nlocation: new york",
            [("person", "John Smith"), ("location", "New York")],
            {"surface_fixed": 2},
        ),
        # several mentions after one label
        ("person: John Smith, Mary Jones", [("person", "John Smith"), ("person", "Mary Jones")], {"split_mentions": 1}),
        # a label outside the label set is kept and counted
        ("city: Paris", [("city", "Paris")], {"unknown_label": 1}),
        # a mention not in the text is kept and counted
        ("person: Bob", [("person", "Bob")], {"not_in_text": 1}),
        # stray text is dropped and counted
        ("Sure! Here are the entities: person: John Smith", [("person", "John Smith")], {"stray_segment": 1}),
        ("Entities found: none", [], {"stray_segment": 1}),
        ("person: None; location: Paris", [("location", "Paris")], {}),
        ("The answer is below; person: Mary Jones", [("person", "Mary Jones")], {"stray_segment": 1}),
        # quotes around a mention
        ('location: "Paris"', [("location", "Paris")], {}),
        # a repeated pair is kept (it may mean a second occurrence) and counted
        (
            "person: Mary Jones; person: Mary Jones",
            [("person", "Mary Jones"), ("person", "Mary Jones")],
            {"duplicate_pair": 1},
        ),
        ("None", [], {}),
        ("none.", [], {}),
        ("", [], {}),
        ("[]", [], {}),
    ],
)
def test_english_answers(answer, pairs, counted):
    parsed = parse_answer(answer, EN_LABELS, EN_TEXT, "en")
    assert parsed.pairs == pairs
    assert issues(parsed, **counted), parsed.issues


@pytest.mark.parametrize(
    "answer, pairs, counted",
    [
        ("人名: 张三; 地址: 北京大学", [("人名", "张三"), ("地址", "北京大学")], {}),
        (
            "人名：张三；地址：上海，北京大学",
            [("人名", "张三"), ("地址", "上海"), ("地址", "北京大学")],
            {"split_mentions": 1},
        ),
        ("地址：上海、北京大学", [("地址", "上海"), ("地址", "北京大学")], {"split_mentions": 1}),
        # spaced-out Chinese characters map back to the text
        ("人名：张 三", [("人名", "张三")], {"surface_fixed": 1}),
        # book-title marks kept when the text has them, a full-width-digit-free mention located
        ("作品：《三体》", [("作品", "《三体》")], {}),
        ("作品：三体", [("作品", "三体")], {}),
        ("无", [], {}),
        ("人名：无", [], {}),
        ("机构：清华", [("机构", "清华")], {"unknown_label": 1, "not_in_text": 1}),
    ],
)
def test_chinese_answers(answer, pairs, counted):
    parsed = parse_answer(answer, ZH_LABELS, ZH_TEXT, "zh")
    assert parsed.pairs == pairs
    assert issues(parsed, **counted), parsed.issues


def test_label_with_colon_in_mention_and_label_with_arrow():
    text = "I watched Star Wars: Episode I yesterday"
    parsed = parse_answer("work of art : Star Wars: Episode I", ["work of art", "product name -> SUV"], text, "en")
    assert parsed.pairs == [("work of art", "Star Wars: Episode I")]
    parsed = parse_answer("Product Name->SUV: Episode", ["work of art", "product name -> SUV"], text, "en")
    assert parsed.pairs == [("product name -> SUV", "Episode")]


def test_commas_inside_a_real_mention_are_kept():
    text = "He moved to Washington , D.C. last year"
    parsed = parse_answer("location: Washington , D.C.", ["location"], text, "en")
    assert parsed.pairs == [("location", "Washington , D.C.")]


def test_located_mentions_count_repeats_and_prefer_whole_tokens():
    text = "Jordan met Jordan in Jordanian New York near York"
    located = locate_mentions(
        [
            ("person", "Jordan"),
            ("location", "New York"),
            ("location", "York"),
            ("person", "Jordan"),
            ("person", "Jordan"),
        ],
        text,
        "en",
    )
    assert located == [
        ("person", "Jordan", 0, 6),
        ("location", "New York", 31, 39),
        ("location", "York", 45, 49),  # not the York inside the predicted New York
        ("person", "Jordan", 11, 17),  # the second occurrence
        ("person", "Jordan", 21, 27),  # only a sub-token occurrence is left: taken, not dropped
    ]
    assert (
        locate_mentions([("person", "Jordan")] * 4, "Jordan Jordan", "en")[2:] == [("person", "Jordan", None, None)] * 2
    )


def test_placement_does_not_depend_on_answer_order():
    text = "Jordan met Jordan in Jordanian New York near York"
    pairs = [
        ("person", "Jordan"),
        ("location", "New York"),
        ("location", "York"),
        ("person", "Jordan"),
        ("location", "Jordan"),
    ]

    def placements(gold):
        return {tuple(sorted(locate_mentions(list(answer), text, "en", gold))) for answer in permutations(pairs)}

    new_york = [("location", "New York", 31, 39), ("location", "York", 45, 49)]
    assert placements([]) == {
        tuple(
            sorted(
                [("location", "Jordan", 0, 6), ("person", "Jordan", 11, 17), ("person", "Jordan", 21, 27), *new_york]
            )
        )
    }
    gold = [(0, 6, "person"), (11, 17, "location"), (31, 39, "location"), (45, 49, "person")]
    assert placements(gold) == {
        tuple(
            sorted(
                [("location", "Jordan", 11, 17), ("person", "Jordan", 0, 6), ("person", "Jordan", 21, 27), *new_york]
            )
        )
    }


def test_mentions_are_matched_to_gold_by_content_and_position():
    text = "Georgia left for Georgia"
    gold = [(0, 7, "person"), (17, 24, "location")]
    right = [("location", "Georgia", 17, 24), ("person", "Georgia", 0, 7)]
    assert sorted(locate_mentions([("person", "Georgia"), ("location", "Georgia")], text, "en", gold)) == right
    assert sorted(locate_mentions([("location", "Georgia"), ("person", "Georgia")], text, "en", gold)) == right
    # a wrong type still takes a gold span of its mention (a classification error, not a miss plus a false positive)
    assert locate_mentions([("person", "Georgia")] * 2, text, "en", gold) == [
        ("person", "Georgia", 0, 7),
        ("person", "Georgia", 17, 24),
    ]
    # a span annotated with two types: the type matches are maximised, not taken greedily
    two_types = [(0, 7, "person"), (0, 7, "location"), (17, 24, "location")]
    assert sorted(locate_mentions([("location", "Georgia"), ("person", "Georgia")], text, "en", two_types)) == right


def test_a_none_word_that_is_in_the_text_is_a_mention():
    assert parse_answer("职称：无", ["职称"], "无简历信息", "zh").pairs == [("职称", "无")]


def test_chinese_mentions_located_by_character():
    assert locate_mentions([("地址", "北京"), ("地址", "北京")], "北京人在北京", "zh") == [
        ("地址", "北京", 0, 2),
        ("地址", "北京", 4, 6),
    ]


def test_fold_is_per_character_nfkc_and_lower_case_keeping_the_length():
    """The translate table of ``fold`` equals its definition on every BMP character, and on ASCII-only text."""

    def by_definition(text):
        folded = (unicodedata.normalize("NFKC", char).lower() for char in text)
        return "".join(f if len(f) == 1 else char for f, char in zip(folded, text))

    every = "".join(chr(code) for code in range(0x10000) if not 0xD800 <= code < 0xE000)
    assert fold(every) == by_definition(every) and len(fold(every)) == len(every)
    assert fold("Ｐａｒｉｓ İstanbul ﬁ") == by_definition("Ｐａｒｉｓ İstanbul ﬁ") == "paris İstanbul ﬁ"
    assert fold("New York, D.C.") == "new york, d.c."
