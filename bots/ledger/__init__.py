"""The ledger: the truth about each document, one row per (recipe, source key).

This file is the package's whole public API. Inside: ``schema`` (the tables),
``migrations`` (their version, and the ordered steps that create and upgrade them),
``states`` (the document's state machine: named transitions in one table, where a
document resumes, which are held), ``store`` (the ``Ledger``: every document change one
compare-and-set transaction), ``records`` (runs, checks, events and the other records
beside the documents), ``rows`` (documents to and from rows, staged paths relative to
the staging root), ``engine`` (the connection set-up they share) and ``queries`` (what
reconciliation, review and the audit read).

Open one with ``Ledger.open(url, clock, staging_root=...)``: it upgrades the schema
first, or with ``migrate=False`` only checks that it is current.
"""

from . import queries, states
from .migrations import LATEST, LedgerVersionError, Upgrade, upgrade
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

__all__ = [
    "LATEST",
    "Document",
    "FailureKind",
    "Ledger",
    "LedgerError",
    "LedgerVersionError",
    "Resume",
    "State",
    "Transition",
    "Upgrade",
    "is_held",
    "queries",
    "resume_point",
    "states",
    "upgrade",
]
