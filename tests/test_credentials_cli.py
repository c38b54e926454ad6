"""credentials list|delete|test, and the keyring backend chosen explicitly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bots.errors import CredentialError
from bots.redaction import Redactor
from credentials import open_store
from tests.conftest import ROOT
from tests.e2e import ERP_PASSWORD, world

PLAINTEXT = "tests.fakes.plaintext_keyring.PlaintextKeyring"


def runner(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_list_shows_names_and_usernames_never_passwords_then_delete(
    keyring_env: dict[str, str],
) -> None:
    env = {**os.environ, **keyring_env}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    store = open_store(env, Redactor())
    store.set("demo-erp", "clerk", "pw-erp-5521")
    store.set("demo.archive_2", "archivist", "pw-arc-7710")
    listed = runner(env, "credentials", "list")
    assert listed.returncode == 0, listed.stderr
    assert "demo-erp\tclerk" in listed.stdout and "demo.archive_2\tarchivist" in listed.stdout
    assert "2 credential(s) in CryptFileKeyring" in listed.stdout
    assert "auto: no D-Bus session bus" in listed.stdout  # which backend, and why
    assert "pw-" not in listed.stdout + listed.stderr
    deleted = runner(env, "credentials", "delete", "demo-erp")
    assert deleted.returncode == 0 and "deleted credential 'demo-erp'" in deleted.stdout
    again = runner(env, "credentials", "delete", "demo-erp")
    assert again.returncode == 2 and "no credential named 'demo-erp'" in again.stderr
    assert [n for n, _ in open_store(env, Redactor()).entries()] == ["demo.archive_2"]


def test_plaintext_system_keyring_is_refused_unless_allowed(keyring_env: dict[str, str]) -> None:
    env = {**keyring_env, "FLEET_KEYRING_BACKEND": "system", "PYTHON_KEYRING_BACKEND": PLAINTEXT}
    with pytest.raises(CredentialError, match="readable by anyone") as refused:
        open_store(env, Redactor())
    assert "FLEET_KEYRING_ALLOW_PLAINTEXT=1" in str(refused.value)
    allowed = open_store({**env, "FLEET_KEYRING_ALLOW_PLAINTEXT": "1"}, Redactor())
    assert allowed.plaintext and "PLAINTEXT" in allowed.description
    with pytest.raises(CredentialError, match="cannot list"):
        allowed.entries()


def test_unknown_backend_names_the_choices(keyring_env: dict[str, str]) -> None:
    with pytest.raises(CredentialError, match="auto, cryptfile, system"):
        open_store({**keyring_env, "FLEET_KEYRING_BACKEND": "vault"}, Redactor())


@pytest.mark.skipif(
    not (shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon")),
    reason="needs dbus-run-session and gnome-keyring (scripts/setup.sh installs them)",
)
def test_auto_uses_a_real_secret_service_when_there_is_one(tmp_path: Path) -> None:
    """A private D-Bus session with gnome-keyring's secrets component, unlocked, as on a
    desktop: auto stores there, and makes no encrypted file."""
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "FLEET_KEYRING_FILE": str(tmp_path / "keyring" / "credentials.cfg"),
        "KEYRING_PW": "unlock-pw-5531",
    }
    env.pop("FLEET_KEYRING_KEY", None)
    (tmp_path / "home").mkdir()
    py = f"{sys.executable} runner.py"
    script = (
        'printf %s "$KEYRING_PW" | gnome-keyring-daemon --unlock --components=secrets '
        "--daemonize >/dev/null && "
        f"printf 'ss-Pw-90210\\n' | {py} credentials set erp --username clerk --password-stdin"
        f" && {py} credentials list && {py} credentials check erp"
        f" && {py} credentials delete erp && {py} credentials list"
    )
    proc = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "stored credential 'erp' for 'clerk' in Keyring" in out
    assert "(auto: the desktop's Secret Service)" in out
    assert "1 credential(s) in Keyring (auto" in out and "erp\tclerk" in out
    assert "deleted credential 'erp'" in out and "0 credential(s)" in out
    assert "ss-Pw-90210" not in out + proc.stderr
    assert not (tmp_path / "keyring" / "credentials.cfg").exists()


def test_credentials_test_logs_in_and_reports_each_system(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        good = runner(w.env, "credentials", "test", "demo-erp", "--recipe", "demo")
        assert good.returncode == 0, good.stdout + good.stderr
        assert "ok   demo source (旧ERP (legacy ERP simulator))" in good.stdout
        assert "logged in as 'clerk'" in good.stdout
        assert "demo-desktop" not in good.stdout  # --recipe: that recipe only
        every = runner(w.env, "credentials", "test", "demo-archive")  # both demo recipes
        assert every.returncode == 0, every.stdout + every.stderr
        assert "demo archive" in every.stdout and "demo-desktop archive" in every.stdout
        missing = runner(w.env, "credentials", "test", "nobody-uses-this")
        assert missing.returncode == 2 and "credentials set nobody-uses-this" in missing.stderr
        wrong = runner(
            w.env,
            "credentials",
            "set",
            "demo-erp",
            "--username",
            "clerk",
            "--password-stdin",
            stdin="bad-Pw-1234\n",
        )
        assert wrong.returncode == 0, wrong.stderr
        failed = runner(w.env, "credentials", "test", "demo-erp", "--recipe", "demo")
        assert failed.returncode == 3, failed.stdout + failed.stderr
        assert "FAIL demo source" in failed.stderr and "用户名或密码错误" in failed.stderr
        for result in (good, every, failed):
            assert ERP_PASSWORD not in result.stdout + result.stderr
            assert "bad-Pw-1234" not in result.stdout + result.stderr
        # Nothing kept: no run log, no ledger, nothing archived.
        assert not w.logs_dir.exists() or not any(w.logs_dir.rglob("*"))
        assert w.archive_state() == []
