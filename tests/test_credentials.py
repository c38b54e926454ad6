"""Credentials live encrypted in the keyring and never show up in text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots.errors import CredentialError
from bots.redaction import MASK, Redactor
from credentials import create_key_file, open_store
from tests.conftest import ROOT


def test_round_trip_in_an_encrypted_file(keyring_env: dict[str, str]) -> None:
    store = open_store(keyring_env, Redactor())
    store.set("erp", "clerk", "s3cret-PW-密码")
    credential = store.get("erp")
    assert (credential.username, credential.password) == ("clerk", "s3cret-PW-密码")
    on_disk = Path(keyring_env["FLEET_KEYRING_FILE"]).read_bytes()
    assert b"s3cret" not in on_disk and "密码".encode() not in on_disk
    assert b"Argon2" in on_disk  # the scheme line of keyrings.cryptfile's format


def test_credential_repr_hides_the_password(keyring_env: dict[str, str]) -> None:
    store = open_store(keyring_env, Redactor())
    store.set("erp", "clerk", "s3cret-PW")
    assert "s3cret" not in repr(store.get("erp")) and "s3cret" not in str(store.get("erp"))


def test_fetched_password_is_registered_for_redaction(keyring_env: dict[str, str]) -> None:
    open_store(keyring_env, Redactor()).set("erp", "clerk", "s3cret-PW")
    redactor = Redactor()
    open_store(keyring_env, redactor).get("erp")
    assert redactor.scrub('fill "s3cret-PW" failed') == f'fill "{MASK}" failed'


def test_missing_credential_says_how_to_store_it(keyring_env: dict[str, str]) -> None:
    with pytest.raises(CredentialError, match="runner.py credentials set nope"):
        open_store(keyring_env, Redactor()).get("nope")


def test_wrong_master_key_is_a_clear_error(keyring_env: dict[str, str]) -> None:
    open_store(keyring_env, Redactor()).set("erp", "clerk", "s3cret-PW")
    with pytest.raises(CredentialError, match="master key does not match"):
        open_store({**keyring_env, "FLEET_KEYRING_KEY": "another-key"}, Redactor())


def test_no_master_key_says_what_to_do(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "FLEET_KEYRING_FILE": str(tmp_path / "c.cfg")}
    with pytest.raises(CredentialError, match="credentials init"):
        open_store(env, Redactor())


def test_key_file_must_be_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "keyring.key"
    assert create_key_file(key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert not create_key_file(key_file)  # never overwrites a key
    env = {
        "HOME": str(tmp_path),
        "FLEET_KEYRING_KEY_FILE": str(key_file),
        "FLEET_KEYRING_FILE": str(tmp_path / "c.cfg"),
    }
    open_store(env, Redactor()).set("erp", "clerk", "s3cret-PW")
    os.chmod(key_file, 0o644)
    with pytest.raises(CredentialError, match="chmod 600"):
        open_store(env, Redactor())


def test_unknown_backend_is_refused(keyring_env: dict[str, str]) -> None:
    with pytest.raises(CredentialError, match="not known"):
        open_store({**keyring_env, "FLEET_KEYRING_BACKEND": "plaintext"}, Redactor())


def test_cli_set_from_stdin_then_check(keyring_env: dict[str, str]) -> None:
    env = {**os.environ, **keyring_env}
    stored = subprocess.run(
        [
            sys.executable,
            "runner.py",
            "credentials",
            "set",
            "erp",
            "--username",
            "clerk",
            "--password-stdin",
        ],
        cwd=ROOT,
        input="pw-from-stdin\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert stored.returncode == 0, stored.stderr
    checked = subprocess.run(
        [sys.executable, "runner.py", "credentials", "check", "erp"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    missing = subprocess.run(
        [sys.executable, "runner.py", "credentials", "check", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert checked.returncode == 0 and "username 'clerk'" in checked.stdout
    assert missing.returncode == 2 and "credentials set nope" in missing.stderr
    for output in (stored.stdout, stored.stderr, checked.stdout, checked.stderr):
        assert "pw-from-stdin" not in output
