"""Documents to and from their rows: JSON columns, enums, and staged files stored
relative to the staging root.

A staged file is stored as its path under the staging root (``demo/R000001/report.pdf``,
posix form), not as one machine's absolute path, so that machines sharing a ledger each
find it under their own root; ``Document.staged_path`` is that path resolved under this
machine's root, absolute as before. A path outside the root is refused on write. Rows
written before paths were relative keep absolute paths outside the root (migration
step 3 made those under it relative) and are read as they are.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.engine import RowMapping

from .states import Document, FailureKind, LedgerError, State


def stored_path(root: Path, path: str | os.PathLike[str]) -> str:
    """``path`` as the ledger keeps it: relative to ``root``; LedgerError outside it."""
    absolute = Path(os.path.abspath(path))  # normalised: no ``..`` climbs out unnoticed
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError as exc:
        raise LedgerError(
            f"staged file {path} is outside the staging root {root}: the ledger keeps "
            "staged files relative to it, so that every machine finds them under its own"
        ) from exc


def local_path(root: Path, stored: str) -> str:
    """A stored staged path as a path on this machine (absolute ones as they are)."""
    if PurePosixPath(stored).is_absolute() or Path(stored).is_absolute():
        return stored
    return str(root.joinpath(*PurePosixPath(stored).parts))


def relative_if_under(root: Path, stored: str) -> str | None:
    """An old absolute ``stored`` path as a relative one, if it is under ``root``."""
    if not Path(stored).is_absolute():
        return None
    try:
        return stored_path(root, stored)
    except LedgerError:
        return None


def encode(fields: dict[str, Any], root: Path) -> dict[str, Any]:
    """Fields as columns: item metadata as JSON, enums as values, staged path relative."""
    values = dict(fields)
    for name in ("item_metadata", "detail"):
        if values.get(name) is not None:
            values[name] = json.dumps(values[name], ensure_ascii=False)
    if values.get("staged_path") is not None:
        values["staged_path"] = stored_path(root, values["staged_path"])
    for name, value in values.items():
        if isinstance(value, StrEnum):
            values[name] = value.value
    return values


def document(row: RowMapping, root: Path) -> Document:
    """The ``documents`` row as a Document, its staged path under this machine's root."""
    return Document(
        recipe=row["recipe"],
        source_key=row["source_key"],
        state=State(row["state"]),
        title=row["title"],
        listing=json.loads(row["listing"]),
        filename=row["filename"],
        staged_path=local_path(root, row["staged_path"]) if row["staged_path"] else None,
        sha256=row["sha256"],
        size=row["size"],
        item_metadata=json.loads(row["item_metadata"]) if row["item_metadata"] else None,
        archive_id=row["archive_id"],
        reference_code=row["reference_code"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        failure_kind=FailureKind(row["failure_kind"]) if row["failure_kind"] else None,
        failed_stage=State(row["failed_stage"]) if row["failed_stage"] else None,
        failed_recipe_digest=row["failed_recipe_digest"],
        source_filename=row["source_filename"],
        file_format=row["file_format"],
        listing_name=row["listing_name"],
        detail=json.loads(row["detail"]) if row["detail"] else None,
        archive_system=row["archive_system"],
    )
