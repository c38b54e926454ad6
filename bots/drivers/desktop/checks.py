"""What a desktop recipe's schema cannot check, checked when it loads: every image a
step or a target names exists, is a readable PNG or JPEG, and fits the system's screen.

Image headers are read here by hand (a few bytes), so that `runner.py check` loads no
Pillow or OpenCV.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...recipe.steps import PageCondition, StepBase, walk_steps
from .schema import image_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG or JPEG file; ValueError saying why it is neither."""
    with open(path, "rb") as handle:
        head = handle.read(32)
        if head.startswith(PNG_SIGNATURE):
            if head[12:16] != b"IHDR":
                raise ValueError("a PNG without its header chunk")
            width, height = struct.unpack(">II", head[16:24])
            return width, height
        if head.startswith(b"\xff\xd8"):
            handle.seek(2)
            return _jpeg_size(handle)
    raise ValueError("not a PNG or JPEG image")


# JPEG start-of-frame markers (baseline, progressive, ...): they carry the size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(handle: Any) -> tuple[int, int]:
    while True:
        byte = handle.read(1)
        while byte == b"\xff":
            byte = handle.read(1)
        if not byte:
            raise ValueError("a JPEG that ends before its frame header")
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        raw = handle.read(2)
        if len(raw) < 2:
            raise ValueError("a truncated JPEG")
        (length,) = struct.unpack(">H", raw)
        if marker in _SOF:
            data = handle.read(5)
            if len(data) < 5:
                raise ValueError("a truncated JPEG frame header")
            height, width = struct.unpack(">HH", data[1:5])
            return width, height
        handle.seek(length - 2, 1)


def _system_steps(spec: Any) -> Iterator[StepBase]:
    """Every step of a system section, nested ones included, whatever its sections."""
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, StepBase):
                yield from walk_steps([item])
            elif hasattr(item, "steps"):  # a listing: its own steps, detail, download
                for part in (item.steps, item.detail or [], item.download or []):
                    yield from walk_steps(part)


def _step_images(step: StepBase) -> Iterator[str]:
    if isinstance(step.when, PageCondition) and (image := image_of(step.when.selector)):
        yield image
    args = step.args
    if step.kind in ("click", "wait_image"):
        yield args.image
    elif step.kind in ("reject_if", "retry_if") and (image := image_of(args.target)):
        yield image


def check_system(spec: Any, folder: Path) -> list[tuple[int, str]]:
    """(line, problem) for each image that is missing, unreadable or over the screen."""
    found: list[tuple[int, str]] = []
    if spec.logged_out and (image := image_of(spec.logged_out)):
        found.append((0, image))
    for step in _system_steps(spec):
        found.extend((step.line, image) for image in _step_images(step))
    problems = []
    screen = spec.screen
    for line, image in found:
        path = folder / image
        if not path.is_file():
            problems.append((line, f"image {image!r} does not exist ({path})"))
            continue
        try:
            width, height = image_size(path)
        except (OSError, ValueError, struct.error) as exc:
            problems.append((line, f"image {image!r} cannot be read: {exc}"))
            continue
        if width > screen.width or height > screen.height:
            problems.append(
                (
                    line,
                    f"image {image!r} is {width}x{height}, larger than the screen the "
                    f"system declares ({screen.width}x{screen.height}): it can never match",
                )
            )
    return problems
