"""A fake driver for fast pipeline tests: in-memory systems with their own ground truth.

``registered(world)`` puts the driver named ``fake`` in the registry for a block;
``RECIPE`` is a recipe with ``driver: fake`` on both systems (DA/T 46 metadata),
``PROFILE_RECIPE`` the same systems with an archive's own fields and no reference codes.
The systems record every call and hold what they hold (reports, archived items): tests
assert on them.
"""

from pathlib import Path

from .driver import HANDLERS, NAME, FakeDriver, FakeSession, registered, spec
from .steps import FAKE_STEPS, FakeStep
from .store import MemoryStore
from .systems import (
    LOGIN_PAGE,
    Call,
    FakeArchive,
    FakeSource,
    FakeSystem,
    FakeWorld,
    Item,
    Report,
    csv_report,
)

RECIPE = Path(__file__).resolve().parent / "recipe.yaml"
# The same systems with two listings (incidents, changes) and detail pages.
LISTINGS_RECIPE = RECIPE.with_name("listings.yaml")
# The same systems, mapped to an archive's own fields (metadata_profile, standard: none).
PROFILE_RECIPE = Path(__file__).resolve().parent / "profile.yaml"

__all__ = [
    "FAKE_STEPS",
    "HANDLERS",
    "LISTINGS_RECIPE",
    "LOGIN_PAGE",
    "NAME",
    "PROFILE_RECIPE",
    "RECIPE",
    "Call",
    "FakeArchive",
    "FakeDriver",
    "FakeSession",
    "FakeSource",
    "FakeStep",
    "FakeSystem",
    "FakeWorld",
    "Item",
    "MemoryStore",
    "Report",
    "csv_report",
    "registered",
    "spec",
]
