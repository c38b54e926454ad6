"""The web steps that act on the page in place: navigate, type, click, wait, read."""

from __future__ import annotations

import contextlib
from urllib.parse import urldefrag

from playwright.sync_api import Locator
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ...errors import BusinessError, TransientError
from ...recipe.steps import extract
from .runner import Call, Scope, handles, url_of


@handles("goto")
def goto(call: Call) -> None:
    target = call.runner.absolute(call.render(call.args))
    if "#" in target and urldefrag(url_of(call.scope)).url == urldefrag(target).url:
        # A hash-only change would not reload: a retry would look at the same error page
        # again. `goto` always loads.
        call.scope.goto("about:blank", timeout=call.ms())
    response = call.scope.goto(target, timeout=call.ms(), wait_until="load")
    call.arrived(response, target)


# For fields present but hidden on purpose (`state: attached`): set as the page's own
# scripts would, through the element's own setter (frameworks watch it), then the events.
_SET_VALUE = """(element, value) => {
    const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(element), 'value');
    if (setter && setter.set) { setter.set.call(element, value); } else { element.value = value; }
    element.dispatchEvent(new Event('input', {bubbles: true}));
    element.dispatchEvent(new Event('change', {bubbles: true}));
}"""
_SET_CHECKED = """(element, checked) => {
    if (element.checked === checked) return;
    element.checked = checked;
    element.dispatchEvent(new Event('input', {bubbles: true}));
    element.dispatchEvent(new Event('change', {bubbles: true}));
}"""


def attached(call: Call, selector: str) -> Locator:
    """The one element ``selector`` names, waited for as present (visible or not)."""
    target = call.scope.locator(selector)
    target.wait_for(state="attached", timeout=call.ms())
    return target


@handles("fill")
def fill(call: Call) -> None:
    args = call.args
    pairs = args.fields.items() if args.fields is not None else [(args.selector, args.value)]
    for selector, value in pairs:
        selector, text = call.render(selector), call.render(value)
        if args.state == "attached":
            attached(call, selector).evaluate(_SET_VALUE, text)
        else:
            call.scope.locator(selector).fill(text, timeout=call.ms())


@handles("click")
def click(call: Call) -> None:
    args = call.args
    target = call.scope.locator(call.render(args.selector))
    timeout = call.ms(args.timeout)
    if args.optional:
        if not present(call.scope, target, timeout):
            return  # not in the page as it loaded: one look, not a wait
        try:
            target.first.wait_for(state="visible", timeout=timeout)
        except PlaywrightTimeout:
            return  # there but never shown this time: that is what optional means
        target = target.first
    if args.navigates:
        with call.scope.expect_navigation(timeout=timeout) as navigation:
            target.click(timeout=timeout)
        call.arrived(navigation.value, url_of(call.scope))
    else:
        target.click(timeout=timeout)


def present(scope: Scope, target: Locator, timeout: float) -> bool:
    """Is ``target`` in the page (or frame) once it has loaded? One look: an optional
    element absent from a loaded page costs that, not its timeout. (One that a script
    adds later is waited for by a page condition, `when: {selector, timeout}`.) A page
    still loading gets the timeout to finish, then the look."""
    with contextlib.suppress(PlaywrightTimeout):
        scope.wait_for_load_state("load", timeout=timeout)
    return target.count() > 0


def set_checked(call: Call, checked: bool) -> None:
    args = call.args
    selector = call.render(args.selector)
    if args.state == "attached":
        attached(call, selector).evaluate(_SET_CHECKED, checked)
    else:
        call.scope.locator(selector).set_checked(checked, timeout=call.ms())


@handles("check")
def check(call: Call) -> None:
    set_checked(call, True)


@handles("uncheck")
def uncheck(call: Call) -> None:
    set_checked(call, False)


def choices(call: Call, choice: str | list[str]) -> str | list[str]:
    """One option as written (even empty), or the items of a list, rendered, empty
    ones dropped (a tag list whose template gave nothing)."""
    if isinstance(choice, str):
        return call.render(choice)
    return [text for text in (call.render(item) for item in choice) if text]


@handles("select")
def select(call: Call) -> None:
    args = call.args
    target = call.scope.locator(call.render(args.selector))
    if args.value is not None:
        target.select_option(value=choices(call, args.value), timeout=call.ms())
    else:
        target.select_option(label=choices(call, args.label), timeout=call.ms())


