"""Store and fetch credentials through keyring, on a real encrypted backend.

On a headless server keyring's own choice is a backend that fails, or one that prompts
on standard input (which hangs under cron). So the store is chosen explicitly, by
``FLEET_KEYRING_BACKEND``:

- ``auto`` (default): the desktop's Secret Service when it is present and usable (a
  D-Bus session bus, a secrets provider answering on it, its collection unlocked, so
  that nothing prompts); otherwise ``cryptfile``. Under cron there is usually no session
  bus: set the backend explicitly on a desktop machine whose jobs run from cron, so that
  the person storing credentials and the job reading them use the same store.
- ``cryptfile``: keyrings.cryptfile's Argon2 + AES-GCM file. Its master key
  comes from ``FLEET_KEYRING_KEY`` or from a key file readable by its owner only
  (``FLEET_KEYRING_KEY_FILE``, default ``~/.config/rpa-fleet/keyring.key``). The encrypted
  file lives at ``FLEET_KEYRING_FILE`` (default ``~/.local/share/rpa-fleet/credentials.cfg``).
- ``system``: the best keyring this machine has besides that file (Secret Service, macOS
  Keychain, Windows Credential Locker; ``PYTHON_KEYRING_BACKEND`` names one outright),
  refused if it fails, and refused if it is a plaintext one unless
  ``FLEET_KEYRING_ALLOW_PLAINTEXT=1`` says a readable store is acceptable.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors

from bots.childenv import MASTER_KEY_ENV
from bots.errors import CredentialError
from bots.redaction import Redactor

SERVICE = "rpa-fleet"
ALLOW_PLAINTEXT_ENV = "FLEET_KEYRING_ALLOW_PLAINTEXT"
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


BACKENDS = ("auto", "cryptfile", "system")
TRUE_WORDS = ("1", "true", "yes")


@dataclass(frozen=True)
class KeyringSettings:
    backend: str
    key: str | None
    key_file: Path
    store_file: Path
    allow_plaintext: bool = False
    # The environment the store was configured from: ``auto`` reads the session bus's
    # address here, ``system`` the keyring a person named (PYTHON_KEYRING_BACKEND).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KeyringSettings:
        home = Path(env.get("HOME", str(Path.home())))
        return cls(
            backend=env.get("FLEET_KEYRING_BACKEND", "auto").strip().lower() or "auto",
            key=env.get(MASTER_KEY_ENV) or None,
            key_file=Path(
                env.get("FLEET_KEYRING_KEY_FILE", str(home / ".config/rpa-fleet/keyring.key"))
            ),
            store_file=Path(
                env.get("FLEET_KEYRING_FILE", str(home / ".local/share/rpa-fleet/credentials.cfg"))
            ),
            allow_plaintext=env.get(ALLOW_PLAINTEXT_ENV, "").strip().lower() in TRUE_WORDS,
            env=env,
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


def read_key_file(path: Path) -> str:
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


class CredentialStore:
    """Named credentials; every password fetched is registered with the redactor."""

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend,
        redactor: Redactor,
        *,
        kind: str = "system",
        note: str = "",
    ) -> None:
        self._backend = backend
        self._redactor = redactor
        self.kind = kind  # "cryptfile", "secretservice" or "system" (backends.Chosen)
        self.note = note

    @property
    def description(self) -> str:
        path = getattr(self._backend, "file_path", None)
        name = getattr(self._backend, "display_name", type(self._backend).__name__)
        where = f"{name}" + (f" at {path}" if path else "")
        return f"{where} ({self.note})" if self.note else where

    @property
    def plaintext(self) -> bool:
        from .backends import is_plaintext

        return is_plaintext(self._backend)

    def set(self, name: str, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise CredentialError(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")
        self._redactor.register(password)
        self._prove_key()  # a wrong key would write what the right one cannot read
        # The name rides along: keyrings.cryptfile's file keeps it lower-cased, and
        # `credentials list` shows it as it was given.
        blob = json.dumps({"username": username, "password": password, "name": name})
        try:
            self._backend.set_password(SERVICE, name, blob)
        except keyring.errors.KeyringError as exc:
            raise CredentialError(f"cannot store credential {name!r}: {exc}") from exc

    def get(self, name: str) -> Credential:
        data = self._read(name)
        if data is None:
            self._prove_key()  # with a wrong key, that is what the user must hear
            raise CredentialError(
                f"no credential named {name!r} in {self.description}; store it with "
                f"`python runner.py credentials set {name}`"
            )
        return Credential(name=name, username=data["username"], password=data["password"])

    def has(self, name: str) -> bool:
        """Whether ``name`` is stored. On the file, read from its (clear) section and
        option names: no key derivation per credential."""
        names = self._file_names()
        if names is not None:
            return name.lower() in {n.lower() for n in names}
        return self._read(name) is not None

    def delete(self, name: str) -> None:
        self._prove_key()
        try:
            self._backend.delete_password(SERVICE, name)
        except keyring.errors.PasswordDeleteError as exc:
            raise CredentialError(f"no credential named {name!r} in {self.description}") from exc
        except keyring.errors.KeyringError as exc:
            raise CredentialError(f"cannot delete credential {name!r}: {exc}") from exc

    def entries(self) -> list[tuple[str, str]]:
        """(name, username) of every stored credential, sorted; never a password.

        The file: names from its option names, usernames decrypted (an Argon2 derivation
        each, ~0.5 s). Secret Service: one search. Other keyrings have no way to list:
        ``CredentialError`` saying so."""
        names = self._file_names()
        if names is not None:
            found = []
            for listed in names:
                try:
                    data = self._read(listed)
                except CredentialError:
                    # The file keeps names lower-cased, but the encryption is bound to
                    # the name as given: one stored with capitals opens only by that name.
                    found.append((listed, UNREADABLE_USERNAME))
                    continue
                if data is not None:
                    found.append((str(data.get("name", listed)), str(data["username"])))
            self._prove_key()  # free once an entry decrypted; a wrong key lists nothing
            return sorted(found)
        if self.kind == "secretservice":
            return sorted(self._secret_service_entries())
        raise CredentialError(
            f"{self.description} cannot list what it holds; check one credential with "
            "`python runner.py credentials check NAME`"
        )

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            blob = self._backend.get_password(SERVICE, name)
        except (keyring.errors.KeyringError, ValueError) as exc:
            self._prove_key()  # the key, or this entry? (the key's message wins)
            raise CredentialError(
                f"cannot read credential {name!r} from {self.description}: {exc}"
            ) from exc
        if blob is None:
            return None
        data = _decode(name, blob)
        self._redactor.register(data["password"])
        return data

    def _prove_key(self) -> None:
        """On the file, make sure the master key is the file's before trusting a result
        that depends on it (a write, a "not found", a failed read). One derivation, unless
        a credential already decrypted, which proved it (cryptfile.py)."""
        from .cryptfile import CryptFile

        if not isinstance(self._backend, CryptFile):
            return  # other keyrings unlock as a whole, or not at all
        try:
            self._backend.prove_key()
        except ValueError as exc:
            from .backends import wrong_key_message

            raise CredentialError(wrong_key_message(self._backend.file_path)) from exc

    def _file_names(self) -> list[str] | None:
        """The names in keyrings.cryptfile's file (an INI file: one section per service,
        one option per name, escaped); None for any other backend."""
        if self.kind != "cryptfile":
            return None
        from keyrings.cryptfile.escape import escape, unescape

        config = configparser.RawConfigParser()
        path = getattr(self._backend, "file_path", "")
        try:
            config.read(path, encoding="utf-8")
        except (configparser.Error, OSError) as exc:
            raise CredentialError(f"cannot read the credential store {path}: {exc}") from exc
        section = escape(SERVICE)
        if not config.has_section(section):
            return []
        # configparser lower-cases option names: "_2d" must read as the escape "_2D".
        return [unescape(_ESCAPE.sub(lambda m: m[0].upper(), o)) for o in config.options(section)]

    def _secret_service_entries(self) -> list[tuple[str, str]]:
        get_collection = getattr(self._backend, "get_preferred_collection", None)
        if get_collection is None:
            raise CredentialError(f"{self.description} cannot list what it holds")
        found = []
        for item in get_collection().search_items({"service": SERVICE}):
            name = item.get_attributes().get("username", "?")
            data = _decode(name, item.get_secret().decode("utf-8"))
            self._redactor.register(data["password"])
            found.append((name, str(data["username"])))
        return found


UNREADABLE_USERNAME = "? (stored under a name with capitals: check it by that exact name)"
_ESCAPE = re.compile(r"_[0-9a-f]{2}")


def _decode(name: str, blob: str) -> dict[str, Any]:
    try:
        data = json.loads(blob)
    except ValueError as exc:
        raise CredentialError(
            f"credential {name!r} was not stored by rpa-fleet (not its format); store it "
            f"again with `python runner.py credentials set {name}`"
        ) from exc
    if not isinstance(data, dict) or not {"username", "password"} <= data.keys():
        raise CredentialError(
            f"credential {name!r} lacks a username or password; store it again with "
            f"`python runner.py credentials set {name}`"
        )
    return data


def open_store(
    env: Mapping[str, str], redactor: Redactor, *, check_key: bool = True
) -> CredentialStore:
    """Open the store the environment configures; ``CredentialError`` if it cannot be.

    ``check_key``: prove the file's master key now (an Argon2 derivation) even if nothing
    is decrypted later: what ``doctor`` needs. A caller that reads or writes a credential
    anyway passes False and saves that derivation: the first credential decrypted proves
    the key, and a write, a failed read or a "not found" proves it first, so a wrong key
    is refused with the same message either way."""
    from .backends import choose

    chosen = choose(KeyringSettings.from_env(env), redactor, check_key=check_key)
    return CredentialStore(chosen.backend, redactor, kind=chosen.kind, note=chosen.note)
