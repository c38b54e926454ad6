"""Preflight checks (``runner.py doctor``): will tonight's runs work on this machine?

Each check is a small function giving ``Check`` lines: ``ok``, ``warn`` (works, but
look at it) or ``FAIL`` with the fix. A failure carries the exit code it stands for:
2 (``EXIT_USAGE``) for configuration a person must correct (a recipe, a credential, the
keyring's set-up, a ledger behind its schema), 3 (``EXIT_SYSTEM``) for the machine (no
browser, no display, the ledger or logs folder unreachable or full, a login that fails).
Doctor exits with the highest code among its failures.

Nothing here changes anything: the ledger is not upgraded, no ledger file or logs folder
is created, no run log is written, no credential is stored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .errors import EXIT_OK, EXIT_SYSTEM, EXIT_USAGE, FleetError
from .redaction import Redactor
from .settings import Settings

if TYPE_CHECKING:
    from credentials import CredentialStore

    from .recipe import LoadedRecipe

Status = Literal["ok", "warn", "FAIL"]
GIB = 1024**3
MIB = 1024**2
WARN_FREE = 1 * GIB  # below this, warn: a night of PDFs and screenshots may not fit
FAIL_FREE = 100 * MIB  # below this, a run would stop on a full disk (exit 3)


@dataclass(frozen=True)
class Check:
    status: Status
    what: str
    fix: str = ""
    code: int = EXIT_OK  # for a failure: EXIT_USAGE (configuration) or EXIT_SYSTEM (machine)

    def line(self) -> str:
        fix = f" -- fix: {self.fix}" if self.fix else ""
        return f"{self.status:<4} {self.what}{fix}"


def ok(what: str) -> Check:
    return Check("ok", what)


def warn(what: str, fix: str = "") -> Check:
    return Check("warn", what, fix)


def fail(what: str, fix: str, code: int) -> Check:
    return Check("FAIL", what, fix, code)


def exit_code(checks: Iterable[Check]) -> int:
    return max((c.code for c in checks if c.status == "FAIL"), default=EXIT_OK)


# -- recipes ------------------------------------------------------------------------------


def recipes(paths: Iterable[Path]) -> tuple[list[Check], list[LoadedRecipe]]:
    """Each recipe validates (its schedule too: loading validates it)."""
    from .recipe import load_recipe

    checks, loaded = [], []
    for path in paths:
        try:
            recipe = load_recipe(path)
        except FleetError as exc:  # RecipeError: every problem as file:line
            checks.append(
                fail(f"recipe {path} does not validate:\n{exc}", "correct it", EXIT_USAGE)
            )
            continue
        loaded.append(recipe)
        schedule = getattr(recipe.recipe, "schedule", None)  # issue 14's `schedule:` section
        said = f"schedule {_schedule_text(schedule)}" if schedule is not None else "no schedule"
        checks.append(ok(f"recipe {recipe.name} ({path}) validates; {said}"))
    return checks, loaded


def _schedule_text(schedule: object) -> str:
    due_after = getattr(schedule, "due_after", None)
    if due_after is None:
        return "parses"
    return f"parses, next due {due_after(datetime.now(UTC)).isoformat(timespec='minutes')}"


def drivers_of(loaded: Iterable[LoadedRecipe]) -> set[str]:
    return {getattr(r.recipe, role).driver for r in loaded for role in ("source", "archive")}


# -- the machine: browser, display ----------------------------------------------------------


def browser(env: Mapping[str, str]) -> Check:
    """Chromium is there and launches, exactly as the web driver launches it."""
    from .drivers.web.browser import BrowserWontLaunch, probe

    fix = (
        "install Debian's Chromium (`apt-get install chromium`) or Playwright's "
        "(`python -m playwright install chromium`), or set FLEET_CHROMIUM to a Chromium binary"
    )
    try:
        path, version = probe(env)
    except BrowserWontLaunch as exc:
        return fail(f"browser {exc.path} does not launch: {exc}", fix, EXIT_SYSTEM)
    except FleetError as exc:  # BrowserNotFound
        return fail(f"browser: {exc}", fix, EXIT_SYSTEM)
    return ok(f"browser {path} launches (Chromium {version})")


def display(env: Mapping[str, str]) -> list[Check]:
    """A desktop recipe needs an X display now, or xvfb-run to make one; and xclip."""
    checks = []
    name = env.get("DISPLAY", "").strip()
    reachable, why = _x_display(name) if name else (False, "DISPLAY is not set")
    xvfb_run = shutil.which("xvfb-run", path=env.get("PATH"))
    if reachable:
        checks.append(ok(f"display {name} is reachable"))
    elif xvfb_run:
        checks.append(ok(f"no display here ({why}); xvfb-run ({xvfb_run}) can make one"))
    else:
        checks.append(
            fail(
                f"no display for desktop recipes ({why}) and no xvfb-run",
                "`apt-get install xvfb xauth`, and run desktop recipes under "
                '`xvfb-run -a -s "-screen 0 1280x1024x24"`',
                EXIT_SYSTEM,
            )
        )
    xclip = shutil.which("xclip", path=env.get("PATH"))
    if xclip:
        checks.append(ok(f"xclip ({xclip}) for the desktop clipboard"))
    else:
        checks.append(
            fail(
                "xclip is missing (desktop steps copy through it)",
                "`apt-get install xclip`",
                EXIT_SYSTEM,
            )
        )
    return checks


def _x_display(name: str) -> tuple[bool, str]:
    from Xlib import display as xdisplay
    from Xlib import error as xerror

    try:
        xdisplay.Display(name).close()
    except (xerror.DisplayError, OSError) as exc:
        return False, f"cannot open DISPLAY={name}: {exc}"
    return True, ""


# -- credentials ----------------------------------------------------------------------------


def keyring(
    env: Mapping[str, str], redactor: Redactor
) -> tuple[list[Check], CredentialStore | None]:
    """The backend opens (master key included) and is not a plaintext one."""
    from credentials import KeyringSettings, open_store
    from credentials.backends import secret_service

    from .errors import CredentialError

    settings = KeyringSettings.from_env(env)
    checks = []
    uses_file = settings.backend == "cryptfile" or (
        settings.backend == "auto" and secret_service(settings)[0] is None
    )
    if uses_file:
        if settings.key:
            checks.append(ok("keyring master key from FLEET_KEYRING_KEY"))
        elif settings.key_file.exists():
            checks.append(ok(f"keyring master key file {settings.key_file}"))
        else:
            checks.append(
                fail(
                    f"no keyring master key: FLEET_KEYRING_KEY is not set and there is no key "
                    f"file {settings.key_file}",
                    "`python runner.py credentials init` (or set FLEET_KEYRING_KEY), then "
                    "store the credentials with `python runner.py credentials set NAME`",
                    EXIT_USAGE,
                )
            )
            return checks, None
    try:
        store = open_store(env, redactor)
    except CredentialError as exc:
        checks.append(fail(f"credential store: {exc}", "see the message", EXIT_USAGE))
        return checks, None
    if store.plaintext:
        checks.append(
            warn(
                f"credential store {store.description} keeps passwords readable",
                "use FLEET_KEYRING_BACKEND=cryptfile or auto",
            )
        )
    else:
        checks.append(ok(f"credential store {store.description}"))
    return checks, store


def credentials_present(loaded: Iterable[LoadedRecipe], store: CredentialStore) -> list[Check]:
    """Every credential each recipe names is stored (looked up without decrypting)."""
    from .errors import CredentialError

    checks = []
    for recipe in loaded:
        for role in ("source", "archive"):
            name = getattr(recipe.recipe, role).credential
            where = f"credential {name!r} ({recipe.name} {role})"
            try:
                present = store.has(name)
            except CredentialError as exc:
                checks.append(fail(f"{where}: {exc}", "store it again", EXIT_USAGE))
                continue
            if present:
                checks.append(ok(f"{where} is stored"))
            else:
                checks.append(
                    fail(
                        f"{where} is not in {store.description}",
                        f"`python runner.py credentials set {name}`",
                        EXIT_USAGE,
                    )
                )
    return checks


def logins(
    loaded: Iterable[LoadedRecipe], store: CredentialStore, settings: Settings, redactor: Redactor
) -> list[Check]:
    """``--login``: each system whose credential is stored logs in with the recipe's steps."""
    from .pipeline.login_check import SYSTEMS, check_login

    checks = []
    for recipe in loaded:
        which = tuple(r for r in SYSTEMS if store.has(getattr(recipe.recipe, r).credential))
        for result in check_login(recipe, which, store, settings, redactor):
            where = f"login {result.recipe} {result.role} ({result.system})"
            if result.ok:
                checks.append(ok(f"{where}: {result.said}"))
            else:
                code = EXIT_SYSTEM if result.exit_code == EXIT_SYSTEM else EXIT_USAGE
                checks.append(
                    fail(
                        f"{where}: {result.said}",
                        f"check the system, or the credential (`python runner.py credentials "
                        f"set {result.credential}`)",
                        code,
                    )
                )
    return checks


