"""Credentials: references by name in recipes, secrets only in an encrypted keyring.

This folder holds code and documentation, never a secret. See README.md here.
"""

from bots.childenv import MASTER_KEY_ENV

from .store import (
    ALLOW_PLAINTEXT_ENV,
    BACKENDS,
    MIN_MASTER_KEY_LENGTH,
    SERVICE,
    Credential,
    CredentialStore,
    KeyringSettings,
    check_master_key,
    create_key_file,
    open_store,
)

__all__ = [
    "ALLOW_PLAINTEXT_ENV",
    "BACKENDS",
    "MASTER_KEY_ENV",
    "MIN_MASTER_KEY_LENGTH",
    "SERVICE",
    "Credential",
    "CredentialStore",
    "KeyringSettings",
    "check_master_key",
    "create_key_file",
    "open_store",
]
