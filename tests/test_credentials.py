"""Credentials live encrypted in the keyring and never show up in text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_child_env_while_another_thread_withholds_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet worker's lanes start browsers side by side: one withholds the key from
    os.environ while another copies it for Chromium. The copy must neither fail (a name
    gone while it iterated: KeyError) nor hold the key."""
    import threading

    from bots.childenv import child_env, master_key_withheld

    monkeypatch.setenv("FLEET_KEYRING_KEY", "parent-only-master-key-1")
    for n in range(200):  # names enough that a copy takes a while to iterate
        monkeypatch.setenv(f"FLEET_TEST_FILLER_{n}", "x")
    done = threading.Event()
    problems: list[BaseException] = []

    def withhold() -> None:
        while not done.is_set():
            with master_key_withheld():
                pass

    def copy() -> None:
        try:
            for _ in range(2000):
                assert "FLEET_KEYRING_KEY" not in child_env()
        except BaseException as exc:  # noqa: BLE001 - whatever it was, the test reports it
            problems.append(exc)

    withholders = [threading.Thread(target=withhold) for _ in range(2)]
    copiers = [threading.Thread(target=copy) for _ in range(2)]
    for t in withholders + copiers:
        t.start()
    for t in copiers:
        t.join()
    done.set()
    for t in withholders:
        t.join()
    assert problems == []
    assert os.environ["FLEET_KEYRING_KEY"] == "parent-only-master-key-1"


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


# --- what the file costs: Argon2 derivations, counted by wrapping the KDF -----------------


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The salts of every Argon2 derivation from now on (keyrings.cryptfile and the
    fleet both look the KDF up on argon2.low_level at each call)."""
    import argon2.low_level

    salts: list[bytes] = []
    real = argon2.low_level.hash_secret_raw

    def counted(**kwargs: Any) -> bytes:
        salts.append(kwargs["salt"])
        return real(**kwargs)

    monkeypatch.setattr(argon2.low_level, "hash_secret_raw", counted)
    return salts


@pytest.fixture(scope="module")
def two_stored(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A keyring file holding two credentials under keyring_env's master key, made once
    (three derivations) and copied into each test that needs it."""
    folder = tmp_path_factory.mktemp("two")
    env = {"HOME": str(folder), "FLEET_KEYRING_KEY": "test-master-key-3f9a"}
    env["FLEET_KEYRING_FILE"] = str(folder / "credentials.cfg")
    store = open_store(env, Redactor())
    store.set("erp", "clerk", "pw-erp-5521")
    store.set("archive", "archivist", "pw-arc-7710")
    return (folder / "credentials.cfg").read_bytes()


