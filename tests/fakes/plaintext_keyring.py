"""A keyring backend named like keyrings.alt's PlaintextKeyring (kept in memory), for the
tests that the fleet refuses a plaintext store unless told otherwise."""

from __future__ import annotations

from keyring.backend import KeyringBackend


class PlaintextKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]
    _items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self._items.pop((service, username), None)
