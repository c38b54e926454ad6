"""Read a recipe or schedule YAML file with bounded work, or say where it is wrong.

Recipes are written by hand and sometimes shared between organisations, so the file is
hostile input until proven otherwise: a size limit is applied before anything is
parsed; anchors and aliases (``&a`` / ``*a``, the "billion laughs" bomb) are refused at
the first anchor, before anything can be expanded; nesting deeper than any recipe needs
is refused by the composer before Python's own recursion limit is near. Every refusal is
a ``RecipeError`` naming the file and line (exit 2), never a traceback.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from .errors import RecipeError

# A recipe is a few hundred lines, a schedule fewer: a megabyte is far beyond either.
MAX_YAML_BYTES = 1_000_000
# The demo recipe nests about ten levels deep; ruamel's composer recurses per level.
MAX_YAML_DEPTH = 64


class _AliasRefused(MarkedYAMLError):
    """An anchor or alias: refused where it stands, before anything is expanded."""


class _NoAliasComposer(Composer):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise _AliasRefused(None, None, "alias", event.start_mark)
        event = self.parser.peek_event()
        if event.anchor is not None:
            raise _AliasRefused(None, None, "anchor", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path, what: str, plural: str) -> tuple[bytes, Any]:
    """The bytes of ``path`` and its round-trip tree (ruamel, lines kept).

    ``what`` names the file in messages ("recipe", "retention schedule"), ``plural``
    names the kind in the alias refusal ("recipes"). Raises ``RecipeError``.
    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise RecipeError([(str(path), f"cannot read the {what}: {exc.strerror}")]) from exc
    if len(raw) > MAX_YAML_BYTES:
        raise RecipeError(
            [
                (
                    str(path),
                    f"the {what} is larger than {MAX_YAML_BYTES:,} bytes (refused before parsing)",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError([(f"{path}:{line}", f"the {what} is not UTF-8 text")]) from exc
    return raw, parse_yaml(text, path, plural)


def parse_yaml(text: str, path: Path, plural: str = "recipes") -> Any:
    """Parse ``text`` (from ``path``) with aliases refused and nesting bounded."""
    yaml = YAML(typ="rt")
    yaml.Composer = _NoAliasComposer
    yaml.max_depth = MAX_YAML_DEPTH
    try:
        return yaml.load(text)
    except _AliasRefused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RecipeError([(f"{path}:{line}", f"{plural} may not use YAML aliases (&/*)")]) from exc
    except MaxDepthExceededError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RecipeError(
            [(f"{path}:{line}", f"nested more than {MAX_YAML_DEPTH} levels deep")]
        ) from exc
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise RecipeError([(f"{path}:{line}", f"invalid YAML: {problem}")]) from exc
    except YAMLError as exc:
        raise RecipeError([(str(path), f"invalid YAML: {exc}")]) from exc
    except ValueError as exc:  # a date that is no date (2026-13-01): ruamel names no line
        line, token = _impossible_date(text)
        raise RecipeError([(f"{path}:{line}", f"invalid date {token}: {exc}")]) from exc
    except RecursionError as exc:  # not expected past the depth limit; never a traceback
        raise RecipeError([(f"{path}:1", "invalid YAML: nested too deeply")]) from exc


_DATE = re.compile(r"(?<![\w.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w.:-])")


def _impossible_date(text: str) -> tuple[int, str]:
    """The first line with a YAML date that is not a date in the calendar, and that
    date as written ((1, "") when none is found)."""
    for number, line in enumerate(text.splitlines(), 1):
        for year, month, day in _DATE.findall(line.split("#", 1)[0]):
            try:
                datetime.date(int(year), int(month), int(day))
            except ValueError:
                return number, f"{year}-{month}-{day}"
    return 1, ""
