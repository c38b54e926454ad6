"""Credentials: references by name in recipes, secrets only in an encrypted keyring.

This folder holds code and documentation, never a secret. See README.md here.
"""

from .store import (
    SERVICE,
    Credential,
    CredentialStore,
    KeyringSettings,
    create_key_file,
    open_store,
)

__all__ = [
    "SERVICE",
    "Credential",
    "CredentialStore",
    "KeyringSettings",
    "create_key_file",
    "open_store",
]
