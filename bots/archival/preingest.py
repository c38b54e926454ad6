"""Before upload: look inside the file, classify the report, fill and check its metadata.

Everything an archivist would check before accepting an item is checked here, and every
check is returned, passed or not, so the record shows what was looked at and not only
what went wrong. Nothing here touches the archive: a document that fails goes nowhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import byte_count, sha256_file
from ..ledger import Document
from ..recipe import LoadedRecipe
from ..templating import TemplateProblem, render
from .checks import Check, Outcome, Property
from .inspect import FileReport, inspect_file
from .metadata import label, retention_at_least, shaped, validate
from .schedule import Classification, NotCovered


@dataclass(frozen=True)
class Prepared:
    metadata: dict[str, Any]  # as it will be sent (a list field as a list); empty when
    # it could not be filled
    report: FileReport
    classification: Classification | None
    checks: list[Check]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.outcome is Outcome.FAIL]


def file_vars(doc: Document, report: FileReport | None = None) -> dict[str, Any]:
    """What templates see as ``file``."""
    path = Path(doc.staged_path or "")
    return {
        "path": str(path),
        "name": doc.filename,
        "size": doc.size,
        "sha256": doc.sha256,
        "ext": path.suffix.lstrip(".").lower(),
        "format": report.format if report else doc.file_format or "",
        # Rendered as "" rather than "None" when the format has no pages.
        "pages": report.pages if report and report.pages is not None else "",
    }


def content_vars(report: FileReport) -> dict[str, Any]:
    """What templates see as ``content``: bounded text from inside the file."""
    return {"text": report.text, "title": report.title, "cells": report.cells}


def prepare(
    doc: Document,
    loaded: LoadedRecipe,
    context: dict[str, Any],
    today: dt.date,
    *,
    virus_database: Path | None = None,
) -> Prepared:
    """Every check of the document before upload, and its metadata.

    ``virus_database``: the ClamAV signatures to scan with (None: ClamAV's own)."""
    recipe = loaded.recipe
    path = Path(doc.staged_path or "")
    report = inspect_file(
        path,
        filename=doc.source_filename or doc.filename or path.name,
        accept=recipe.files.accept,
        csv_encoding=recipe.files.csv_encoding,
        max_bytes=int(recipe.limits.max_file_mb * 1024 * 1024),
        virus_database=virus_database,
        inspect_mb=recipe.limits.inspect_mb,
        inspect_seconds=recipe.limits.inspect_seconds,
    )
    checks = [_digest_unchanged(doc, path), *report.checks]
    variables = {
        **context,
        "row": doc.row,  # the listing's row with its detail fields
        "listing": doc.listing_name or "",
        "file": file_vars(doc, report),
        "content": content_vars(report),
    }
    checks.append(_listed_size(doc, loaded, variables))

    try:
        classification: Classification | None = loaded.schedule.classify(
            doc.row, {**context, "listing": doc.listing_name or ""}
        )
        assert classification is not None
        checks.append(
            Check.passed(
                Property.AUTHENTICITY,
                "retention_schedule",
                f"rule {classification.rule!r} of {classification.schedule}: "
                f"{classification.retention}, {classification.department}",
            )
        )
    except NotCovered as exc:
        classification = None
        checks.append(Check.failed(Property.AUTHENTICITY, "retention_schedule", str(exc)))
    if classification is None:
        return Prepared({}, report, None, checks)

    variables["schedule"] = classification.as_vars()
    metadata, problems = _render(loaded, variables)
    checks += _metadata_checks(loaded, metadata, problems, classification, report, today)
    return Prepared(
        shaped(metadata, recipe.metadata_profile.fields), report, classification, checks
    )


def _digest_unchanged(doc: Document, path: Path) -> Check:
    """The file about to be uploaded is the file that was downloaded."""
    name = "digest_unchanged"
    if not path.is_file():
        return Check.failed(Property.AUTHENTICITY, name, f"the staged file {path} is gone")
    digest, _ = sha256_file(path)
    if digest != doc.sha256:
        return Check.failed(
            Property.AUTHENTICITY,
            name,
            f"the staged file's SHA-256 is {digest}, not the {doc.sha256} taken at download",
        )
    return Check.passed(Property.AUTHENTICITY, name, f"SHA-256 {digest} as taken at download")


def _listed_size(doc: Document, loaded: LoadedRecipe, variables: dict[str, Any]) -> Check:
    name = "size_matches_listing"
    template = loaded.recipe.files.listed_size
    if template is None:
        return Check.not_run(Property.COMPLETENESS, name, "the listing shows no size")
    try:
        shown = render(template, variables)
    except TemplateProblem as exc:
        return Check.failed(Property.COMPLETENESS, name, f"files.listed_size: {exc}")
    if not shown:
        return Check.not_run(Property.COMPLETENESS, name, "the listing shows no size for it")
    listed = byte_count(shown)
    if listed is None:
        return Check.not_run(
            Property.COMPLETENESS, name, f"the listing's size {shown!r} is not a byte count"
        )
    if listed != doc.size:
        return Check.failed(
            Property.COMPLETENESS,
            name,
            f"downloaded {doc.size} bytes, the listing shows {listed}",
        )
    return Check.passed(Property.COMPLETENESS, name, f"{listed} bytes, as listed")


def _render(loaded: LoadedRecipe, variables: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    metadata: dict[str, str] = {}
    problems = []
    custom = loaded.recipe.metadata_profile.fields
    for name, template in loaded.recipe.metadata.items():
        try:
            metadata[name] = render(template, variables)
        except TemplateProblem as exc:
            named = f"{custom[name].label} ({name})" if name in custom else label(name)
            problems.append(f"{named}: metadata.{name} in {loaded.path}: {exc}")
    return metadata, problems


def _metadata_checks(
    loaded: LoadedRecipe,
    metadata: dict[str, str],
    problems: list[str],
    classification: Classification,
    report: FileReport,
    today: dt.date,
) -> list[Check]:
    profile = loaded.recipe.metadata_profile
    result = validate(metadata, today, fields=profile.fields, dat46=profile.dat46)
    invalid = problems + result.invalid
    checks = [
        Check.failed(Property.COMPLETENESS, "mandatory_fields", "missing: " + ", ".join(missing))
        if (missing := [m for m in result.missing if not _is_unrendered(m, problems)])
        else Check.passed(Property.COMPLETENESS, "mandatory_fields", "all present"),
        Check.failed(Property.AUTHENTICITY, "metadata_valid", "; ".join(invalid))
        if invalid
        else Check.passed(Property.AUTHENTICITY, "metadata_valid", "every value well-formed"),
    ]
    if not profile.dat46:
        return checks  # retention and pages below are DA/T fields
    retention = metadata.get("retention", "")
    if retention in ("Y", "D30", "D10") and not retention_at_least(
        retention, classification.retention
    ):
        checks.append(
            Check.failed(
                Property.AUTHENTICITY,
                "retention_not_shorter",
                f"retention {retention} is shorter than the schedule's "
                f"{classification.retention} (rule {classification.rule!r})",
            )
        )
    pages = metadata.get("pages", "")
    if report.pages is not None and pages.isdigit() and int(pages) != report.pages:
        checks.append(
            Check.failed(
                Property.AUTHENTICITY,
                "pages_match_file",
                f"metadata says {pages} pages, the PDF has {report.pages}",
            )
        )
    return checks


def _is_unrendered(missing_label: str, problems: list[str]) -> bool:
    # A field whose template failed is reported once, as invalid, not again as missing.
    return any(p.startswith(missing_label + ":") for p in problems)
