"""RPA bot fleet: capture reports from legacy systems into an archive system.

The public surface is here; everything else is an implementation detail. Names load
on first use, so that ``import bots`` (and the command line's ``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
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
    "RunSummary": ".pipeline",
    "capture": ".pipeline",
    "inventory": ".pipeline",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'bots' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
