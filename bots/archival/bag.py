"""Export captured documents as a BagIt bag (RFC 8493), for a handover anyone can check.

A bag is the one package an archive, an auditor or a second archive can verify without
our software or our ledger: each payload file is listed with its SHA-256, and
``bag-info.txt`` carries the count and bytes (Payload-Oxum). The item metadata that went
to the archive travels with it (``item-metadata.csv`` for Excel, ``.json`` for programs),
listed in the tag manifest so it is checked too. A CSV cell a spreadsheet could take for a
formula gets a leading quote (``bots.cells``); the JSON keeps every value as sent.

The bag must hold exactly what was captured: every staged file is checked against the
digest recorded at download before it goes in, and bagit's own manifest is checked
against the ledger after. The bag is built beside ``out`` under a hidden name and renamed
into place only once it validates, so an interrupted export never leaves something that
looks like a complete bag.

In a fleet a document's staged file is on the machine whose worker downloaded it (each
document is finished there), unless staging is shared storage (``FLEET_STAGING_DIR``).
``elsewhere`` names other staging folders to take a file from when it is not on this
machine (a mount, or a copy collected from that machine): a file found there goes in
only when its SHA-256 and size are the ones recorded at capture, like any other. A file
found nowhere is named with the machine that holds it (``holders``) and what to do.

bagit changes the process's working directory while it works: do not run two exports at
once in threads of one process.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit

from ..cells import inert
from ..errors import SystemFailure, UsageError
from ..files import safe_filename, sha256_file
from ..ledger import Document
from .metadata import FIELDS as DAT46_FIELDS
from .metadata import readable

ALGORITHM = "sha256"
METADATA_CSV = "item-metadata.csv"
METADATA_JSON = "item-metadata.json"
# The columns every row has, before the item metadata: DA/T 46's, then the archive's own
# fields (a recipe's metadata_profile), headed by their labels when the recipe is known.
FIXED_COLUMNS = (
    "payload_path",
    "recipe",
    "source_key",
    "archive_id",
    "reference_code",
    "sha256",
    "size",
)


@dataclass(frozen=True)
class BagSummary:
    path: Path
    items: int
    bytes: int
    oxum: str  # "bytes.count", as in bag-info.txt


@dataclass(frozen=True)
class _Item:
    doc: Document
    source: Path  # the staged file
    payload: str  # "data/<recipe>/<name>", always with "/"
    sha256: str
    size: int


def export_bag(
    documents: Sequence[Document],
    out: Path,
    *,
    organization: str,
    external_id: str,
    description: str = "",
    link: bool = False,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    staging_root: Path | None = None,
    elsewhere: Sequence[Path] = (),
    holders: Mapping[tuple[str, str], str] | None = None,
) -> BagSummary:
    """Bag ``documents`` (normally ``Ledger.captured(...)``) into the new folder ``out``.

    Payload files are copied: a bag is handed to others, and an edit to it must never
    reach the captured file. ``link=True`` hard-links them instead when both are on one
    file system (no copy of a 1 GiB file); such a bag shares its files with staging, so
    write to neither in place. ``labels`` (recipe -> field -> label: each recipe's
    ``metadata_profile`` fields) head the archive's own fields' columns in
    ``item-metadata.csv``. Raises ``UsageError`` for a non-empty ``out`` or nothing to
    bag, ``SystemFailure`` when a file is not what was captured or the bag does not
    validate; ``out`` is then left as it was.

    ``staging_root`` is this machine's (the one the ledger's staged paths are relative
    to); ``elsewhere``, other staging folders holding the same relative paths; ``holders``
    ((recipe, key) -> where it was captured, for a person) says where a missing file is.
    """
    _check_target(out)
    if not documents:
        raise UsageError("nothing to bag: nothing captured in that run or since that date")
    items = _plan(documents)
    if staging_root is not None and elsewhere:
        items = [_found_elsewhere(item, staging_root, elsewhere) for item in items]
    _verify_staged(items, holders or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir()
    try:
        info = _bag_info(items, organization, external_id, description)
        oxum = _build(items, partial, info, link, labels or {})
        _move_into_place(partial, out)
    except BaseException:
        # Whatever went wrong (even Ctrl-C), no half-made bag is left behind.
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BagSummary(path=out, items=len(items), bytes=sum(i.size for i in items), oxum=oxum)


# -- before anything is written ----------------------------------------------------------


def _check_target(out: Path) -> None:
    # Never write into, or over, a folder someone already put something in.
    if out.is_dir():
        if any(out.iterdir()):
            raise UsageError(f"{out} already exists and is not empty: give a new or empty folder")
    elif out.exists() or out.is_symlink():
        raise UsageError(f"{out} already exists and is not a folder: give a new or empty folder")


def _plan(documents: Sequence[Document]) -> list[_Item]:
    """Where each document goes in the payload, with names unique per recipe folder."""
    items: list[_Item] = []
    taken: set[str] = set()
    for doc in documents:
        if not doc.staged_path or not doc.sha256 or doc.size is None:
            raise SystemFailure(
                f"document {doc.source_key!r} of recipe {doc.recipe!r} has no staged file, "
                "digest or size recorded: it cannot be bagged as captured"
            )
        folder = safe_filename(doc.recipe, "recipe")
        name = _unique(folder, _payload_name(doc), doc, taken)
        items.append(
            _Item(doc, Path(doc.staged_path), f"data/{folder}/{name}", doc.sha256, doc.size)
        )
    return items


def _payload_name(doc: Document) -> str:
    """The reference code plus the file's extension (计算机文件名), else the source key."""
    ext = Path(doc.filename or doc.staged_path or "").suffix.lower()
    # Keep the whole code or key: safe_filename alone would keep only its last path part.
    base = (doc.reference_code or doc.source_key).replace("/", "_").replace("\\", "_")
    if ext and base.lower().endswith(ext):
        ext = ""
    return safe_filename(f"{base}{ext}", f"document{ext}")


