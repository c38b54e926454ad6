"""Cells that cannot become formulas: OWASP's CSV-injection rule, in one place.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and
a leading tab or carriage return does not stop it. A report title such as
``=HYPERLINK("http://evil","x")`` would then be live the moment an archivist opens the
bag's CSV or a workbook. ``formula_like`` is the rule; a plain number (``-12.5``, ``+3``)
is a number, not a formula, and is left alone.

How a value is kept inert depends on the format:

- CSV has no cell types, so ``inert`` prefixes a single quote (OWASP's advice). The value
  stays readable (Excel and LibreOffice show the quote as typed), is never computed, and
  an archivist can see that something was done to it.
- xlsx has cell types: the writers (``bots.reconcile.workbook``, ``bots.audit.xlsx``) write
  such a value as a string cell with ``quotePrefix`` set, Excel's own mark for "typed with a
  leading apostrophe". The value is kept exactly as the source said it (no quote is added,
  so the reviewer's sign-off reads back the same text), a string cell is never evaluated,
  and the mark keeps it text even when someone edits the cell.
"""

from __future__ import annotations

import re

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def formula_like(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula (a plain number is not)."""
    return text.startswith(TRIGGERS) and _NUMBER.fullmatch(text) is None


def inert(text: str) -> str:
    """``text`` for a CSV cell: with a leading single quote when it is ``formula_like``."""
    return "'" + text if formula_like(text) else text
