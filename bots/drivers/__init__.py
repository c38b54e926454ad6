"""Drivers: sessions on the systems a recipe names (web: Playwright; more by registry).

The pipeline speaks only to the protocol in ``base``; ``registry`` finds a driver by
the name a recipe gives. Nothing outside ``bots.drivers.web`` imports Playwright.
"""

from .base import (
    Candidate,
    Diagnosis,
    Driver,
    Explanation,
    Match,
    Row,
    RowsHook,
    ScreenshotRefused,
    Session,
    SessionConfig,
    StepContext,
    StepOutcome,
    StepReport,
    TableCursor,
    Tracer,
)
from .registry import DEFAULT_DRIVER, DriverSpec, get, names, register, unregister

__all__ = [
    "Candidate",
    "DEFAULT_DRIVER",
    "Diagnosis",
    "Driver",
    "DriverSpec",
    "Explanation",
    "Match",
    "Row",
    "RowsHook",
    "ScreenshotRefused",
    "Session",
    "SessionConfig",
    "StepContext",
    "StepOutcome",
    "StepReport",
    "TableCursor",
    "Tracer",
    "get",
    "names",
    "register",
    "unregister",
]
