"""Cells that cannot become formulas (issue 12): the rule, and the audit book's text cells."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from bots.audit.xlsx import _text_cell
from bots.cells import formula_like, inert

HOSTILE = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "="]
HARMLESS = ["资金日报表", "R000001", "", " =1", "a=b", "-3", "+3", "-12.5", "1e5", "-.5E-3"]


@pytest.mark.parametrize("text", HOSTILE)
def test_what_starts_like_a_formula_gets_a_leading_quote(text: str) -> None:
    assert formula_like(text)
    assert inert(text) == "'" + text


@pytest.mark.parametrize("text", HARMLESS)
def test_plain_text_and_numbers_are_left_alone(text: str) -> None:
    assert not formula_like(text)
    assert inert(text) == text


@pytest.mark.parametrize("text", ["-2-", "--1", "-1,5", "+1 2", "-1e", "-inf"])
def test_almost_numbers_are_text_and_neutralised(text: str) -> None:
    assert inert(text) == "'" + text


def test_the_audit_book_writes_them_as_text_kept_as_said(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row, text in enumerate([*HOSTILE, "-3", "资金日报表"], start=1):
        _text_cell(ws, row, 1, text)  # type: ignore[arg-type]
    wb.save(tmp_path / "a.xlsx")

    cells = [row[0] for row in load_workbook(tmp_path / "a.xlsx").active.iter_rows()]  # type: ignore[union-attr]
    for cell, text in zip(cells, HOSTILE, strict=False):
        assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True), text
    assert [(c.value, c.data_type, c.quotePrefix) for c in cells[-2:]] == [
        ("-3", "s", False),
        ("资金日报表", "s", False),
    ]
