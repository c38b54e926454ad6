"""This machine's time zone, named: spreadsheets have no zones, so the files people read
say which one their times are in."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def local_zone() -> tzinfo:
    """A named zone where one can be found ($TZ, /etc/localtime's link, /etc/timezone), so
    offsets follow daylight saving (and pandas converts a ZoneInfo vectorised, dateutil's
    tzlocal() value by value); else the offset this machine has now."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "/zoneinfo/" in target:
            candidates.append(target.split("/zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for key in candidates:
        if key:
            with contextlib.suppress(ValueError, ZoneInfoNotFoundError):
                return ZoneInfo(key)
    return datetime.now().astimezone().tzinfo or UTC


def zone_name(zone: tzinfo) -> str:
    """'Asia/Shanghai (UTC+08:00)' or 'UTC+08:00'."""
    offset = datetime.now(zone).strftime("%z") or "+0000"
    label = f"UTC{offset[:3]}:{offset[3:5]}"
    name = str(getattr(zone, "key", "") or "")
    return f"{name} ({label})" if "/" in name else label
