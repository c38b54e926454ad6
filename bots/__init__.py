"""RPA bot fleet: capture reports from legacy systems into an archive system.

The public surface is here; everything else is an implementation detail. The names are
imported on first use, so ``import bots`` stays cheap: cron's no-op paths (``--help``,
``check``, a locked run) must not load Playwright, pandas or SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it. To rename or add a public name, edit this
# table, the TYPE_CHECKING imports below and __all__ (tests/test_startup.py checks the
# table against __all__; mypy checks the imports).
_EXPORTS: dict[str, str] = {
    "RunSummary": ".pipeline",
    "BusinessError": ".errors",
    "CredentialError": ".errors",
    "FleetError": ".errors",
    "RecipeError": ".errors",
    "SystemFailure": ".errors",
    "UsageError": ".errors",
    "Document": ".ledger",
    "Ledger": ".ledger",
    "State": ".ledger",
    "LoadedRecipe": ".recipe",
    "load_recipe": ".recipe",
    "Redactor": ".redaction",
    "Settings": ".settings",
}

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .errors import (
        BusinessError,
        CredentialError,
        FleetError,
        RecipeError,
        SystemFailure,
        UsageError,
    )
    from .ledger import Document, Ledger, State
    from .pipeline import RunSummary
    from .recipe import LoadedRecipe, load_recipe
    from .redaction import Redactor
    from .settings import Settings

__all__ = [
    "BusinessError",
    "CredentialError",
    "Document",
    "FleetError",
    "Ledger",
    "LoadedRecipe",
    "RecipeError",
    "Redactor",
    "RunSummary",
    "Settings",
    "State",
    "SystemFailure",
    "UsageError",
    "__version__",
    "load_recipe",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
