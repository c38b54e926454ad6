"""Files a client saves through its Save-As dialog: the `download` step, and the table
source ``{save_dialog: ...}``.

The helper waits for the dialog, reads the suggested name (ctrl+a, ctrl+c), types a
path in our staging folder and reads it back (what Enter will save), lets the dialog's
autocompletion settle (an Enter too soon only closes the completion list), presses
Enter (again, a bounded number of times, while the dialog stays), waits for the `done`
message and dismisses it, then waits until the file is complete: its size stable and
no process holding it open (/proc/*/fd). A legacy client writes part of a file, says
"saved", and writes the rest later: we never take a half-written file.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ...errors import UnexpectedPage
from ...files import StagedFile, check_received, safe_filename, stage_via
from . import clipboard, keys
from .display import POLL, Window, wait_until
from .errors import WindowNotFound
from .runner import Call, handles

ENTER_ATTEMPTS = 3
ENTER_WAIT = 1.5  # seconds for the dialog to go after an Enter
COPY_ATTEMPTS = 3
MARKER = "fleet-clipboard-marker-"  # put on the clipboard before a copy
COPY_WAIT = 1.0  # seconds for a copy to reach the clipboard
STABLE_POLLS = 3  # the same size this many looks in a row, and nobody holding it
MESSAGE_WAIT = 2.0  # seconds for the client's "saved" message to go once dismissed


def _changed(env: Mapping[str, str], marker: str) -> str | None:
    """The clipboard's text once it is no longer ``marker`` (nor an older marker, which
    an xclip still owning the selection can serve for a moment)."""
    text = clipboard.get(env).strip()
    return text if text != marker and not text.startswith(MARKER) else None


def field_text(call: Call, window: Window) -> str | None:
    """The text of ``window``'s focused field (ctrl+a, ctrl+c), or None when nothing was
    copied. A copy pressed just as the window got the focus back can be lost (measured
    under load): tried COPY_ATTEMPTS times while the window keeps the focus."""
    runner = call.runner
    copied: str | None = None
    for _ in range(COPY_ATTEMPTS):
        marker = f"{MARKER}{time.monotonic_ns()}"
        clipboard.put(marker, runner.env)
        keys.press("ctrl+a")
        keys.press("ctrl+c")
        runner.settle(call, window)
        copied = wait_until(partial(_changed, runner.env, marker), COPY_WAIT)
        if copied or not runner.display.has_focus(window):
            break
    return copied


@dataclass(frozen=True)
class Saved:
    path: Path
    suggested: str


def holder(path: Path) -> str | None:
    """The process that has ``path`` open (a file descriptor in /proc/*/fd), as
    ``pid 123 (name)``; None when none has."""
    target = os.path.realpath(path)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        folder = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(folder)
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                if os.readlink(f"{folder}/{fd}") == target:
                    return f"pid {pid} ({_process_name(pid)})"
            except OSError:
                continue
    return None


def _process_name(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return "?"


def wait_complete(path: Path, deadline: float) -> str | None:
    """Wait until the file exists, its size is stable and no process holds it open.
    None once it is complete; else what was wrong at the deadline."""
    sizes: list[int] = []
    problem = "it was never written"
    while time.monotonic() < deadline:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            sizes.clear()
            problem = "it was never written"
        if sizes:
            stable = len(sizes) >= STABLE_POLLS and len(set(sizes[-STABLE_POLLS:])) == 1
            held = holder(path) if stable else None
            if stable and held is None:
                return None
            problem = (
                f"{held} still holds it open at {sizes[-1]} bytes"
                if held
                else f"its size was still changing ({sizes[-1]} bytes)"
            )
        time.sleep(POLL)  # polling the file system; bounded by the deadline
    return problem


def save_through_dialog(
    call: Call, folder: Path, dialog: str, done: str | None, timeout: float, settle: float
) -> Saved:
    """Let the client save into ``folder`` through its dialog; the complete file."""
    runner = call.runner
    deadline = time.monotonic() + timeout
    window = runner.find_window(call, dialog)
    runner.focus(call, window)
    # The suggested name: the dialog's name field holds it, selected.
    suggested = field_text(call, window)
    if not suggested:
        runner.kept_focus(call, window, "copying its suggested file name")
        raise call.failed(f"the dialog {dialog!r} offered no file name to copy")
    name = safe_filename(suggested, "download")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.unlink(missing_ok=True)
    typed = str(target)
    runner.focus(call, window)
    keys.press("ctrl+a")
    keys.press("backspace")  # a paste on X11 does not replace the selection: clear it
    if keys.typeable(typed):
        keys.write(typed)
    else:
        clipboard.put(typed, runner.env)
        keys.press("ctrl+v")
    runner.settle(call, window)
    # Part of the path may have gone to a window that took the focus meanwhile.
    runner.kept_focus(call, window, "typing the path to save to")
    # Enter saves what the field holds: read it back. Keys that went elsewhere (a notice
    # that took the focus and gave it back) would save the file somewhere else.
    held = field_text(call, window)
    if held != typed:
        runner.kept_focus(call, window, "typing the path to save to")
        raise call.failed(
            f"the dialog {dialog!r} holds {held!r}, not the path typed ({typed!r}); "
            f"open now: {runner.open_titles()}"
        )
    time.sleep(settle)  # the autocompletion's own delay: an earlier Enter is swallowed
    for _ in range(ENTER_ATTEMPTS):
        if not runner.display.has_focus(window):
            runner.focus(call, window)
        keys.press("enter")
        # Once the client has handled the Enter, the dialog is gone, or the Enter was
        # swallowed (by the completion list) and another is due.
        runner.settle(call, window)
        gone = wait_until(lambda: True if not runner.display.is_open(window) else None, ENTER_WAIT)
        if gone:
            break
    else:
        raise call.failed(
            f"the dialog {dialog!r} stayed open after {ENTER_ATTEMPTS} Enters; open now: "
            f"{runner.open_titles()}",
            WindowNotFound,
        )
    if done is not None:
        left = max(0.1, deadline - time.monotonic())
        message = runner.wait_window(call, done, left)
        if message is None:
            raise call.failed(
                f"no {done!r} message within {timeout:g}s of saving {name!r}; open now: "
                f"{runner.open_titles()}",
                WindowNotFound,
            )
        # The client says it saved: the file is there (if only in part), or it went
        # somewhere else (a path that did not reach the dialog whole): say so now.
        if not wait_until(lambda: True if target.exists() else None, MESSAGE_WAIT):
            dismiss_message(call, message, done)
            raise call.failed(
                f"the client said it saved ({done!r}), but nothing is at {target}: the path "
                "typed into the dialog did not reach it whole, so the file went elsewhere"
            )
        dismiss_message(call, message, done)
    problem = wait_complete(target, deadline)
    if problem is not None:
        raise call.failed(
            f"{target} was not complete (written, size stable, closed) within "
            f"{timeout:g}s: {problem}"
        )
    return Saved(target, suggested)


def dismiss_message(call: Call, message: Window, title: str) -> None:
    """Close the client's "saved" message (the client may finish the file only then):
    politely (WM_DELETE_WINDOW), else with Enter on it; it must go."""
    runner = call.runner

    def gone() -> bool | None:
        return True if not runner.display.is_open(message) else None

    runner.display.close_window(message)
    runner.settle(call, message)
    if wait_until(gone, MESSAGE_WAIT):
        return
    runner.focus(call, message)
    keys.press("enter")
    runner.settle(call, message)
    if not wait_until(gone, MESSAGE_WAIT):
        raise call.failed(
            f"the message {title!r} did not close (asked to close, then Enter); open now: "
            f"{runner.open_titles()}",
            WindowNotFound,
        )


@handles("download")
def download(call: Call) -> None:
    staging = call.context.staging()
    args = call.args
    runner = call.runner
    timeout = args.timeout or runner.recipe.recipe.timeouts.download
    saved = save_through_dialog(
        call, staging / ".incoming", args.dialog, args.done, timeout, args.settle
    )
    name = safe_filename(saved.suggested, safe_filename(call.context.key or "download", "download"))
    staged: StagedFile = stage_via(
        lambda partial: shutil.move(saved.path, partial), staging / name, saved.suggested
    )
    max_bytes = int(runner.recipe.recipe.limits.max_file_mb * 1024 * 1024)
    try:
        check_received(staged, max_bytes)
    except UnexpectedPage as exc:
        raise UnexpectedPage(f"{call.where}: {exc}") from exc
    call.outcome.downloaded = staged
    runner.config.emit(
        "downloaded",
        key=call.context.key,
        system=runner.system,
        window=runner.location,
        filename=staged.filename,
        size=staged.size,
        sha256=staged.sha256,
    )
