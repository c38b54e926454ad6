"""Text from a picture of the screen, through the tesseract command (Chinese and
English)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...childenv import child_env
from ...errors import UsageError

LANGUAGES = "chi_sim+eng"
TIMEOUT = 60


def read_text(image: Any, env: Mapping[str, str]) -> str:
    """The text tesseract reads in ``image`` (a PIL image)."""
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        raise UsageError(
            "OCR needs tesseract, which is not installed: "
            "apt-get install tesseract-ocr tesseract-ocr-chi-sim"
        )
    with tempfile.TemporaryDirectory(prefix="fleet-ocr-") as folder:
        picture = Path(folder) / "screen.png"
        image.save(picture)
        proc = subprocess.run(
            [tesseract, str(picture), "stdout", "-l", LANGUAGES, "--psm", "6"],
            capture_output=True,
            env=child_env(env),
            timeout=TIMEOUT,
        )
    if proc.returncode != 0:
        problem = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(
            f"tesseract failed: {problem[-1] if problem else proc.returncode} "
            "(apt-get install tesseract-ocr tesseract-ocr-chi-sim)"
        )
    return proc.stdout.decode("utf-8", "replace")