def _unique(folder: str, name: str, doc: Document, taken: set[str]) -> str:
    # Two documents may come to one name (a key that only differs in unsafe characters,
    # a repeated reference code); case-insensitive file systems (Windows, macOS) also
    # merge names that differ only in case. The CSV maps every name back to its key.
    stem, ext = os.path.splitext(name)
    candidate = name
    while _fold(folder, candidate) in taken:
        tag = hashlib.sha256(f"{doc.recipe}\0{doc.source_key}\0{candidate}".encode()).hexdigest()
        candidate = safe_filename(f"{stem}-{tag[:8]}{ext}", f"document-{tag[:8]}{ext}")
    taken.add(_fold(folder, candidate))
    return candidate


def _fold(folder: str, name: str) -> str:
    return unicodedata.normalize("NFC", f"{folder}/{name}").casefold()


def _found_elsewhere(item: _Item, root: Path, elsewhere: Sequence[Path]) -> _Item:
    """``item`` from the first other staging folder holding the file captured, when it is
    not on this machine (else as it is: its check names it)."""
    if item.source.is_file():
        return item
    try:
        relative = item.source.relative_to(root)
    except ValueError:
        return item  # an old absolute path outside the root: no relative path to look up
    for folder in elsewhere:
        candidate = folder / relative
        if candidate.is_file() and sha256_file(candidate) == (item.sha256, item.size):
            return dataclasses.replace(item, source=candidate)
    return item


def _verify_staged(items: list[_Item], holders: Mapping[tuple[str, str], str]) -> None:
    """Every staged file is still the one captured; all differences are named at once."""
    problems = [p for p in (_staged_problem(item, holders) for item in items) if p]
    if problems:
        absent = any("not on this machine" in p for p in problems)
        advice = (
            "\nA staged file stays on the machine whose worker downloaded it. Run export-bag "
            "there, or give that machine's staging folder (mounted or copied) with "
            "--staging DIR, or set FLEET_STAGING_DIR on every worker to shared storage."
            if absent
            else ""
        )
        raise SystemFailure(
            "refusing to bag files that are not what was captured:\n" + "\n".join(problems) + advice
        )


def _staged_problem(item: _Item, holders: Mapping[tuple[str, str], str]) -> str | None:
    where = f"{item.doc.recipe}/{item.doc.source_key} ({item.source})"
    if not item.source.is_file():
        holder = holders.get((item.doc.recipe, item.doc.source_key))
        if holder is not None:
            return f"{where}: the staged file is not on this machine; {holder}"
        return f"{where}: the staged file is missing"
    digest, size = sha256_file(item.source)
    if digest != item.sha256 or size != item.size:
        return (
            f"{where}: captured {item.size} bytes with SHA-256 {item.sha256}, "
            f"the staged file now has {size} bytes with SHA-256 {digest}"
        )
    return None


def _bag_info(
    items: list[_Item], organization: str, external_id: str, description: str
) -> dict[str, str]:
    # bagit adds Bagging-Date, Bag-Software-Agent and Payload-Oxum itself.
    info = {
        "Source-Organization": organization,
        "External-Identifier": external_id,
        "Bag-Size": _human_size(sum(i.size for i in items)),
    }
    if description:
        info["External-Description"] = description
    return info


def _human_size(size: int) -> str:
    # RFC 8493 2.2.2: an approximate, human-readable size ("260 GB").
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# -- building the bag --------------------------------------------------------------------


def _build(
    items: list[_Item],
    partial: Path,
    info: dict[str, str],
    link: bool,
    labels: Mapping[str, Mapping[str, str]],
) -> str:
    """Make, cross-check, annotate and validate the bag in ``partial``; its Payload-Oxum."""
    try:
        _place_payload(items, partial, link)
        with _cwd_restored():
            bag = bagit.make_bag(str(partial), info, checksums=[ALGORITHM])
        _cross_check(bag, items)
        _write_item_metadata(items, partial, labels)
        with _cwd_restored():
            # Rewrites bag-info.txt and the tag manifest, which now lists the metadata
            # files; manifests=False: the payload manifest is already right (just checked)
            # and rehashing 1 GiB files would prove nothing more.
            bag.save(manifests=False)
        bagit.Bag(str(partial)).validate(fast=False)
    except bagit.BagError as exc:
        raise SystemFailure(f"the bag did not validate, nothing was kept: {exc}") from exc
    except OSError as exc:
        raise SystemFailure(f"could not build the bag, nothing was kept: {exc}") from exc
    return str(bag.info["Payload-Oxum"])


