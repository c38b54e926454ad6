"""The web `table` step: read rows across pages, resumable where a retry left off."""

from __future__ import annotations

import re
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
        rows_found = found.locator(args.rows)
        elements = rows_found.all()
        read = _read_plain(rows_found, len(elements), args.fields)
        rows = [
            {
                name: _field(call, row, name, spec, f"row {i} of page {page_number}", read[i - 1])
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


def _field(
    call: Call,
    row: Locator,
    name: str,
    spec: FieldSpec,
    where: str,
    read: dict[str, list[Any]] | None,
) -> str | None:
    # Read with the page's other plain-CSS fields (``_read_plain``), else one look per
    # field and row, which reads the value too.
    found = read.get(name) if read is not None else None
    if found is None:
        found = _values(row.locator(spec.selector), spec.attr, spec.property)
    if not found:
        if spec.optional:
            return None
        raise call.failed(f"{where} has no field {name!r} ({spec.selector!r})")
    value = found[0]
    return None if value is None else " ".join(str(value).split())


# Playwright's own selector syntax, which the DOM's querySelector does not read alike:
# engines (text=, xpath=, css:light=, internal:...), chaining (>>), XPath and text
# shorthands, Playwright's pseudo-classes, and :scope (Playwright's scoped query matches
# the row itself with it; the DOM's only the row's descendants).
_PLAYWRIGHT_ONLY = re.compile(
    r">>|^\s*[\w:-]+=|^\s*(//|\.\.|[\"'])"
    r"|:(has-text|text|text-is|text-matches|visible|nth-match|right-of|left-of|above|below"
    r"|near|scope)\b"
)


def plain_css(selector: str) -> bool:
    """Does ``selector`` mean the same to the DOM's querySelector as to Playwright?"""
    return _PLAYWRIGHT_ONLY.search(selector) is None


def _read_plain(
    rows: Locator, count: int, fields: dict[str, FieldSpec]
) -> list[dict[str, list[Any]] | None]:
    """The plain-CSS fields of every row of the page in one round trip: per row, each
    field's match (``[value]`` or ``[]``), or None where the row must be read field by
    field (a shadow root in it, which Playwright's CSS pierces and the DOM's does not).
    Rows times fields of looks made a listing page cost more than its documents' uploads.
    """
    plain = [
        [name, spec.selector, spec.attr, spec.property]
        for name, spec in fields.items()
        if plain_css(spec.selector)
    ]
    if not plain or not count:
        return [None] * count
    read: list[dict[str, list[Any]] | None] = rows.evaluate_all(_ROW_FIELDS_JS, plain)
    if len(read) != count:  # the page changed between the two looks: field by field
        return [None] * count
    return read


# Per row: {name: [value] | []} for the fields the DOM reads as Playwright does (a field
# it cannot, left out: read by Playwright), or null for a row holding a shadow root.
# The first match, as Playwright's row.locator(selector) would give it first.
_ROW_FIELDS_JS = """(rows, fields) => rows.map(row => {
  if ([row, ...row.querySelectorAll('*')].some(e => e.shadowRoot)) return null;
  const read = {};
  for (const [name, selector, attr, prop] of fields) {
    let e;
    try { e = row.querySelector(selector); } catch (error) { continue; }
    if (!e) { read[name] = []; continue; }
    if (prop !== null) read[name] = [e[prop]];
    else if (attr !== null) read[name] = [e.getAttribute(attr)];
    else if (e instanceof HTMLElement) read[name] = [e.innerText];
  }
  return read;
})"""


def _values(target: Locator, attr: str | None, prop: str | None) -> list[Any]:
    """Each match's text, attribute (as written) or DOM property, in one round trip."""
    if prop is not None:
        return target.evaluate_all("(all, name) => all.map(element => element[name])", prop)
    if attr is not None:
        return target.evaluate_all("(all, name) => all.map(e => e.getAttribute(name))", attr)
    return list(target.all_inner_texts())
