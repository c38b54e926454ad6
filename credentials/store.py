"""Store and fetch credentials through keyring, on a real encrypted backend.

On a headless server keyring's own choice is a backend that fails, or one that prompts
on standard input (which hangs under cron). So the store is configured explicitly:

- ``cryptfile`` (default): keyrings.cryptfile's Argon2 + AES-GCM file. Its master key
  comes from ``FLEET_KEYRING_KEY`` or from a key file readable by its owner only
  (``FLEET_KEYRING_KEY_FILE``, default ``~/.config/rpa-fleet/keyring.key``). The encrypted
  file lives at ``FLEET_KEYRING_FILE`` (default ``~/.local/share/rpa-fleet/credentials.cfg``).
- ``system`` (``FLEET_KEYRING_BACKEND=system``): the desktop's keyring (Secret Service,
  macOS Keychain, Windows Credential Locker), refused if it is a plaintext or failing one.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors

from bots.childenv import MASTER_KEY_ENV
from bots.errors import CredentialError
from bots.redaction import Redactor

SERVICE = "rpa-fleet"
MIN_PASSWORD_LENGTH = 4  # shorter secrets cannot be reliably masked in logs
MIN_MASTER_KEY_LENGTH = 16  # a shorter master key is guessed from the stolen file
STRONG_KEY_HINT = (
    "set FLEET_KEYRING_KEY to a random key of 16 or more characters (for example the "
    "output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or unset "
    "it and create a random key file with `python runner.py credentials init`; "
    "credentials stored under the old key must then be stored again"
)


def check_master_key(key: str, source: str) -> str:
    """``key`` if it is strong enough; otherwise a ``CredentialError`` saying what to do."""
    if len(key) < MIN_MASTER_KEY_LENGTH:
        raise CredentialError(
            f"the keyring master key from {source} is too weak: {len(key)} characters, "
            f"at least {MIN_MASTER_KEY_LENGTH} are needed; {STRONG_KEY_HINT}"
        )
    return key


@dataclass(frozen=True)
class Credential:
    name: str
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:  # a credential printed by accident shows no secret
        return f"Credential(name={self.name!r}, username={self.username!r}, password=***)"


@dataclass(frozen=True)
class KeyringSettings:
    backend: str
    key: str | None
    key_file: Path
    store_file: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KeyringSettings:
        home = Path(env.get("HOME", str(Path.home())))
        return cls(
            backend=env.get("FLEET_KEYRING_BACKEND", "cryptfile"),
            key=env.get(MASTER_KEY_ENV) or None,
            key_file=Path(
                env.get("FLEET_KEYRING_KEY_FILE", str(home / ".config/rpa-fleet/keyring.key"))
            ),
            store_file=Path(
                env.get("FLEET_KEYRING_FILE", str(home / ".local/share/rpa-fleet/credentials.cfg"))
            ),
        )

    @property
    def has_key(self) -> bool:
        return self.key is not None or self.key_file.exists()


def create_key_file(path: Path) -> bool:
    """Create a random master key readable by its owner only; False if one exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return True


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise CredentialError(
            f"no keyring master key: set FLEET_KEYRING_KEY, or create the key file {path} "
            "with `python runner.py credentials init`"
        ) from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(
            f"the keyring key file {path} is readable by others; run `chmod 600 {path}`"
        )
    if info.st_uid != os.getuid():
        raise CredentialError(f"the keyring key file {path} belongs to another user")
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise CredentialError(f"the keyring key file {path} is empty")
    return check_master_key(key, f"the key file {path}")


def _backend(settings: KeyringSettings, redactor: Redactor) -> keyring.backend.KeyringBackend:
    if settings.backend == "cryptfile":
        from keyrings.cryptfile.cryptfile import CryptFileKeyring

        if settings.key:
            key = check_master_key(settings.key, MASTER_KEY_ENV)
        else:
            key = _read_key_file(settings.key_file)
        redactor.register(key)
        settings.store_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        backend = CryptFileKeyring()
        backend.file_path = str(settings.store_file)
        try:
            backend.keyring_key = key  # unlocks (or creates) the file: wrong key fails here
        except ValueError as exc:
            raise CredentialError(
                f"cannot unlock the credential store {settings.store_file}: the master key "
                "does not match (FLEET_KEYRING_KEY or the key file)"
            ) from exc
        return backend
    if settings.backend == "system":
        backend = keyring.get_keyring()
        name = type(backend).__name__
        if "Plaintext" in name or "fail" in type(backend).__module__ or backend.priority < 1:
            raise CredentialError(
                f"the system keyring here is {name}, which is not a safe store; "
                "use FLEET_KEYRING_BACKEND=cryptfile"
            )
        return backend
    raise CredentialError(
        f"FLEET_KEYRING_BACKEND={settings.backend!r} is not known; use cryptfile or system"
    )


class CredentialStore:
    """Named credentials; every password fetched is registered with the redactor."""

    def __init__(self, backend: keyring.backend.KeyringBackend, redactor: Redactor) -> None:
        self._backend = backend
        self._redactor = redactor

    @property
    def description(self) -> str:
        path = getattr(self._backend, "file_path", None)
        return f"{type(self._backend).__name__}" + (f" at {path}" if path else "")

    def set(self, name: str, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise CredentialError(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")
        self._redactor.register(password)
        blob = json.dumps({"username": username, "password": password})
        try:
            self._backend.set_password(SERVICE, name, blob)
        except keyring.errors.KeyringError as exc:
            raise CredentialError(f"cannot store credential {name!r}: {exc}") from exc

    def get(self, name: str) -> Credential:
        try:
            blob = self._backend.get_password(SERVICE, name)
        except (keyring.errors.KeyringError, ValueError) as exc:
            raise CredentialError(
                f"cannot read credential {name!r} from {self.description}: {exc}"
            ) from exc
        if blob is None:
            raise CredentialError(
                f"no credential named {name!r} in {self.description}; store it with "
                f"`python runner.py credentials set {name}`"
            )
        data = json.loads(blob)
        self._redactor.register(data["password"])
        return Credential(name=name, username=data["username"], password=data["password"])

    def has(self, name: str) -> bool:
        return self._backend.get_password(SERVICE, name) is not None


def open_store(env: Mapping[str, str], redactor: Redactor) -> CredentialStore:
    """Open the store the environment configures; ``CredentialError`` if it cannot be."""
    return CredentialStore(_backend(KeyringSettings.from_env(env), redactor), redactor)
