"""The desktop steps that act in place: windows, keys, menus, images, reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import BusinessError, RecipeRuntimeError
from . import clipboard, images, keys, ocr
from .display import wait_until
from .errors import ImageNotFound, WindowNotFound
from .runner import MENU_WAIT, Call, handles, pattern_kept, retry_later

CLIPBOARD_WAIT = 2.0  # seconds for a copy to reach the clipboard


@handles("focus")
def focus(call: Call) -> None:
    args = call.args
    window = call.runner.find_window(call, call.render(args.title), args.timeout)
    call.runner.focus(call, window)


@handles("close")
def close(call: Call) -> None:
    for pattern in call.args.titles:
        for window in call.runner.display.windows(call.render(pattern)):
            call.runner.close(call, window)


@handles("wait_window")
def wait_window(call: Call) -> None:
    args = call.args
    title = call.render(args.title)
    if args.state == "open":
        call.runner.find_window(call, title, args.timeout)
        return
    seconds = call.seconds(args.timeout)
    display = call.runner.display
    if wait_until(lambda: True if not display.windows(title) else None, seconds) is None:
        raise call.failed(f"the window {title!r} did not close within {seconds:g}s", WindowNotFound)


def password_of(call: Call) -> str | None:
    credential = call.variables.get("credential")
    return getattr(credential, "password", None) if credential is not None else None


@handles("type")
def type_text(call: Call) -> None:
    args = call.args
    text = call.render(args.text)
    is_password = bool(text) and text == password_of(call)
    if not keys.typeable(text) and is_password:
        # The clipboard is readable by every program on the display: never a password.
        raise RecipeRuntimeError(
            call.where,
            "the password has characters the keyboard cannot type (non-ASCII), and a "
            "password is never put on the clipboard; use an ASCII password",
        )
    window = call.runner.keys_to(call, args.window)
    if is_password:
        # Marked before the first key: a screenshot must not catch half of it either.
        call.runner.secret_windows.add(window)
    if keys.typeable(text):
        keys.write(text)
    else:
        clipboard.put(text, call.runner.env)
        keys.press("ctrl+v")
    call.runner.settle(call, window)
    # Typing opens and closes nothing: a focus elsewhere now was taken while we typed.
    call.runner.kept_focus(call, window, "typing")


@handles("press")
def press(call: Call) -> None:
    args = call.args
    window = call.runner.keys_to(call, args.window)
    for _ in range(args.times):
        for chord in args.keys:
            keys.press(chord)
    call.runner.settle(call, window)


@handles("menu")
def menu(call: Call) -> None:
    args = call.args
    runner = call.runner
    window = runner.keys_to(call, args.window)
    before = runner.display.popups()
    keys.press(args.keys[0])
    seconds = args.timeout or MENU_WAIT
    if wait_until(lambda: True if runner.display.popups() - before else None, seconds) is None:
        raise call.failed(f"{args.keys[0]!r} posted no menu within {seconds:g}s", WindowNotFound)
    for chord in args.keys[1:]:
        keys.press(chord)
    runner.settle(call, window)


def image_failed(call: Call, image: str, problem: str) -> ImageNotFound:
    best = call.runner.best
    return ImageNotFound(
        call.where,
        call.step.kind,
        f"{problem} (best match score {best:.3f})",
        call.runner.location,
        best,
    )


@handles("click")
def click(call: Call) -> None:
    args = call.args
    seconds = call.seconds(args.timeout)
    match = call.runner.wait_image(call, args.image, True, args.confidence, args.region, seconds)
    if match is None:
        if args.optional:
            return
        raise image_failed(
            call,
            args.image,
            f"image {args.image!r} not seen (confidence {args.confidence:g}) within {seconds:g}s",
        )
    x, y = match.centre
    keys.click(x + args.offset[0], y + args.offset[1], args.button, args.clicks)
    clicked = call.runner.display.window_at(x + args.offset[0], y + args.offset[1])
    if clicked is not None:
        call.runner.settle(call, clicked)


@handles("wait_image")
def wait_image(call: Call) -> None:
    args = call.args
    seconds = call.seconds(args.timeout)
    visible = args.state == "visible"
    match = call.runner.wait_image(call, args.image, visible, args.confidence, args.region, seconds)
    if match is None:
        wanted = "seen" if visible else "gone"
        raise image_failed(
            call,
            args.image,
            f"image {args.image!r} not {wanted} (confidence {args.confidence:g}) "
            f"within {seconds:g}s",
        )


def copied_text(call: Call) -> str:
    """The clipboard's text, as the last copy left it."""
    return clipboard.get(call.runner.env)


def ocr_text(call: Call, window_title: str | None, region: list[int] | None) -> str:
    runner = call.runner
    if region is None:
        window = (
            runner.find_window(call, call.render(window_title))
            if window_title is not None
            else runner.current
        )
        if window is not None:
            region = list(runner.display.geometry(window))
    if runner.secret_windows and any(runner.display.is_open(w) for w in runner.secret_windows):
        raise call.failed("no OCR while a window holding a typed password is open")
    return ocr.read_text(images.grab(runner.display.name, region), runner.env)


@handles("read")
def read(call: Call) -> None:
    args = call.args
    runner = call.runner
    text: str | None
    if args.source == "clipboard":
        text = copied_text(call)
    elif args.source == "file":
        path = Path(call.render(args.file))
        if not path.is_absolute():
            path = runner.folder / path
        try:
            text = path.read_text(encoding=args.encoding)
        except FileNotFoundError:
            text = None
    elif args.source == "title":
        if args.window is not None:
            text = runner.find_window(call, call.render(args.window)).title
        else:
            text = runner.display.title_of(runner.current) if runner.current else None
    else:
        text = ocr_text(call, args.window, args.region)
    if text is None:
        if not args.optional:
            raise call.failed(f"nothing to read from the {args.source}")
        text = ""
    value = " ".join(text.split()) if args.source != "file" else text.strip()
    call.variables[args.into] = pattern_kept(call, args.pattern, value, args.optional)


def _reason(call: Call, target: str) -> str:
    return target if target.startswith("image:") else f"the window {target!r} is open"


def _shown(call: Call) -> str | None:
    """What a `reject_if` / `retry_if` found (its target, looked for up to its timeout),
    said for a person; None when it is not there."""
    args: Any = call.args
    target = call.render(args.target)
    runner = call.runner
    found = runner.present(target) or (
        args.timeout > 0
        and bool(wait_until(lambda: True if runner.present(target) else None, args.timeout))
    )
    return _reason(call, target) if found else None


@handles("reject_if")
def reject_if(call: Call) -> None:
    shown = _shown(call)
    if shown is not None:
        raise BusinessError(f"{call.runner.system} refused: {shown}")


@handles("retry_if")
def retry_if(call: Call) -> None:
    shown = _shown(call)
    if shown is not None:
        raise retry_later(call, shown)
