"""The ERP catalogue's ground truth as every simulator built on it shows and feeds it.

``/_sim/state``'s report shape and ``/_sim/publish``'s options, shared by the web ERP and
the desktop client (:mod:`sims.desktop`), which serve the same catalogue.
"""

from __future__ import annotations

from typing import Any

from sims.erp.reports import KIND_BY_NAME, SALES, Catalogue, Kind, Report

MAX_PUBLISH = 1000
MAX_BULK_BYTES = 16 << 30  # per publication: hashing streams at about 1.4 GiB/s


def report_truth(catalogue: Catalogue, report: Report, generated: bool) -> dict[str, Any]:
    """One report as ``GET /_sim/state`` lists it."""
    return {
        "id": report.id,
        "title": report.title,
        "kind": report.kind.name,
        "department": report.kind.department,
        "date": report.date.isoformat(),
        "filename": report.filename,
        "size": catalogue.size(report),
        "sha256": catalogue.sha256(report),
        "pages": catalogue.pages(report),
        "needs_generate": report.kind.needs_generate,
        "generated": generated,
        "infected": report.infected,  # its file is the EICAR test string
    }


def publish_options(body: Any) -> dict[str, Any]:
    """Check a ``/_sim/publish`` body; the keyword arguments of ``Catalogue.publish``."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    known = {"count", "kind", "size", "filename", "raw_gbk_filename", "infected"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    count = body.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PUBLISH:
        raise ValueError(f"count must be 1..{MAX_PUBLISH}")
    kind: Kind | None = None
    if "kind" in body:
        kind = KIND_BY_NAME.get(body["kind"]) if isinstance(body["kind"], str) else None
        if kind is None:
            raise ValueError(f"kind must be one of: {'、'.join(KIND_BY_NAME)}")
    size = body.get("size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("size must be a whole number of bytes, >= 0")
        if size * count > MAX_BULK_BYTES:
            raise ValueError(f"size x count must not exceed {MAX_BULK_BYTES} bytes")
        if kind not in (None, SALES):
            raise ValueError(f"size makes a {SALES.name} CSV; kind must be {SALES.name}")
    filename = body.get("filename")
    if filename is not None:
        if not isinstance(filename, str) or filename == "":
            raise ValueError("filename must be a non-empty string")
        if "\r" in filename or "\n" in filename:  # cannot be sent in a header at all
            raise ValueError("filename must not contain CR or LF")
    raw_gbk = body.get("raw_gbk_filename", False)
    if not isinstance(raw_gbk, bool):
        raise ValueError("raw_gbk_filename must be true or false")
    if raw_gbk and filename is not None:
        try:
            filename.encode("gbk")
        except UnicodeEncodeError:
            raise ValueError("raw_gbk_filename needs a filename that GBK can encode") from None
    infected = body.get("infected", False)
    if not isinstance(infected, bool):
        raise ValueError("infected must be true or false")
    if infected and size is not None:
        raise ValueError("infected gives the file its bytes (EICAR's 68); size cannot be set")
    return {
        "count": count,
        "kind": kind,
        "bulk_size": size,
        "filename": filename,
        "raw_gbk_filename": raw_gbk,
        "infected": infected,
    }