def _place_payload(items: list[_Item], partial: Path, link: bool) -> None:
    # make_bag moves everything in the folder into data/, so files go in without it.
    for item in items:
        target = partial / item.payload.removeprefix("data/")
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(item.source, target, link)


def _link_or_copy(source: Path, target: Path, link: bool) -> None:
    if link:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system, or one without hard links: copy instead
    shutil.copyfile(source, target)  # streams; never the whole file in memory


@contextmanager
def _cwd_restored() -> Iterator[None]:
    # make_bag and Bag.save chdir into the bag; save does not chdir back if it fails.
    before = os.getcwd()
    try:
        yield
    finally:
        os.chdir(before)


def _cross_check(bag: Any, items: list[_Item]) -> None:
    """bagit's manifest lists exactly our files, each with the digest the ledger has."""
    found = {
        _nfc(path.replace(os.sep, "/")): h[ALGORITHM] for path, h in bag.payload_entries().items()
    }
    expected = {_nfc(item.payload): item.sha256 for item in items}
    problems = [
        f"{path}: ledger has {digest}, manifest has {found.get(path, 'nothing')}"
        for path, digest in expected.items()
        if found.get(path, "").lower() != digest.lower()
    ]
    problems += [f"{path}: in the manifest but not captured" for path in found.keys() - expected]
    oxum = f"{sum(i.size for i in items)}.{len(items)}"
    if bag.info.get("Payload-Oxum") != oxum:
        problems.append(f"Payload-Oxum is {bag.info.get('Payload-Oxum')}, captured {oxum}")
    if problems:
        raise SystemFailure("the bag's manifest does not match the ledger:\n" + "\n".join(problems))


def _nfc(text: str) -> str:
    # Some file systems (macOS) hand names back decomposed: compare what they mean.
    return unicodedata.normalize("NFC", text)


def _move_into_place(partial: Path, out: Path) -> None:
    # Only now does ``out`` look like a bag. An empty ``out`` goes first (Windows cannot
    # rename onto a folder); if someone filled it meanwhile, rmdir fails and theirs stands.
    try:
        if out.is_dir():
            out.rmdir()
        os.rename(partial, out)
    except OSError as exc:
        raise UsageError(f"could not put the bag at {out}: {exc}") from exc


# -- item metadata tag files -------------------------------------------------------------


def _write_item_metadata(
    items: list[_Item], partial: Path, labels: Mapping[str, Mapping[str, str]]
) -> None:
    rows = [_record(item) for item in items]
    with open(partial / METADATA_JSON, "w", encoding="utf-8") as handle:
        json.dump(rows, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    keys, custom = _metadata_keys(items, labels)
    header = [*FIXED_COLUMNS, *(inert(_column(custom.get(k, k))) for k in keys)]
    # utf-8-sig: without the BOM Excel reads the file as the local code page (GBK) and
    # the Chinese comes out garbled.
    with open(partial / METADATA_CSV, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            meta = row["item_metadata"]
            writer.writerow(
                [_cell(row[c]) for c in FIXED_COLUMNS] + [_cell(meta.get(k)) for k in keys]
            )


def _record(item: _Item) -> dict[str, Any]:
    doc = item.doc
    return {
        "payload_path": item.payload,
        "recipe": doc.recipe,
        "source_key": doc.source_key,
        "archive_id": doc.archive_id,
        "reference_code": doc.reference_code,
        "sha256": item.sha256,
        "size": item.size,
        "item_metadata": doc.item_metadata or {},
    }


def _metadata_keys(
    items: list[_Item], labels: Mapping[str, Mapping[str, str]]
) -> tuple[list[str], dict[str, str]]:
    """The metadata columns, and the archive's own fields among them -> their labels.

    The union of every item's keys, in the order first seen (recipes list them in the
    catalogue's order, and a later item's extra key goes at the end); the DA/T 46 fields
    first, then the archive's own (a profile's fields, or any other name).
    """
    seen: dict[str, None] = {}
    custom: dict[str, str] = {}
    for item in items:
        own = labels.get(item.doc.recipe, {})
        for key in item.doc.item_metadata or {}:
            seen[key] = None
            if key in own:
                custom.setdefault(key, own[key])
            elif key not in DAT46_FIELDS:
                custom.setdefault(key, key)
    ordered = [k for k in seen if k not in custom] + [k for k in seen if k in custom]
    return ordered, custom


def _column(key: str) -> str:
    # A recipe key named like a fixed column must not be read as that column.
    return f"item_metadata.{key}" if key in FIXED_COLUMNS else key


def _cell(value: Any) -> str:
    """A CSV cell no spreadsheet takes for a formula (``bots.cells``); numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # -3 is a number, not a formula
    if isinstance(value, list):
        return inert(readable(value))  # a list field's items, as a person reads them
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return inert(str(value))
