"""Staging files: safe names, streamed digests, atomic arrival, a first look at type.

A file reaches its staging name only complete: it is written under a temporary name
and renamed, so a crash leaves either nothing or a whole file, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import BusinessError, FleetError, Incomplete, UnexpectedPage

__all__ = [
    "CHUNK",
    "Incomplete",
    "StagedFile",
    "StagingWriter",
    "TooLarge",
    "UnexpectedPage",
    "byte_count",
    "check_received",
    "invisible_characters",
    "safe_filename",
    "sha256_file",
    "stage_via",
    "strip_invisible",
    "visible",
]

CHUNK = 1024 * 1024
MAX_NAME_BYTES = 200  # well under the 255-byte limit of common file systems
# C0 and C1 controls, the line and paragraph separators, separators and shell specials.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\u2028\u2029/\\:*?"<>|]')
# Unicode's invisible format characters (category Cf): bidirectional controls (U+202A-E,
# U+2066-9, U+200E-F, U+061C), zero widths (U+200B-D, U+2060), the BOM (U+FEFF), the soft
# hyphen (U+00AD), tags (U+E0001-7F) and the rest. Invisible, yet they change how a name
# reads: "invoice\u202excod.pdf" shows as "invoicefdp.docx".
_FORMAT = "Cf"


def invisible_characters(name: str) -> list[str]:
    """The invisible format characters in ``name``, each once, in order, by code point
    and name: ``["U+202E RIGHT-TO-LEFT OVERRIDE"]``."""
    found = dict.fromkeys(ch for ch in name if unicodedata.category(ch) == _FORMAT)
    return [f"U+{ord(ch):04X} {unicodedata.name(ch, 'FORMAT CHARACTER')}" for ch in found]


def strip_invisible(name: str) -> str:
    """``name`` without its invisible format characters."""
    return "".join(ch for ch in name if unicodedata.category(ch) != _FORMAT)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: str, keep: str = "") -> str:
    """``text`` with every character that is invisible or moves others (controls, format
    characters, line and paragraph separators) written out as ``\\u202e``, so the text
    shows what it holds and reads as it is stored; Chinese and ordinary spaces stay.
    ``keep`` names controls left as they are (``"\\n"`` for text shown on several lines).
    """
    if text.isprintable():
        return text  # the common case, at C speed
    return "".join(
        _escaped(ch)
        if ch not in keep and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )


def safe_filename(name: str, fallback: str) -> str:
    """A name that cannot leave its folder, confuse a shell or read as another name: keeps
    Chinese, drops the rest.

    ``../../etc/passwd`` becomes ``etc_passwd``; control characters and separators become
    ``_``; invisible format characters (``invisible_characters``: a right-to-left override,
    a zero-width space) are removed; an empty result falls back to ``fallback``.
    """
    name = strip_invisible(unicodedata.normalize("NFC", name)).replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        name = f"{stem[:-1]}.{ext}" if dot and len(ext) <= 10 and stem else name[:-1]
    return name or fallback


KEY_DIGEST_CHARS = 8


def key_folder(key: str) -> str:
    """The folder of one document's files (staging, evidence), one folder per key.

    A key that is a safe name is its own folder (``R000001``). Any other is made safe the
    way ``safe_filename`` makes a name, but whole (its separators become ``_``, not cut
    away), and a short digest of the key as it is follows: ``INC/6`` and ``MIN/6`` of two
    listings, or ``A/1`` and ``A_1``, never share a folder, so no picture or file of one
    document can overwrite another's."""
    whole = key.replace("/", "_").replace("\\", "_")
    safe = safe_filename(whole, "document")
    if safe == key:
        return key
    tag = hashlib.sha256(key.encode("utf-8")).hexdigest()[:KEY_DIGEST_CHARS]
    return f"{safe_filename(whole[: MAX_NAME_BYTES // 4], 'document')}-{tag}"


_BYTE_COUNT = re.compile(r"[0-9][0-9,\u00a0 ]*")


def byte_count(text: str) -> int | None:
    """A size as a legacy page shows it ("12,345"), or None when it is not a plain count
    of bytes ("1.2 MB" is a rounded figure, not something to compare a file with)."""
    text = text.strip()
    if not _BYTE_COUNT.fullmatch(text):
        return None
    return int(re.sub(r"[^0-9]", "", text))


@dataclass(frozen=True)
class StagedFile:
    path: Path
    filename: str  # the safe name it is staged under
    size: int
    sha256: str
    original: str = ""  # the name the source sent, before it was made safe


def sha256_file(path: Path) -> tuple[str, int]:
    """Digest and size of a file, read in chunks (constant memory)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class StagingWriter:
    """Write a stream to ``final`` via ``final.part``, hashing as it goes."""

    def __init__(self, final: Path, original: str = "") -> None:
        self.final = final
        self.original = original or final.name
        self.partial = final.with_name(final.name + ".part")
        self._digest = hashlib.sha256()
        self.size = 0
        final.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO = open(self.partial, "wb")  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        self._handle.write(chunk)

    def commit(self) -> StagedFile:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.partial, self.final)
        return StagedFile(
            self.final, self.final.name, self.size, self._digest.hexdigest(), self.original
        )

    def abort(self) -> None:
        self._handle.close()
        self.partial.unlink(missing_ok=True)


def stage_via(save: Callable[[Path], object], final: Path, original: str = "") -> StagedFile:
    """Let ``save`` (Playwright's ``Download.save_as``) write the file; hash it; place it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    save(partial)
    digest, size = sha256_file(partial)
    os.replace(partial, final)
    return StagedFile(final, final.name, size, digest, original or final.name)


class TooLarge(BusinessError):
    """A file over the recipe's size limit."""


_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<meta|<form|<script)", re.I)


def check_received(staged: StagedFile, max_bytes: int) -> None:
    """What arrived is a file we can keep: not a page, not empty, not over the limit.

    Legacy systems answer 200 with their login page where a file was expected: that is
    worth a re-login and a retry. An empty or oversized file is the document itself.
    Whatever is refused is removed from staging.
    """
    problem: FleetError | None = None
    if staged.size == 0:
        problem = BusinessError(f"received an empty file (0 bytes) for {staged.filename!r}")
    elif staged.size > max_bytes:
        problem = TooLarge(f"{staged.filename!r} is over the size limit ({staged.size} bytes)")
    elif not staged.filename.lower().endswith((".html", ".htm")):
        with open(staged.path, "rb") as handle:
            head = handle.read(1024).lstrip(b"\xef\xbb\xbf")
        if _HTML_START.match(head):
            problem = UnexpectedPage(
                f"received an HTML page instead of {staged.filename!r} "
                "(often the login page of an expired session, or a busy server)"
            )
    if problem is not None:
        staged.path.unlink(missing_ok=True)
        raise problem
