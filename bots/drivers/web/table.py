"""The web `table` step: read rows across pages, resumable where a retry left off."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from playwright.sync_api import Locator

from ..base import TableCursor
from .runner import Call, handles, url_of
from .schema import FieldSpec


@handles("table")
def table(call: Call) -> None:
    args = call.args
    scope = call.scope
    context = call.context
    if context.cursor is None:
        context.cursor = TableCursor()
    cursor = context.cursor
    if cursor.next_url:  # an earlier attempt got this far: carry on from there
        _next_page(call, cursor.next_url)
    while not cursor.done:
        if cursor.pages >= args.max_pages:
            raise call.failed(f"still a next page after max_pages={args.max_pages}")
        found = scope.locator(args.selector).first
        found.wait_for(state="attached", timeout=call.ms())
        page_number = cursor.pages + 1
        elements = found.locator(args.rows).all()
        rows = [
            {
                name: _field(call, row, name, spec, f"row {i} of page {page_number}")
                for name, spec in args.fields.items()
            }
            for i, row in enumerate(elements, start=1)
        ]
        control = scope.locator(args.next) if args.next else None
        has_next = control is not None and control.count() > 0
        href = (
            control.first.get_attribute("href", timeout=call.ms())
            if control is not None and has_next
            else None
        )
        # The page is read whole before the cursor moves: a failure cannot lose rows.
        cursor.rows.extend(rows)
        call.outcome.rows.extend(rows)
        cursor.pages = page_number
        if context.on_rows is not None:
            context.on_rows(rows, elements)
        call.runner.config.emit(
            "table_page",
            system=call.runner.system,
            phase=context.phase,
            page=page_number,
            rows=len(rows),
            url=url_of(scope),
        )
        if control is None or not has_next:
            cursor.done, cursor.next_url = True, None
        elif href and not href.startswith(("javascript:", "#")):
            # A real link: following it is immune to click/navigation races, and a
            # retry can resume right here.
            cursor.next_url = urljoin(scope.url, href)
            _next_page(call, cursor.next_url)
        else:
            cursor.next_url = None
            with scope.expect_navigation(timeout=call.ms()) as navigation:
                control.first.click(timeout=call.ms())
            call.arrived(navigation.value, url_of(scope))


def _next_page(call: Call, url: str) -> None:
    response = call.scope.goto(url, timeout=call.ms(), wait_until="load")
    call.arrived(response, url)
    call.runner.config.on_success()


def _field(call: Call, row: Locator, name: str, spec: FieldSpec, where: str) -> str | None:
    # One look per field and row, which reads the value too: a listing page has rows
    # times fields of these, and an optional field that is absent costs no more.
    found = _values(row.locator(spec.selector), spec.attr, spec.property)
    if not found:
        if spec.optional:
            return None
        raise call.failed(f"{where} has no field {name!r} ({spec.selector!r})")
    value = found[0]
    return None if value is None else " ".join(str(value).split())


def _values(target: Locator, attr: str | None, prop: str | None) -> list[Any]:
    """Each match's text, attribute (as written) or DOM property, in one round trip."""
    if prop is not None:
        return target.evaluate_all("(all, name) => all.map(element => element[name])", prop)
    if attr is not None:
        return target.evaluate_all("(all, name) => all.map(e => e.getAttribute(name))", attr)
    return list(target.all_inner_texts())
