"""The desktop driver: one X display per run, one session per system, attached to the
client when one of its windows is open, else started from `app.command`.

Screenshots never show a password: none is taken while a window a password was typed
into is still open. A client we started is ended (its whole process group) when the
session closes; a client we found running is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...childenv import child_env
from ...errors import SystemFailure
from ...recipe.steps import StepBase
from ..base import (
    Diagnosis,
    ScreenshotRefused,
    SessionConfig,
    StepContext,
    StepOutcome,
    screenshot_each,
)
from .errors import DisplayUnavailable

STOP_WAIT = 5.0  # seconds a client we started gets to end on SIGTERM


def connect(env: Mapping[str, str], config: SessionConfig) -> Any:
    """The display named by DISPLAY in ``env``; DisplayUnavailable saying how to get one."""
    screen = f"{config.spec.screen.width}x{config.spec.screen.height}"
    recipe = str(config.recipe.path)
    name = env.get("DISPLAY", "").strip()
    if not name:
        raise DisplayUnavailable(
            "the desktop driver needs an X display and DISPLAY is not set", recipe, screen
        )
    from Xlib import error

    from .display import Display

    try:
        return Display(name)
    except (error.DisplayError, OSError) as exc:
        raise DisplayUnavailable(
            f"cannot open the X display {name!r} ({exc})", recipe, screen
        ) from exc


class DesktopSession:
    """A legacy client on one display, for one system of a recipe."""

    def __init__(self, config: SessionConfig, env: Mapping[str, str]) -> None:
        from . import keys
        from .display import wait_until
        from .runner import StepRunner

        self.config = config
        self.env = env
        self.display = connect(env, config)
        self.process: subprocess.Popen[bytes] | None = None
        try:
            spec = config.spec
            width, height = self.display.screen_size()
            need = spec.screen
            if width < need.width or height < need.height:
                raise DisplayUnavailable(
                    f"the screen of {self.display.name} is {width}x{height}, smaller than "
                    f"the {need.width}x{need.height} {config.system} needs (`screen:`)",
                    str(config.recipe.path),
                    f"{need.width}x{need.height}",
                )
            keys.bind(self.display.name)
            self.runner = StepRunner(self.display, config, env)
            if not self._client_windows():
                self._start()
                found = wait_until(
                    lambda: True if self._client_windows() else None, spec.app.start_timeout
                )
                if not found:
                    code = self.process.poll() if self.process is not None else None
                    ended = f" (it exited with code {code})" if code is not None else ""
                    raise SystemFailure(
                        f"{config.system}: none of the windows {spec.app.windows} appeared "
                        f"within {spec.app.start_timeout:g}s of starting the client{ended}"
                    )
        except BaseException:
            self.close()
            raise

    def _client_windows(self) -> list[Any]:
        return [w for title in self.config.spec.app.windows for w in self.display.windows(title)]

    def _start(self) -> None:
        spec = self.config.spec
        if spec.app.command is None:
            raise SystemFailure(
                f"{self.config.system} is not running (none of the windows "
                f"{spec.app.windows} is open) and `app.command` is not set to start it"
            )
        command = [
            self.config.render(part, f"app.command[{i}]") for i, part in enumerate(spec.app.command)
        ]
        env = child_env({**self.env, "DISPLAY": self.display.name})
        try:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=self.config.recipe.path.parent,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: ended whole on close
            )
        except OSError as exc:
            raise SystemFailure(f"cannot start {self.config.system} ({command[0]}): {exc}") from exc
        self.config.emit("client_started", system=self.config.system, pid=self.process.pid)

    @property
    def location(self) -> str:
        return self.runner.location

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        return self.runner.run(steps, context)

    def is_logged_out(self) -> bool:
        return self.runner.is_logged_out()

    def screenshot(self, path: Path, target: Any = None) -> None:
        """A PNG of the whole screen; refused while a window holding a typed password is
        open (the client may show it, or its length)."""
        runner = self.runner
        open_secrets = [w for w in runner.secret_windows if self.display.is_open(w)]
        runner.secret_windows = set(open_secrets)
        if open_secrets:
            raise ScreenshotRefused(f"a password was typed into {open_secrets[0]}, still open")
        from .images import grab

        try:
            grab(self.display.name).save(path, format="PNG")
        except OSError as exc:
            raise ScreenshotRefused(f"the screenshot failed: {exc}") from exc

    def screenshot_rows(self, shots: Sequence[tuple[Path, Any]]) -> list[ScreenshotRefused | None]:
        return screenshot_each(self.screenshot, shots)

    def diagnose(self) -> Diagnosis | None:
        """What the screen showed where the last step ran (after it failed), for the
        author (``runner.py try``); None before any step."""
        from .inspect import diagnose

        if self.runner.step is None:
            return None
        step, context = self.runner.step
        return diagnose(self.runner, step, context.variables)

    def close(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_WAIT)
        with contextlib.suppress(Exception):  # noqa: BLE001 - the display may be gone already
            self.display.close()


class DesktopDriver:
    """Opens desktop sessions on the display the environment names."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self._sessions: list[DesktopSession] = []

    def open(self, config: SessionConfig) -> DesktopSession:
        session = DesktopSession(config, self.env)
        self._sessions.append(session)
        return session

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions.clear()
