"""RPA bot fleet: capture reports from legacy systems into an archive system.

The public surface is here; everything else is an implementation detail.
"""

__version__ = "0.1.0"

from .capture import Capture, RunSummary  # noqa: E402
from .errors import (  # noqa: E402
    BusinessError,
    CredentialError,
    FleetError,
    RecipeError,
    SystemFailure,
    UsageError,
)
from .ledger import Document, Ledger, State  # noqa: E402
from .recipe import LoadedRecipe, load_recipe  # noqa: E402
from .redaction import Redactor  # noqa: E402
from .settings import Settings  # noqa: E402

__all__ = [
    "BusinessError",
    "Capture",
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
