"""The ledger: the truth about each document, one row per (recipe, source key).

This file is the package's whole public API. Inside: ``schema`` (the tables),
``migrations`` (their version, and the ordered steps that create and upgrade them),
``states`` (the document's state machine: named transitions in one table, where a
document resumes, which are held), ``store`` (the ``Ledger``: every document change one
compare-and-set transaction), ``records`` (runs, checks, events and the other records
beside the documents), ``rows`` (documents to and from rows, staged paths relative to
the staging root), ``engine`` (the connection set-up they share), ``queries`` (what
reconciliation, review and the audit read), and for workers on several machines
``leases`` (a named lease with heartbeats: one listing of a recipe across the fleet) and
``slots`` (a fleet-wide cap on concurrent sessions per system), both on the database's
clock: ``Leases(ledger.engine)``, ``SessionSlots(ledger.engine)``.

Open one with ``Ledger.open(url, clock, staging_root=...)``: it upgrades the schema
first, or with ``migrate=False`` only checks that it is current.
"""

from . import queries, states
from .leases import Holder, Lease, LeaseHeld, LeaseLost, Leases
from .migrations import LATEST, LedgerVersionError, Upgrade, upgrade
from .slots import SessionSlots, Slot, SlotLost
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
    "Holder",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "Leases",
    "Ledger",
    "LedgerError",
    "LedgerVersionError",
    "Resume",
    "SessionSlots",
    "Slot",
    "SlotLost",
    "State",
    "Transition",
    "Upgrade",
    "is_held",
    "queries",
    "resume_point",
    "states",
    "upgrade",
]
