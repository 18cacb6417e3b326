"""Markdown tables for every report: one writer, so every page reads the same."""

from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, float_format: str = ".4g") -> str:
    """``frame`` as a Markdown table, ending in a newline.

    Floats are written with ``float_format``, lists joined with ``; `` (at most 120 characters),
    and ``|`` and line breaks inside a cell are escaped so that a cell never breaks the table.
    """

    def cell(value) -> str:
        if isinstance(value, float):
            return format(value, float_format)
        if isinstance(value, list):
            value = "; ".join(map(str, value))[:120]
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows]) + "\n"
