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
        open_store({**keyring_env, "FLEET_KEYRING_KEY": "another-master-key-0000"}, Redactor())


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


# --- the master key: strong, and never in a child's environment --------------------------


@pytest.mark.parametrize("key", ["Z", "short-key-15chr"])
def test_weak_master_key_in_the_environment_is_refused(
    keyring_env: dict[str, str], key: str
) -> None:
    with pytest.raises(CredentialError) as refused:
        open_store({**keyring_env, "FLEET_KEYRING_KEY": key}, Redactor())
    message = str(refused.value)
    assert "too weak" in message and "at least 16" in message
    assert "FLEET_KEYRING_KEY" in message and "credentials init" in message
    assert key not in message
    assert not Path(keyring_env["FLEET_KEYRING_FILE"]).exists()  # nothing made with it


def test_weak_master_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "keyring.key"
    key_file.write_text("tiny\n")
    key_file.chmod(0o600)
    env = {
        "HOME": str(tmp_path),
        "FLEET_KEYRING_KEY_FILE": str(key_file),
        "FLEET_KEYRING_FILE": str(tmp_path / "c.cfg"),
    }
    with pytest.raises(CredentialError, match=f"key file {key_file} is too weak"):
        open_store(env, Redactor())


def test_cli_refuses_a_weak_master_key_saying_how_to_set_one(keyring_env: dict[str, str]) -> None:
    env = {**os.environ, **keyring_env, "FLEET_KEYRING_KEY": "1"}
    for command in (["credentials", "init"], ["credentials", "set", "erp", "--username", "c"]):
        result = subprocess.run(
            [sys.executable, "runner.py", *command, "--password-stdin"][: len(command) + 2],
            cwd=ROOT,
            input="pw-from-stdin\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "too weak" in result.stderr and "token_urlsafe" in result.stderr
        assert "Traceback" not in result.stderr


def test_child_env_has_no_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from bots.childenv import child_env, master_key_withheld

    monkeypatch.setenv("FLEET_KEYRING_KEY", "parent-only-master-key-1")
    assert "FLEET_KEYRING_KEY" not in child_env()
    assert child_env({"A": "1", "FLEET_KEYRING_KEY": "x" * 20}) == {"A": "1"}
    with master_key_withheld():
        assert "FLEET_KEYRING_KEY" not in os.environ
    assert os.environ["FLEET_KEYRING_KEY"] == "parent-only-master-key-1"  # the parent keeps it


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_text = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat_text.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_browser_processes_have_no_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's driver and every Chromium process, read from /proc/<pid>/environ."""
    from bots.drivers.web.session import WebDriver
    from tests.test_browser import config

    key = "parent-only-master-key-7d3e"
    monkeypatch.setenv("FLEET_KEYRING_KEY", key)
    driver = WebDriver(dict(os.environ))
    try:
        session = driver.open(config())
        session.page.goto("about:blank")
        processes = _descendants(os.getpid())
        environs = {}
        for pid in processes:
            try:
                environs[pid] = Path(f"/proc/{pid}/environ").read_bytes()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            environs[pid] += cmdline
        names = b" ".join(Path(f"/proc/{pid}/comm").read_bytes().strip() for pid in environs)
        assert b"chrom" in names.lower(), names  # the browser really is among them
        for pid, environ in environs.items():
            assert key.encode() not in environ, pid
            assert b"FLEET_KEYRING_KEY=" not in environ, pid
    finally:
        driver.close()
    assert os.environ["FLEET_KEYRING_KEY"] == key  # this process still has its key


def test_every_child_process_the_product_starts_is_given_an_environment() -> None:
    """A child started without ``env=`` inherits ``os.environ``, master key included:
    every subprocess call in the product passes one (``childenv.child_env()``)."""
    import ast

    from tests.conftest import ROOT

    bare, seen = [], 0
    for path in sorted([*(ROOT / "bots").rglob("*.py"), *(ROOT / "credentials").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "subprocess"
                and node.func.attr in {"run", "Popen", "call", "check_call", "check_output"}
            ):
                seen += 1
                if not any(k.arg == "env" for k in node.keywords):
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert seen >= 2, "the demo's simulators and the virus scanner start children"
    assert not bare, f"subprocess calls without env= (they would inherit the master key): {bare}"
