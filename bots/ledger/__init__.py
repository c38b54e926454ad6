"""The ledger: the truth about each document, one row per (recipe, source key).

This file is the package's whole public API. ``schema`` holds the tables, ``migrations``
their version and the steps that create and upgrade them, ``states`` the document's state
machine (its named transitions in one table, ``states.TABLE``), ``store`` the ``Ledger``
that reads and changes them, ``engine`` the connection set-up they share.
"""

from .migrations import LATEST, LedgerVersionError, Upgrade, upgrade
from .schema import checks, documents, events, inventory, reviews, runs, sightings
from .states import (
    Document,
    FailureKind,
    LedgerError,
    Resume,
    State,
    Transition,
    is_held,
    resume_point,
)
from .store import Ledger

# The tables are exported only while reconcile, review and audit still select from them.
__all__ = [
    "Document",
    "FailureKind",
    "Ledger",
    "LATEST",
    "LedgerError",
    "LedgerVersionError",
    "Resume",
    "State",
    "Transition",
    "Upgrade",
    "checks",
    "documents",
    "events",
    "inventory",
    "is_held",
    "resume_point",
    "reviews",
    "runs",
    "sightings",
    "upgrade",
]