@handles("press")
def press(call: Call) -> None:
    args = call.args
    target = call.scope.locator(call.render(args.selector))
    if args.navigates:
        with call.scope.expect_navigation(timeout=call.ms()) as navigation:
            target.press(args.key, timeout=call.ms())
        call.arrived(navigation.value, url_of(call.scope))
    else:
        target.press(args.key, timeout=call.ms())


@handles("wait_for")
def wait_for(call: Call) -> None:
    args = call.args
    selector = call.render(args.selector)
    try:
        call.scope.locator(selector).first.wait_for(state=args.state, timeout=call.ms(args.timeout))
    except PlaywrightTimeout as exc:
        raise call.failed(
            f"{selector!r} did not become {args.state} within {call.ms(args.timeout) / 1000:g}s"
        ) from exc


@handles("expect")
def expect(call: Call) -> None:
    args = call.args
    text = call.render(args.text) if args.text is not None else None
    selector = call.render(args.selector) if args.selector is not None else None
    scope = call.scope
    if selector and text:
        target = scope.locator(selector).filter(has_text=text)
        wanted = f"{selector!r} with {text!r}"
    elif selector:
        target, wanted = scope.locator(selector), repr(selector)
    else:
        target, wanted = scope.get_by_text(text or ""), f"text {text!r}"
    try:
        target.first.wait_for(state=args.state, timeout=call.ms(args.timeout))
    except PlaywrightTimeout as exc:
        seconds = call.ms(args.timeout) / 1000
        if args.state == "hidden":
            raise call.failed(
                f"expected {wanted} gone from the page, still shown after {seconds:g}s"
            ) from exc
        raise call.failed(f"expected {wanted} on the page, not there after {seconds:g}s") from exc


@handles("frame")
def frame(call: Call) -> None:
    args = call.args
    handle = call.scope.locator(call.render(args.selector)).first.element_handle(timeout=call.ms())
    inner = handle.content_frame()
    if inner is None:
        raise call.failed(f"{args.selector!r} is not an <iframe> or <frame>")
    inner.wait_for_load_state("load", timeout=call.ms())
    call.run_nested(args.steps, inner)


@handles("read")
def read(call: Call) -> None:
    args = call.args
    target = call.scope.locator(call.render(args.selector))
    if args.optional and target.count() == 0:
        call.variables[args.into] = ""
        return
    target.wait_for(state="attached", timeout=call.ms(args.timeout))
    value = value_of(call, target, args.attr, args.property)
    text = "" if value is None else " ".join(value.split())
    if args.pattern is not None:
        kept = extract(args.pattern, text)
        if kept is None:
            if not args.optional:
                raise call.failed(
                    f"pattern {args.pattern!r} does not match the value read: {text!r}"
                )
            kept = ""
        text = kept
    call.variables[args.into] = text


def value_of(call: Call, target: Locator, attr: str | None, prop: str | None) -> str | None:
    """An element's text, or one of its attributes (as written) or DOM properties."""
    if prop is not None:
        value = target.evaluate("(element, name) => element[name]", prop)
        return None if value is None else str(value)
    if attr is not None:
        return target.get_attribute(attr, timeout=call.ms())
    return target.inner_text(timeout=call.ms())


@handles("reject_if")
def reject_if(call: Call) -> None:
    args = call.args
    target = call.scope.locator(call.render(args.selector))
    if args.timeout:
        try:
            target.first.wait_for(state="attached", timeout=args.timeout * 1000)
        except PlaywrightTimeout:
            return
    if target.count() == 0:
        return
    reason = " ".join(target.first.inner_text(timeout=call.ms()).split())
    raise BusinessError(f"{call.runner.system} refused: {reason or args.selector}")


@handles("retry_if")
def retry_if(call: Call) -> None:
    target = call.scope.locator(call.render(call.args.selector))
    if target.count() == 0:
        return
    reason = " ".join(target.first.inner_text(timeout=call.ms()).split())
    raise TransientError(
        f"{call.where}: {call.runner.system} reports a temporary problem at "
        f"{url_of(call.scope)}: {reason or call.args.selector}"
    )
