"""The four-property checks (DA/T 70-2018): one named result per item and check.

Authenticity (真实性), completeness (完整性), usability (可用性) and security (安全性). Each
check is recorded with pass, fail or not_run and a reason a person can act on; a check
that could not run says so instead of passing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..errors import BusinessError


class Property(StrEnum):
    AUTHENTICITY = "authenticity"
    COMPLETENESS = "completeness"
    USABILITY = "usability"
    SECURITY = "security"


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_RUN = "not_run"  # e.g. no virus scanner installed: said, never passed silently


@dataclass(frozen=True)
class Check:
    property: Property
    name: str  # e.g. "format_matches_extension": stable, for workbooks and tests
    outcome: Outcome
    reason: str  # what was found, in words

    @classmethod
    def passed(cls, prop: Property, name: str, reason: str) -> Check:
        return cls(prop, name, Outcome.PASS, reason)

    @classmethod
    def failed(cls, prop: Property, name: str, reason: str) -> Check:
        return cls(prop, name, Outcome.FAIL, reason)

    @classmethod
    def not_run(cls, prop: Property, name: str, reason: str) -> Check:
        return cls(prop, name, Outcome.NOT_RUN, reason)

    def line(self) -> str:
        return f"{self.property}/{self.name}: {self.reason}"


class ChecksFailed(BusinessError):
    """A document failed one or more checks: it is not uploaded, and not retried."""

    def __init__(self, failed: list[Check]) -> None:
        self.failed = failed
        super().__init__("failed checks: " + "; ".join(c.line() for c in failed))
