"""Which keyring backend holds the credentials: chosen explicitly, never left to keyring.

keyring's own choice on a headless server is a failing backend, or keyrings.cryptfile
prompting on standard input (which hangs under cron); on a machine with keyrings.alt it
may be a base64 "plaintext" file. So ``FLEET_KEYRING_BACKEND`` decides (see store.py's
module text), and whatever is chosen says why (``Chosen.note``), for the commands that
print where credentials are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import keyring.backend
import keyring.core

from bots.childenv import MASTER_KEY_ENV
from bots.errors import CredentialError
from bots.redaction import Redactor

from .store import ALLOW_PLAINTEXT_ENV, BACKENDS, check_master_key, read_key_file

if TYPE_CHECKING:
    from pathlib import Path

    from .cryptfile import CryptFile
    from .store import KeyringSettings


@dataclass(frozen=True)
class Chosen:
    backend: keyring.backend.KeyringBackend
    kind: str  # "cryptfile", "secretservice" or "system"
    note: str = ""  # why this one, when that is not obvious ("auto: no D-Bus session bus")


def choose(settings: KeyringSettings, redactor: Redactor, *, check_key: bool = True) -> Chosen:
    """The backend ``settings`` configure, unlocked; ``CredentialError`` saying what to do.

    ``check_key=False``: the file's master key is proven by the first credential
    decrypted, not by a derivation of its own now (see cryptfile.py)."""
    if settings.backend == "cryptfile":
        return Chosen(cryptfile(settings, redactor, check_key=check_key), "cryptfile")
    if settings.backend == "system":
        return system(settings)
    if settings.backend == "auto":
        found, why_not = secret_service(settings)
        if found is not None:
            return Chosen(found, "secretservice", "auto: the desktop's Secret Service")
        return Chosen(
            cryptfile(settings, redactor, check_key=check_key), "cryptfile", f"auto: {why_not}"
        )
    raise CredentialError(
        f"FLEET_KEYRING_BACKEND={settings.backend!r} is not known; use {', '.join(BACKENDS)}"
    )


def cryptfile(
    settings: KeyringSettings, redactor: Redactor, *, check_key: bool = True
) -> CryptFile:
    """keyrings.cryptfile's file, unlocked with the master key: one Argon2 derivation to
    prove the key, or none with ``check_key=False`` (the first decryption proves it)."""
    from .cryptfile import CryptFile

    if settings.key:
        key = check_master_key(settings.key, MASTER_KEY_ENV)
    else:
        key = read_key_file(settings.key_file)
    redactor.register(key)
    settings.store_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # Unlocks (or creates) the file: a wrong key fails here when it is checked now.
        return CryptFile(str(settings.store_file), key, check_key=check_key)
    except ValueError as exc:
        raise CredentialError(wrong_key_message(settings.store_file)) from exc


def wrong_key_message(path: Path | str) -> str:
    return (
        f"cannot unlock the credential store {path}: the master key does not match "
        "(FLEET_KEYRING_KEY or the key file)"
    )


def secret_service(
    settings: KeyringSettings,
) -> tuple[keyring.backend.KeyringBackend | None, str]:
    """The Secret Service backend when it can be used without anyone answering a prompt;
    otherwise None and why not."""
    if not settings.env.get("DBUS_SESSION_BUS_ADDRESS"):
        return None, "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
    try:
        import secretstorage
        from jeepney.wrappers import DBusErrorResponse
        from keyring.backends import SecretService
    except ImportError as exc:
        return None, f"SecretService support is not installed ({exc})"
    try:
        # keyring's own test: secretstorage present, the service running or activatable
        # (raises RuntimeError otherwise).
        if SecretService.Keyring.priority <= 0:  # type: ignore[operator]
            return None, "keyring rates the Secret Service unusable here"
        backend = SecretService.Keyring()
        connection = secretstorage.dbus_init()
        try:
            # A locked collection would pop up a prompt (or wait for one that never comes,
            # under cron): only an unlocked one is usable.
            if secretstorage.get_default_collection(connection).is_locked():
                return None, "the Secret Service's default collection is locked"
        finally:
            connection.close()
    except (
        RuntimeError,
        OSError,
        secretstorage.exceptions.SecretStorageException,
        DBusErrorResponse,
    ) as exc:
        return None, f"the Secret Service is not usable ({exc})"
    return backend, ""


def is_plaintext(backend: keyring.backend.KeyringBackend) -> bool:
    """keyrings.alt's PlaintextKeyring (base64 in a file) and its kind."""
    return "plaintext" in type(backend).__name__.lower()


def _fails(backend: keyring.backend.KeyringBackend) -> bool:
    module = type(backend).__module__
    return module.endswith((".fail", ".null")) or backend.priority <= 0  # type: ignore[operator]


def system(settings: KeyringSettings) -> Chosen:
    """The machine's best keyring other than the fleet's file (which would prompt)."""
    named = settings.env.get("PYTHON_KEYRING_BACKEND")
    if named:
        try:
            backend = keyring.core.load_keyring(named)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CredentialError(
                f"PYTHON_KEYRING_BACKEND={named!r} cannot be loaded: {exc}"
            ) from exc
    else:
        candidates = [
            b
            for b in keyring.backend.get_all_keyring()
            if not type(b).__module__.startswith(
                ("keyring.backends.chainer", "keyrings.cryptfile", "credentials.")
            )
            and not _fails(b)
        ]
        if not candidates:
            raise CredentialError(
                "FLEET_KEYRING_BACKEND=system, but this machine has no system keyring; "
                "use FLEET_KEYRING_BACKEND=cryptfile (or auto)"
            )
        backend = max(candidates, key=lambda b: b.priority)  # type: ignore[arg-type,return-value]
    name = type(backend).__name__
    if _fails(backend):
        raise CredentialError(
            f"the system keyring here is {type(backend).__module__}.{name}, which cannot "
            "store anything; use FLEET_KEYRING_BACKEND=cryptfile (or auto)"
        )
    if is_plaintext(backend):
        if not settings.allow_plaintext:
            raise CredentialError(
                f"the system keyring here is {name}, which keeps passwords readable by anyone "
                f"who can read its file; use FLEET_KEYRING_BACKEND=cryptfile (or auto), or set "
                f"{ALLOW_PLAINTEXT_ENV}=1 if that is really acceptable"
            )
        return Chosen(backend, "system", f"PLAINTEXT, allowed by {ALLOW_PLAINTEXT_ENV}")
    kind = "secretservice" if type(backend).__module__.endswith("SecretService") else "system"
    return Chosen(backend, kind)
