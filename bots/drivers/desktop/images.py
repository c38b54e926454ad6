"""Pictures of the screen and images found in them: Pillow grabs the X display in
memory (pyautogui's screenshot needs scrot), OpenCV matches (TM_CCOEFF_NORMED) and
gives the best score, which a timeout reports."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy
from PIL import Image, ImageGrab


@dataclass(frozen=True)
class Match:
    score: float  # the best TM_CCOEFF_NORMED score, -1..1
    x: int  # the best match's top left corner, on the screen
    y: int
    width: int
    height: int

    @property
    def centre(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2


def grab(display: str, region: list[int] | None = None) -> Image.Image:
    """The screen (or ``region`` [x, y, w, h] of it) as a picture."""
    box = None
    if region is not None:
        x, y, w, h = region
        box = (x, y, x + w, y + h)
    return ImageGrab.grab(bbox=box, xdisplay=display)


@lru_cache(maxsize=64)
def _template(path: str, mtime: float) -> Any:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read the image {path}")
    return image


def template(path: Path) -> Any:
    return _template(str(path), path.stat().st_mtime)


def best_match(display: str, image: Path, region: list[int] | None = None) -> Match:
    """Where ``image`` best matches the screen (within ``region``), and how well."""
    needle = template(image)
    shot = grab(display, region)
    haystack = cv2.cvtColor(numpy.asarray(shot.convert("RGB")), cv2.COLOR_RGB2BGR)
    h, w = needle.shape[:2]
    if haystack.shape[0] < h or haystack.shape[1] < w:
        return Match(-1.0, 0, 0, w, h)
    scores = cv2.matchTemplate(haystack, needle, cv2.TM_CCOEFF_NORMED)
    _low, high, _low_at, at = cv2.minMaxLoc(scores)
    if not numpy.isfinite(high):  # a flat image against a flat screen
        high = 0.0
    ox, oy = (region[0], region[1]) if region is not None else (0, 0)
    return Match(float(high), at[0] + ox, at[1] + oy, w, h)
