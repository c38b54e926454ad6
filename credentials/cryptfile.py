"""keyrings.cryptfile's encrypted file, unchanged on disk, at the cost of fewer derivations.

Every entry of the file is salted on its own, so reading a credential costs one Argon2
derivation (about 0.4 to 0.6 s): that is the price of the format and stays. What this
subclass removes is waste around it, never a check:

- **the key check rides on the first decryption.** keyrings.cryptfile proves the master
  key by decrypting its "password reference" entry when the key is set: one derivation
  spent on a value nobody needs. A credential that decrypts proves the key just as well
  (AES-GCM verifies a tag under the key derived from it). With ``check_key=False`` the
  reference is decrypted only when it must be: before anything is written or deleted
  (a wrong key must not write what the right one cannot read), and when a read fails (to
  say whether the key or the entry is wrong);
- **a derived key is kept per salt, in this object only,** so the same entry read twice
  (each of a run's sessions asks for its credential; keyrings.cryptfile's retry without
  associated data) costs one derivation. A rewritten entry has a new salt, hence a new
  derivation: nothing stale is ever used. Nothing is kept on disk;
- **writes are atomic and serialised.** keyrings.cryptfile rewrites the file in place
  (truncate, then write): a run reading at that moment sees an empty file, takes it for
  a new keyring and writes a fresh one over it. Here a writer holds an exclusive lock on
  ``<file>.lock`` while it reads, changes and replaces the file (a temporary file renamed
  over it), so readers, who take no lock, always see a whole file, and two writers never
  lose each other's credential.

Nothing here ever prompts: keyrings.cryptfile asks on standard input for a missing key,
which hangs under cron.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import argon2.low_level
from keyring.errors import PasswordDeleteError
from keyrings.cryptfile.cryptfile import CryptFileKeyring
from keyrings.cryptfile.escape import escape as escape_for_ini

REFERENCE = ("keyring-setting", "password reference")
REFERENCE_VALUE = "password reference value"


class CryptFile(CryptFileKeyring):  # type: ignore[misc]  # keyrings.cryptfile is untyped
    # Subclassing a keyring backend registers it with keyring; a negative priority keeps
    # keyring (and FLEET_KEYRING_BACKEND=system) from ever choosing it on its own.
    priority = -1
    display_name = "CryptFileKeyring"  # what the commands print: the format, as before

    def __init__(self, path: str, key: str, *, check_key: bool = True) -> None:
        """The file at ``path``, unlocked with ``key`` (created if there is none).

        ``check_key``: prove the key now (one derivation; ``ValueError`` if it is not the
        file's), rather than by the first credential decrypted."""
        super().__init__()
        self.file_path = path
        self._check_now = check_key
        self._proven = False
        self._derived: dict[tuple[str, bytes], bytes] = {}
        # One derivation at a time: each already keeps two cores busy (parallelism=2),
        # and two threads asking for one entry must not derive it twice.
        self._derive_lock = threading.Lock()
        self.keyring_key = key  # keyrings.cryptfile's setter: checks the file, unlocks

    @property
    def key_proven(self) -> bool:
        return self._proven

    def prove_key(self) -> None:
        """Decrypt the file's reference entry (unless a decryption already proved the
        key): ``ValueError`` when the master key is not the file's."""
        if self._proven:
            return
        if self.get_password(*REFERENCE) != REFERENCE_VALUE:
            self._proven = False  # it decrypted, but is not what keyrings.cryptfile wrote
            raise ValueError("Incorrect Password")
        self._proven = True

    # -- keyrings.cryptfile's hooks ------------------------------------------------------

    def _unlock(self) -> None:
        if self._keyring_key is None:
            raise ValueError("no master key")  # never getpass, never the environment
        if self._check_now:
            self.prove_key()

    def _init_file(self) -> None:
        super()._init_file()
        self._proven = True  # the reference was just written with this key

    def _get_new_password(self) -> str:
        raise ValueError("no master key")  # keyrings.cryptfile would prompt for one

    def _create_cipher(self, password: str, salt: bytes, nonce: bytes | None = None) -> Any:
        """keyrings.cryptfile's cipher (same KDF, parameters and mode), the derived key
        kept per salt."""
        from Crypto.Cipher import AES

        mode = self._get_mode(self.aesmode)
        if mode is None:
            raise ValueError(f"invalid AES mode: {self.aesmode}")
        return AES.new(self._derive(password, salt), mode, nonce)

    def decrypt(self, password_encrypted: bytes, assoc: bytes | None = None) -> bytes:
        plain: bytes = super().decrypt(password_encrypted, assoc)
        self._proven = True  # the tag verified under this key: the key is the file's
        return plain

    def _write_config_value(self, service: str, key: str, value: str) -> None:
        with self._locked_config() as config:
            section = escape_for_ini(service)
            if not config.has_section(section):
                config.add_section(section)
            config.set(section, escape_for_ini(key), value)

    def delete_password(self, service: str, username: str) -> None:
        with self._locked_config() as config:
            try:
                removed = config.remove_option(escape_for_ini(service), escape_for_ini(username))
            except configparser.NoSectionError:
                removed = False
            if not removed:
                raise PasswordDeleteError("Password not found")

    # -- the machinery -------------------------------------------------------------------

    def _derive(self, password: str, salt: bytes) -> bytes:
        with self._derive_lock:
            found = self._derived.get((password, salt))
            if found is None:
                # Looked up on the module at each call, as keyrings.cryptfile does, so a
                # test can count the derivations by wrapping it.
                found = argon2.low_level.hash_secret_raw(
                    secret=password.encode(self.password_encoding),
                    salt=salt,
                    time_cost=self.time_cost,
                    memory_cost=self.memory_cost,
                    parallelism=self.parallelism,
                    hash_len=16,
                    type=argon2.low_level.Type.ID,
                )
                self._derived[(password, salt)] = found
            return found

    @contextlib.contextmanager
    def _locked_config(self) -> Iterator[configparser.RawConfigParser]:
        """The file's content to change, read under an exclusive lock and written back
        whole (a temporary file renamed over it) unless the block raises."""
        path = os.path.realpath(self.file_path)  # a symlinked file stays a symlink
        folder = os.path.dirname(path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            config = configparser.RawConfigParser()
            config.read(path, encoding="utf-8")
            yield config
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=".credentials-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 600
                    config.write(handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            _sync_folder(folder)
        finally:
            os.close(lock_fd)  # releases the lock


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (a crash right after must not bring back the old
    file, or none)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