# -- the ledger and the logs folder ---------------------------------------------------------


def ledger(settings: Settings) -> Check:
    """Reachable, writable (a write rolled back) and at this code's schema; not upgraded."""
    from sqlalchemy import make_url, text
    from sqlalchemy.exc import SQLAlchemyError

    from .ledger import migrations
    from .ledger.engine import connect

    url = make_url(settings.ledger_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        file = Path(url.database or "")
        if not file.exists():
            parent = _existing(file.parent)
            if os.access(parent, os.W_OK):
                return ok(f"ledger {file} not created yet; the first run creates it")
            return fail(
                f"ledger {file} cannot be created ({parent} is not writable)",
                f"make {parent} writable, or set FLEET_LEDGER_URL",
                EXIT_SYSTEM,
            )
    engine = connect(settings.ledger_url)
    try:
        try:
            migrations.check(engine)
        except migrations.LedgerVersionError as exc:
            return fail(f"ledger: {exc}", f"`python {migrations.UPGRADE_COMMAND}`", EXIT_USAGE)
        with engine.connect() as conn:
            transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE, the write lock
            try:
                conn.execute(text("UPDATE ledger_version SET version = version"))
            finally:
                transaction.rollback()
    except (FleetError, SQLAlchemyError, OSError) as exc:
        return fail(
            f"ledger {shown} is not usable: {exc}",
            "check that the database is reachable and writable (FLEET_LEDGER_URL)",
            EXIT_SYSTEM,
        )
    finally:
        engine.dispose()
    return ok(f"ledger {shown} is reachable, writable and at version {migrations.LATEST}")


def logs(settings: Settings, warn_free: int = WARN_FREE, fail_free: int = FAIL_FREE) -> Check:
    """The logs folder is writable (or can be made) and its disk has room."""
    folder = settings.logs_dir
    there = _existing(folder)
    try:
        if there == folder:
            with tempfile.TemporaryFile(dir=folder):
                pass
        elif not os.access(there, os.W_OK):
            raise PermissionError(f"{there} is not writable")
        free = shutil.disk_usage(there).free
    except OSError as exc:
        return fail(
            f"logs folder {folder} is not writable: {exc}",
            f"make {folder} writable, or set FLEET_LOGS_DIR",
            EXIT_SYSTEM,
        )
    said = f"logs folder {folder}: {free / GIB:.1f} GiB free"
    if free < fail_free:
        return fail(
            f"{said}, under {fail_free // MIB} MiB",
            "free space on that disk, or move FLEET_LOGS_DIR",
            EXIT_SYSTEM,
        )
    if free < warn_free:
        return warn(f"{said}, under {warn_free / GIB:.0f} GiB", "free space on that disk soon")
    return ok(f"{said}, writable")


def _existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
