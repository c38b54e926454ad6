"""Headless LibreOffice, as the archivists' own office suite would open a workbook or a CSV."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pypdf import PdfReader


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    assert found, "LibreOffice is missing: scripts/setup.sh installs libreoffice-calc-nogui"
    return found


def to_pdf(book: Path, work: Path) -> list[str]:
    """Convert ``book`` to PDF with a private profile; the text of each page.

    A file LibreOffice would want to repair fails to convert, so a conversion that
    succeeds is the "opens without repair prompts" check.
    """
    pdf = convert(book, work, "pdf")
    return [page.extract_text() for page in PdfReader(pdf).pages]


def convert(source: Path, work: Path, to: str, *, infilter: str | None = None) -> Path:
    """``source`` opened by headless LibreOffice (with a private profile) and saved as ``to``
    (``pdf``, ``xlsx``…); ``infilter`` picks the import filter and its options."""
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    out = work / to
    env = {**os.environ, "HOME": str(home), "SAL_USE_VCLPLUGIN": "svp"}
    result = subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            *([f"--infilter={infilter}"] if infilter else []),
            "--convert-to",
            to,
            "--outdir",
            str(out),
            str(source),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    converted = out / f"{source.stem}.{to}"
    assert result.returncode == 0 and converted.exists(), result.stdout + result.stderr
    return converted
