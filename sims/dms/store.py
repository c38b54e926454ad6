"""The DMS's holdings: a JSON catalogue plus one stored file per document.

Layout of the data directory::

    catalogue.json    every filed document's fields, size and SHA-256, in filing order
    files/DOC-000001  the original of document DOC-000001, exactly the bytes received

A document is written to ``files/`` first (under a temporary name, then renamed), and
the catalogue is replaced atomically after it, so a crash leaves at worst a stray file,
never a catalogue entry without its file. Numbers are never reused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

CATALOGUE = "catalogue.json"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fields:
    """What the upload form's validation produced."""

    title: str
    report_id: str
    source_system: str
    retention_years: int
    tags: tuple[str, ...]
    document_date: str  # YYYY-MM-DD or ""
    author: str
    description: str


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    report_id: str
    source_system: str
    retention_years: int
    tags: tuple[str, ...]
    document_date: str
    author: str
    description: str
    filename: str
    size: int
    sha256: str
    created: str  # ISO timestamp, UTC

    def state(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


class DocumentStore:
    """Thread safe: the server is threaded, and filing takes the next number."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._documents: list[Document] = []
        self._highest = 0
        path = data_dir / CATALOGUE
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            self._highest = int(saved["highest"])
            for entry in saved["documents"]:
                entry["tags"] = tuple(entry["tags"])
                self._documents.append(Document(**entry))

    def file(self, fields: Fields, source: IO[bytes], filename: str, now: dt.datetime) -> Document:
        """Store the bytes of ``source`` and catalogue them under the next number."""
        fd, temp_name = tempfile.mkstemp(dir=self.files_dir, prefix=".upload-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            with self._lock:
                self._highest += 1
                doc_id = f"DOC-{self._highest:06d}"
                os.replace(temp_name, self.files_dir / doc_id)
                document = Document(
                    id=doc_id,
                    filename=filename,
                    size=size,
                    sha256=digest.hexdigest(),
                    created=now.isoformat(timespec="seconds"),
                    **asdict(fields),
                )
                self._documents.append(document)
                self._save()
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
        return document

    def _save(self) -> None:
        body = {
            "highest": self._highest,
            "documents": [d.state() for d in self._documents],
        }
        fd, temp_name = tempfile.mkstemp(dir=self.data_dir, prefix=".catalogue-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(body, out, ensure_ascii=False, indent=1)
        os.replace(temp_name, self.data_dir / CATALOGUE)

    def get(self, doc_id: str) -> Document | None:
        with self._lock:
            return next((d for d in self._documents if d.id == doc_id), None)

    def path(self, doc_id: str) -> Path:
        return self.files_dir / doc_id

    def all(self) -> list[Document]:
        with self._lock:
            return list(self._documents)

    def with_report_id(self, report_id: str) -> list[Document]:
        wanted = report_id.strip().upper()
        return [d for d in self.all() if d.report_id == wanted]


def tags_of(values: Iterable[str]) -> tuple[str, ...]:
    """Distinct tags in the order given."""
    return tuple(dict.fromkeys(values))
