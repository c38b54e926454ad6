"""A credential store for tests: named credentials in memory, each password registered
with the redactor the moment it is fetched (as credentials/store.py does)."""

from __future__ import annotations

from bots.errors import CredentialError
from bots.redaction import Redactor
from credentials import Credential


class MemoryStore:
    def __init__(self, redactor: Redactor, credentials: list[Credential]) -> None:
        self._redactor = redactor
        self._credentials = {c.name: c for c in credentials}
        self.fetched: list[str] = []

    def get(self, name: str) -> Credential:
        credential = self._credentials.get(name)
        if credential is None:
            raise CredentialError(f"no credential named {name!r}")
        self._redactor.register(credential.password)
        self.fetched.append(name)
        return credential