def _two_credentials(env: dict[str, str], content: bytes) -> None:
    path = Path(env["FLEET_KEYRING_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(content)
    path.chmod(0o600)


def test_a_run_reading_two_credentials_derives_twice_not_three_times(
    keyring_env: dict[str, str], derivations: list[bytes], two_stored: bytes
) -> None:
    _two_credentials(keyring_env, two_stored)
    derivations.clear()
    store = open_store(keyring_env, Redactor(), check_key=False)
    assert derivations == []  # opening proves nothing yet: the first decryption will
    assert store.get("erp").password == "pw-erp-5521"
    assert store.get("archive").password == "pw-arc-7710"
    assert len(derivations) == 2 and len(set(derivations)) == 2  # one per entry's salt
    store.get("erp")  # another session of the run asks again: the key is kept per salt
    assert len(derivations) == 2


def test_checking_the_key_at_open_costs_one_derivation_more(
    keyring_env: dict[str, str], derivations: list[bytes], two_stored: bytes
) -> None:
    """doctor opens with the check (it decrypts nothing afterwards)."""
    _two_credentials(keyring_env, two_stored)
    derivations.clear()
    store = open_store(keyring_env, Redactor())
    assert len(derivations) == 1
    store.get("erp")
    assert len(derivations) == 2


def test_set_derives_for_the_key_check_and_the_encryption_only(
    keyring_env: dict[str, str], derivations: list[bytes]
) -> None:
    store = open_store(keyring_env, Redactor(), check_key=False)  # a new file: its reference
    store.set("erp", "clerk", "pw-erp-5521")
    assert len(derivations) == 2
    derivations.clear()
    store = open_store(keyring_env, Redactor(), check_key=False)
    store.set("erp", "clerk", "pw-erp-0001")  # the reference, then the new entry
    assert len(derivations) == 2
    store.set("archive", "archivist", "pw-arc-7710")  # the key is proven: one more
    assert len(derivations) == 3


@pytest.mark.parametrize("action", ["get", "get-missing", "set", "delete", "entries"])
def test_a_wrong_key_is_refused_when_not_checked_at_open(
    keyring_env: dict[str, str], action: str, two_stored: bytes
) -> None:
    _two_credentials(keyring_env, two_stored)
    path = Path(keyring_env["FLEET_KEYRING_FILE"])
    before = path.read_bytes()
    wrong = {**keyring_env, "FLEET_KEYRING_KEY": "another-master-key-0000"}
    store = open_store(wrong, Redactor(), check_key=False)
    with pytest.raises(CredentialError, match="master key does not match"):
        if action == "get":
            store.get("erp")
        elif action == "get-missing":
            store.get("nope")  # not "store it": with this key, storing would fail too
        elif action == "set":
            store.set("erp", "clerk", "pw-written-with-the-wrong-key")
        elif action == "delete":
            store.delete("erp")
        else:
            store.entries()
    assert path.read_bytes() == before  # nothing written with the wrong key


def test_the_file_stays_keyrings_cryptfiles_own_format(keyring_env: dict[str, str]) -> None:
    """A file written by plain keyrings.cryptfile (an existing user's) is read by the
    fleet, and what the fleet writes is read by plain keyrings.cryptfile."""
    from keyrings.cryptfile.cryptfile import CryptFileKeyring

    path = Path(keyring_env["FLEET_KEYRING_FILE"])
    path.parent.mkdir(parents=True)
    plain = CryptFileKeyring()
    plain.file_path = str(path)
    plain.keyring_key = keyring_env["FLEET_KEYRING_KEY"]
    plain.set_password("rpa-fleet", "old", '{"username": "u1", "password": "pw-old-1234"}')
    store = open_store(keyring_env, Redactor(), check_key=False)
    assert store.get("old").password == "pw-old-1234"
    store.set("new", "u2", "pw-new-5678")
    again = CryptFileKeyring()
    again.file_path = str(path)
    again.keyring_key = keyring_env["FLEET_KEYRING_KEY"]
    assert '"pw-new-5678"' in (again.get_password("rpa-fleet", "new") or "")
    assert '"pw-old-1234"' in (again.get_password("rpa-fleet", "old") or "")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_write_replaces_the_file_whole_under_the_writers_lock(
    keyring_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, two_stored: bytes
) -> None:
    """keyrings.cryptfile truncates the file and writes it again: a run reading then saw
    an empty file, took it for a new keyring and wrote one over it. Here, up to the
    moment the new file takes its place, the old one is whole and readable, and no other
    writer can hold the lock."""
    import fcntl

    import credentials.cryptfile

    _two_credentials(keyring_env, two_stored)
    path = Path(keyring_env["FLEET_KEYRING_FILE"])
    before = path.read_bytes()
    seen: list[str] = []
    real_replace = os.replace

    def replace(source: str, target: str) -> None:
        assert path.read_bytes() == before
        seen.append(open_store(keyring_env, Redactor(), check_key=False).get("erp").password)
        with open(str(path) + ".lock", "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        real_replace(source, target)

    monkeypatch.setattr(credentials.cryptfile.os, "replace", replace)
    open_store(keyring_env, Redactor(), check_key=False).set("third", "u3", "pw-third-999")
    assert seen == ["pw-erp-5521"]
    assert not list(path.parent.glob("*.tmp"))  # no temporary file left behind
    names = [name for name, _ in open_store(keyring_env, Redactor()).entries()]
    assert names == ["archive", "erp", "third"]


_SET_TWO = """
import sys
from bots.redaction import Redactor
from credentials import open_store
import os
store = open_store(os.environ, Redactor(), check_key=False)
for n in range(2):
    store.set(f"{sys.argv[1]}-{n}", "user", f"pw-{sys.argv[1]}-{n}-xyz")
"""


def test_writers_in_several_processes_lose_nothing(
    keyring_env: dict[str, str], two_stored: bytes
) -> None:
    _two_credentials(keyring_env, two_stored)
    env = {**os.environ, **keyring_env, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _SET_TWO, f"w{i}"], cwd=ROOT, env=env)
        for i in range(3)
    ]
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0]
    store = open_store(keyring_env, Redactor(), check_key=False)
    names = sorted(name for name, _ in store.entries())
    assert names == sorted(["archive", "erp"] + [f"w{i}-{n}" for i in range(3) for n in range(2)])
    assert store.get("w2-1").password == "pw-w2-1-xyz"
