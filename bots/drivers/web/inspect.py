"""Looking at a page for a recipe's author (``runner.py try`` and ``explain``): what a
step's selectors match, what the page showed when one matched nothing, why a matched
element is not visible or not enabled, and selectors for what the author probably meant.

Nothing here runs in a capture: only a traced session (``SessionConfig.trace``) and
``explain`` call it. Element descriptions never carry what a text field holds (a
username, a password): only its tag, id, classes, name and type.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import ElementHandle, Locator, Page
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Frame as PwFrame

from ...recipe.steps import PageCondition, StepBase
from ..base import Candidate, Diagnosis, Explanation, Match, as_shown
from .runner import Scope, first_line, url_of

NEAR_CHARS = 300
ALIKE = 0.75  # a name this much like the one a selector asks for is probably a typo of it
CLOSEST_SHOWN = 5  # elements that nearly match, or that match, shown per selector

# Shared by the scripts below: an element in a few words, its text, its ARIA role and
# accessible name (the common cases of the HTML-AAM mapping, enough to name a control).
_JS_COMMON = r"""
const norm = s => (s || '').replace(/\s+/g, ' ').trim();
const isButtonInput = e => e.tagName === 'INPUT' && /^(submit|button|reset|image)$/i.test(e.type);
const isField = e => ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.tagName) && !isButtonInput(e);
const textOf = e => isButtonInput(e) ? norm(e.value)
  : (isField(e) ? '' : norm(e.innerText ?? e.textContent));
const short = (s, n) => s.length > n ? s.slice(0, n) + '…' : s;
// Drawn by the browser: what a closed <details> holds, or content-visibility: hidden
// hides, keeps its box and styles but is not drawn (and Playwright calls it not visible).
const drawn = e => !e.checkVisibility || e.checkVisibility();
const describe = e => {
  let s = e.tagName.toLowerCase();
  if (e.id) s += '#' + e.id;
  const classes = [...e.classList].slice(0, 2);
  if (classes.length) s += '.' + classes.join('.');
  for (const a of ['name', 'type']) if (e.getAttribute(a)) s += `[${a}=${e.getAttribute(a)}]`;
  const text = short(textOf(e), 40);
  return text ? `${s} "${text}"` : s;
};
const roleOf = e => {
  const explicit = (e.getAttribute('role') || '').split(' ')[0];
  if (explicit) return explicit;
  const tag = e.tagName.toLowerCase(), type = (e.getAttribute('type') || 'text').toLowerCase();
  if (tag === 'a' || tag === 'area') return e.hasAttribute('href') ? 'link' : '';
  if (tag === 'button' || isButtonInput(e)) return 'button';
  if (tag === 'input') return ({checkbox: 'checkbox', radio: 'radio', range: 'slider',
      number: 'spinbutton', search: 'searchbox', hidden: '', file: ''})[type] ?? 'textbox';
  if (tag === 'select') return e.multiple || e.size > 1 ? 'listbox' : 'combobox';
  return ({textarea: 'textbox', table: 'table', tr: 'row', td: 'cell', th: 'columnheader',
      img: e.getAttribute('alt') === '' ? 'presentation' : 'img', form: 'form', nav: 'navigation',
      h1: 'heading', h2: 'heading', h3: 'heading', h4: 'heading', ul: 'list', ol: 'list',
      li: 'listitem', option: 'option', dialog: 'dialog', iframe: 'iframe'})[tag] || '';
};
const labelOf = e => {
  if (e.labels && e.labels.length) return norm(e.labels[0].innerText);
  return '';
};
const nameOf = e => {
  const aria = e.getAttribute('aria-label');
  if (aria) return norm(aria);
  const by = e.getAttribute('aria-labelledby');
  if (by) {
    const named = by.split(/\s+/).map(id => document.getElementById(id)?.innerText || '');
    return norm(named.join(' '));
  }
  if (isField(e)) {
    return labelOf(e) || norm(e.getAttribute('title') || e.getAttribute('placeholder') || '');
  }
  if (e.tagName === 'IMG') return norm(e.getAttribute('alt') || e.getAttribute('title') || '');
  return textOf(e) || norm(e.getAttribute('title') || '');
};
"""

_DESCRIBE = "e => {" + _JS_COMMON + "return describe(e); }"

# Every element of the frame scored by how many parts of the selector it has; the best
# ``limit`` (most parts, visible first, then document order).
_CLOSEST = (
    "([parts, wanted, limit]) => {"
    + _JS_COMMON
    + r"""
  const has = (e, p) => {
    try {
      if (p.kind === 'css') return e.matches(p.value);
      if (p.kind === 'role') return roleOf(e) === p.value;
      const text = textOf(e), want = norm(p.value);
      if (p.exact) return text === want;
      // Not every ancestor: an element whose text is mostly the text looked for.
      return text.toLowerCase().includes(want.toLowerCase()) && text.length <= 2 * want.length + 20;
    } catch (err) { return false; }
  };
  const scored = [];
  const all = document.body ? document.body.querySelectorAll('*') : [];
  for (let i = 0; i < all.length && i < 50000; i++) {
    const e = all[i];
    const hits = parts.map((p, n) => has(e, p) ? n : -1).filter(n => n >= 0);
    if (!hits.length) continue;
    const kind = w => { try { return e.matches(w); } catch (err) { return false; } };
    const bonus = wanted.some(kind) ? 0.5 : 0;
    const box = e.getBoundingClientRect();
    const visible = box.width > 0 && box.height > 0
      && getComputedStyle(e).visibility !== 'hidden' && drawn(e);
    scored.push({i, score: hits.length + bonus, visible, hits, text: describe(e),
                 around: short(norm(e.parentElement ? e.parentElement.innerText : ''), 300)});
  }
  scored.sort((a, b) => b.score - a.score || (b.visible - a.visible) || a.i - b.i);
  return scored.slice(0, limit);
}"""
)

# Why an element is, or is not, something a step can act on.
_STATE = (
    "e => {"
    + _JS_COMMON
    + r"""
  const why = [];
  let hidden = false;
  for (let a = e; a; a = a.parentElement) {
    const style = getComputedStyle(a);
    const who = a === e ? 'it' : `its ancestor ${describe(a)}`;
    if (style.display === 'none') { why.push(`${who} has display: none`); hidden = true; break; }
    if (style.visibility === 'hidden' || style.visibility === 'collapse') {
      why.push(`${who} has visibility: ${style.visibility}`); hidden = true; break;
    }
  }
  if (!hidden && !drawn(e)) {
    let closed = null;
    for (let a = e.parentElement; a && !closed; a = a.parentElement) {
      const summary = a.tagName === 'DETAILS' ? a.querySelector(':scope > summary') : null;
      if (a.tagName === 'DETAILS' && !a.open && !(summary && summary.contains(e))) closed = a;
    }
    why.push(closed
      ? `its ancestor ${describe(closed)} is closed: what it holds shows only once it is`
        + ' opened (a menu: click its summary first)'
      : 'the browser does not draw it (an ancestor with content-visibility: hidden?)');
    hidden = true;
  }
  const box = e.getBoundingClientRect();
  if (!hidden && (box.width === 0 || box.height === 0)) {
    why.push(`it is ${Math.round(box.width)}×${Math.round(box.height)} px: an element with no`
      + ' size is never visible (floated content with no clearfix?)');
  }
  const disabled = [];
  if (e.disabled) disabled.push('it has the disabled attribute');
  const fieldset = e.closest('fieldset[disabled]');
  if (fieldset && fieldset !== e) disabled.push(`it is in a disabled ${describe(fieldset)}`);
  if (e.getAttribute('aria-disabled') === 'true') disabled.push('it has aria-disabled=true');
  if (e.readOnly) disabled.push('it is read-only (a fill cannot type into it)');
  let covered = '';
  if (!why.length) {
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    const inside = x >= 0 && y >= 0 && x < innerWidth && y < innerHeight;
    const top = inside ? document.elementFromPoint(x, y) : null;
    if (top && top !== e && !e.contains(top) && !top.contains(e)) covered = describe(top);
  }
  return {why, disabled, covered, described: describe(e)};
}"""
)

# Selectors that would name the element, each with how it names it.
_CANDIDATES = (
    "e => {"
    + _JS_COMMON
    + r"""
  const out = [];
  const q = v => "'" + String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
  // Ids and classes that a framework numbers afresh on every load are no use.
  const made = v => /\d{4,}|[0-9a-f]{8,}|^(ember|ext-|gen\d|yui|ui-id|j_id|:r|react-)/i.test(v);
  const tag = e.tagName.toLowerCase();
  for (const a of ['data-testid', 'data-test', 'data-qa', 'data-cy']) {
    const v = e.getAttribute(a);
    if (v) out.push({how: 'test id', selector: `[${a}=${q(v)}]`});
  }
  if (e.id && !made(e.id)) out.push({how: 'id', selector: `${tag}#${CSS.escape(e.id)}`});
  const name = e.getAttribute('name');
  if (name && !made(name)) out.push({how: 'name', selector: `${tag}[name=${q(name)}]`});
  const role = roleOf(e), accessible = nameOf(e);
  if (role && accessible && accessible.length <= 60) {
    out.push({how: 'role and accessible name', selector: `role=${role}[name=${q(accessible)}]`});
  }
  const label = labelOf(e);
  if (label && label.length <= 40 && e.closest('label')) {
    out.push({how: 'label', selector: `label:has-text(${q(label)}) ${tag}`});
  }
  const placeholder = e.getAttribute('placeholder');
  if (placeholder) {
    out.push({how: 'placeholder', selector: `${tag}[placeholder=${q(placeholder)}]`});
  }
  const text = textOf(e);
  if (text && text.length <= 40) {
    if (isButtonInput(e)) {
      const type = e.type.toLowerCase();
      out.push({how: 'text', selector: `${tag}[type=${type}][value=${q(e.value)}]`});
    } else if (!isField(e)) {
      out.push({how: 'text', selector: `${tag}:text-is(${q(text)})`});
    }
  }
  const title = e.getAttribute('title');
  if (title) out.push({how: 'title', selector: `${tag}[title=${q(title)}]`});
  // A link's relation (rel=next, rel=prev) says what it is in any language.
  const rel = e.getAttribute('rel');
  if (rel) out.push({how: 'rel', selector: `${tag}[rel=${q(rel)}]`});
  const classes = [...e.classList].filter(c => !made(c)).slice(0, 2);
  if (classes.length) {
    out.push({how: 'class', selector: tag + classes.map(c => '.' + CSS.escape(c)).join('')});
  }
  // Its place in the page, from the nearest ancestor with an id: true today, the first
  // thing to break when the page changes.
  const path = [];
  for (let a = e; a && a !== document.body; a = a.parentElement) {
    if (a !== e && a.id && !made(a.id)) { path.unshift('#' + CSS.escape(a.id)); break; }
    const siblings = a.parentElement ? [...a.parentElement.children] : [a];
    const same = siblings.filter(c => c.tagName === a.tagName);
    const step = a.tagName.toLowerCase();
    path.unshift(same.length > 1 ? `${step}:nth-of-type(${same.indexOf(a) + 1})` : step);
  }
  if (path.length && !path[0].startsWith('#')) path.unshift('body');
  out.push({how: 'position', selector: path.join(' > ')});
  return out;
}"""
)

# How long a selector lasts as the page changes, best first: a test id is put there to
# be found; an id or name is the page's own; a role and name is what a person sees;
# text changes with the language; a class with the styling; a position with anything.
STABILITY = {
    "test id": 0,
    "id": 1,
    "name": 2,
    "rel": 2,
    "role and accessible name": 3,
    "label": 4,
    "placeholder": 5,
    "text": 6,
    "title": 6,
    "class": 7,
    "position": 9,
}

# The elements a step kind acts on: what nearly matched is ranked higher when it is one.
WANTED = {
    "fill": ["input", "textarea", "[contenteditable]"],
    "select": ["select"],
    "check": ["input[type=checkbox]", "input[type=radio]"],
    "uncheck": ["input[type=checkbox]", "input[type=radio]"],
    "click": ["a", "button", "input[type=submit]", "input[type=button]", "[role=button]"],
    "table": ["table", "[role=grid]", "[role=table]"],
    "frame": ["frame", "iframe"],
    "upload": ["input[type=file]"],
    "submit": ["form"],
}


def selectors(step: StepBase, variables: dict[str, Any]) -> list[str]:
    """The selectors a step looks for, rendered with the variables (a template that
    does not render yet is shown as written)."""
    args, kind = step.args, step.kind
    found: list[str] = []
    if isinstance(step.when, PageCondition):
        found.append(step.when.selector)
    if kind == "fill":
        found += list(args.fields) if args.fields is not None else [args.selector]
    elif kind == "download":
        found += [args.click] if args.click else []
    elif kind == "submit":
        found += [args.form] + ([args.button] if args.button else [])
    elif kind not in ("goto", "set"):
        selector = getattr(args, "selector", None)
        if isinstance(selector, str):
            found.append(selector)
    return [as_shown(s, variables) for s in found]


def matches(scope: Scope, step: StepBase, variables: dict[str, Any]) -> tuple[Match, ...]:
    """What each of the step's selectors matches now, without waiting (a `table` also
    says how many rows its first match holds)."""
    found: list[Match] = []
    for selector in selectors(step, variables):
        found.append(_match(scope.locator(selector), selector))
    if step.kind == "table" and found and found[-1].count > 0:
        rows = as_shown(step.args.rows, variables)
        found.append(_match(scope.locator(found[-1].selector).first.locator(rows), rows))
    if step.kind == "expect" and step.args.selector is None and step.args.text:
        text = as_shown(step.args.text, variables)
        found.append(_match(scope.get_by_text(text), f"text {text!r}"))
    return tuple(found)


def _match(target: Locator, selector: str) -> Match:
    try:
        count = target.count()
        first = target.first.evaluate(_DESCRIBE) if count else ""
    except PlaywrightError as exc:
        return Match(selector, -1, f"(could not look: {first_line(exc)})")
    return Match(selector, count, str(first))


# -- what the page showed -----------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One thing a selector asks of an element: a CSS test, a role, or a text."""

    kind: str  # css, role, text
    value: str
    exact: bool = False
    shown: str = ""  # as written in the selector


_TEXT_PSEUDO = re.compile(r":(text-is|text|has-text|text-matches)\((.*)\)$", re.DOTALL)
_ROLE = re.compile(r"^role=([\w-]+)(.*)$", re.DOTALL)
_ROLE_NAME = re.compile(r"\[name=(['\"])(.*?)\1\s*[is]?\]")
_TOKEN = re.compile(
    r"""(?P<tag>^(?:[A-Za-z][\w-]*|\*))
      | (?P<id>\#(?:\\.|[^\s.#\[:>+~])+)
      | (?P<cls>\.(?:\\.|[^\s.#\[:>+~])+)
      | (?P<attr>\[(?:[^\]'"]|'[^']*'|"[^"]*")*\])
      | (?P<pseudo>:[\w-]+(?:\((?:[^()'"]|'[^']*'|"[^"]*"|\([^()]*\))*\))?)""",
    re.VERBOSE,
)


def split_top(selector: str, separators: tuple[str, ...]) -> list[str]:
    """``selector`` cut at each separator that stands outside quotes, brackets and
    parentheses (``>>`` for Playwright's chains; whitespace and ``> + ~`` for CSS)."""
    pieces, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(selector):
        char = selector[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth == 0:
            hit = next((s for s in separators if selector.startswith(s, i)), None)
            if hit is not None:
                pieces.append(selector[start:i])
                i += len(hit)
                start = i
                continue
        i += 1
    pieces.append(selector[start:])
    return [p.strip() for p in pieces if p.strip()]


def _last_segment(selector: str) -> str:
    """The part of a Playwright chain (``a >> b >> nth=0``) that names the element."""
    segments = [s for s in split_top(selector, (">>",)) if not s.startswith("nth=")]
    return segments[-1] if segments else selector


def compounds(selector: str) -> list[str]:
    """A CSS segment's compound selectors, outermost first (``#grid tr.row td``)."""
    return split_top(_last_segment(selector), (" ", ">", "+", "~", "\n", "\t"))


def parts_of(selector: str) -> list[Part]:
    """What the element itself must be, part by part: the last compound's tag, id,
    classes, attributes and text (a role selector: its role and name)."""
    segment = _last_segment(selector)
    parts: list[Part] = []
    role = _ROLE.match(segment)
    if role:
        parts.append(Part("role", role.group(1), shown=f"role {role.group(1)}"))
        named = _ROLE_NAME.search(role.group(2))
        if named:
            parts.append(Part("text", named.group(2), shown=f"name {named.group(2)!r}"))
        return parts
    if segment.startswith("text="):
        body = segment.removeprefix("text=")
        exact = body[:1] in "'\"" and body[-1:] == body[:1]
        return [Part("text", body.strip("'\""), exact=exact, shown=segment)]
    pieces = compounds(segment)
    if not pieces or segment.startswith(("xpath=", "//", "internal:")):
        return []
    for token in _TOKEN.finditer(pieces[-1]):
        value = token.group(0)
        if token.lastgroup == "pseudo":
            text = _TEXT_PSEUDO.match(value)
            if text:
                wanted = text.group(2).strip().strip("'\"")
                parts.append(Part("text", wanted, exact=text.group(1) == "text-is", shown=value))
            elif value not in (":visible",):
                parts.append(Part("css", "*" + value, shown=value))
        elif value != "*":
            parts.append(Part("css", value, shown=value))
    return parts


def closest(scope: Scope, selector: str, kind: str) -> list[dict[str, Any]]:
    """The elements that have the most parts of ``selector``, best first; each with its
    description, the parts it has and lacks, and the text around it."""
    parts = parts_of(selector)
    if not parts:
        return []
    payload = [{"kind": p.kind, "value": p.value, "exact": p.exact} for p in parts]
    try:
        found = scope.evaluate(_CLOSEST, [payload, WANTED.get(kind, []), 30])
    except PlaywrightError:
        return []

    def likeness(item: dict[str, Any]) -> float:
        lacking = [p.value for n, p in enumerate(parts) if n not in item["hits"]]
        if not lacking:
            return 1.0
        return max(difflib.SequenceMatcher(None, w, item["text"]).ratio() for w in lacking)

    # A name much like the one asked for (a typo) comes before being shown: what a
    # closed menu holds is not shown, and is often what was meant.
    found.sort(
        key=lambda item: (
            -item["score"],
            likeness(item) < ALIKE,
            not item["visible"],
            -likeness(item),
        )
    )
    for item in found:
        item["has"] = [parts[n].shown for n in item["hits"]]
        item["lacks"] = [p.shown for n, p in enumerate(parts) if n not in item["hits"]]
    return list(found)


def near(scope: Scope, selector: str, best: dict[str, Any] | None) -> str:
    """The visible text where the selector was expected: inside the deepest of its
    outer parts that matches (``#grid tr.row`` of ``#grid tr.row input``), else around
    what nearly matched, else the start of the page."""
    chain = compounds(selector)
    for depth in range(len(chain) - 1, 0, -1):
        outer = " ".join(chain[:depth])
        try:
            target = scope.locator(outer)
            if target.count() > 0:
                text = " ".join(target.first.inner_text(timeout=1000).split())
                return f"inside {outer}: {_short(text, NEAR_CHARS)!r}"
        except PlaywrightError:
            continue
    if best is not None and best.get("around"):
        return f"around {best['text']}: {best['around']!r}"
    try:
        text = scope.evaluate("() => document.body ? document.body.innerText : ''")
    except PlaywrightError as exc:
        return f"(could not be read: {first_line(exc)})"
    return _short(" ".join(str(text).split()), NEAR_CHARS)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def own_selectors(step: StepBase, variables: dict[str, Any]) -> list[str]:
    """The selectors of what the step acts on: not its page condition's (`when:`), for
    which an element counts whether it is shown or not."""
    found = selectors(step, variables)
    return found[1:] if isinstance(step.when, PageCondition) else found


def diagnose(page: Page, scope: Scope, step: StepBase, variables: dict[str, Any]) -> Diagnosis:
    """What the page showed where a step failed: its URL, title and frames, the text
    where the step looked, and, for the selector it most likely failed on (the first that
    matches nothing, else the first whose match is not shown, else the first), the
    elements that nearly match it or why its match cannot be used."""
    wanted = own_selectors(step, variables) or selectors(step, variables)
    lines: list[str] = []
    best: dict[str, Any] | None = None
    selector = _failing(scope, wanted)
    if selector is not None:
        nearly = closest(scope, selector, step.kind)
        best = nearly[0] if nearly else None
        for item in nearly[:CLOSEST_SHOWN]:
            seen = "" if item["visible"] else " (not visible)"
            if not item["lacks"]:  # a match: say why it cannot be used
                seen = _unusable(scope, item["i"], step, variables) or seen
            lines.append(
                f"{item['text']}{seen}: has {' '.join(item['has'])}"
                + (f"; lacks {' '.join(item['lacks'])}" if item["lacks"] else "")
            )
    try:
        title = scope.title()
    except PlaywrightError:
        title = "(unknown)"
    here = scope if isinstance(scope, PwFrame) else page.main_frame
    looked_for = _looked_for(step, selector, variables)
    frames = tuple(
        f"{frame.name or '(top)'} {frame.url}"
        + (" <- here" if frame == here else _found_in(frame, looked_for))
        for frame in page.frames
    )
    return Diagnosis(
        location=url_of(scope),
        title=title,
        near=near(scope, selector, best) if selector else near(scope, "", None),
        closest=tuple(lines),
        frames=frames if len(frames) > 1 else (),
        line=step.line,
    )


def _looked_for(step: StepBase, selector: str | None, variables: dict[str, Any]) -> str:
    """What the step looked for, as a Playwright selector: the one it failed on, else
    the text an `expect` wanted."""
    if selector:
        return selector
    text = getattr(step.args, "text", None) if step.kind == "expect" else None
    return f"text={as_shown(text, variables)}" if text else ""


def _found_in(frame: PwFrame, looked_for: str) -> str:
    """In the list of a page's frames: that this other frame has what the step looked
    for (a step that must run there, inside a `frame` step)."""
    count = _count_in(frame, looked_for)
    if not count:
        return ""
    return f"  ({looked_for}: {count} here; a `frame` step runs steps in this frame)"


def _count_in(frame: PwFrame, looked_for: str) -> int:
    if not looked_for:
        return 0
    try:
        return frame.locator(looked_for).count()
    except PlaywrightError:
        return 0


def _failing(scope: Scope, wanted: list[str]) -> str | None:
    """Of a step's selectors, the one it most likely failed on: the first that matches
    nothing, else the first whose first match is not shown, else the first."""
    if not wanted:
        return None
    counts = [_count(scope, s) for s in wanted]
    if 0 in counts:
        return wanted[counts.index(0)]
    for selector in wanted:
        try:
            if not scope.locator(selector).first.is_visible():
                return selector
        except PlaywrightError:
            continue
    return wanted[0]


def _unusable(scope: Scope, index: int, step: StepBase, variables: dict[str, Any]) -> str:
    """Why the element ``_CLOSEST`` numbered ``index``, which has all the selector asks
    for, cannot be used by the step, in parentheses; empty when nothing is in the way."""
    element = _nth_element(scope, index)
    if element is None:
        return ""
    seen = state(element)
    reasons = [f"not visible: {r}" for r in seen["why"]]
    reasons += [f"not enabled: {r}" for r in seen["disabled"]]
    if seen["covered"]:
        reasons.append(f"covered by {seen['covered']}")
    if step.kind == "select":
        reasons += [r for r in (option_problem(element, step, variables),) if r]
    return f" ({'; '.join(reasons)})" if reasons else ""


_OPTIONS = "s => s.options ? Array.from(s.options).map(o => [o.value, o.label]) : null"
OPTIONS_SHOWN = 12


def option_problem(
    element: Locator | ElementHandle, step: StepBase, variables: dict[str, Any]
) -> str:
    """For a `select`: the values (or labels) it would choose that the element has no
    option for, and the options it has; empty when it has them all."""
    args = step.args
    by = "value" if args.value is not None else "label"
    wanted = _choices(args.value if args.value is not None else args.label, variables)
    try:
        options = element.evaluate(_OPTIONS)
    except PlaywrightError:
        return ""
    if options is None:
        return ""
    have = [str(value if by == "value" else label) for value, label in options]
    missing = [w for w in wanted if w not in have]
    if not missing:
        return ""
    shown = ", ".join(repr(h) for h in have[:OPTIONS_SHOWN])
    more = ", …" if len(have) > OPTIONS_SHOWN else ""
    return f"no option has the {by} {', '.join(map(repr, missing))}; its {by}s: {shown}{more}"


def _choices(choice: str | list[str], variables: dict[str, Any]) -> list[str]:
    """What a `select` chooses, rendered as the step renders it (list items: empty ones
    dropped)."""
    if isinstance(choice, str):
        return [as_shown(choice, variables)]
    return [text for text in (as_shown(item, variables) for item in choice) if text]


def _count(scope: Scope, selector: str) -> int:
    try:
        return scope.locator(selector).count()
    except PlaywrightError:
        return 0


# -- explain ---------------------------------------------------------------------------


def state(element: Locator | ElementHandle) -> dict[str, Any]:
    """Why an element is or is not visible, enabled and uncovered, in words."""
    return dict(element.evaluate(_STATE))


def candidates(scope: Scope, element: ElementHandle) -> list[Candidate]:
    """Selectors that name ``element`` and nothing else in ``scope`` now, best first."""
    found: list[Candidate] = []
    for item in element.evaluate(_CANDIDATES):
        selector = str(item["selector"])
        try:
            target = scope.locator(selector)
            if target.count() != 1 or not target.evaluate("(e, t) => e === t", element):
                continue
        except PlaywrightError:
            continue  # a syntax this Playwright does not take: not a candidate
        if all(c.selector != selector for c in found):
            found.append(Candidate(selector, str(item["how"])))
    return ranked(found)


def fingerprint(element: Locator | ElementHandle) -> str:
    return str(element.evaluate(_DESCRIBE))


def still_names(scope: Scope, candidate: Candidate, seen: str) -> bool:
    """Does ``candidate`` name one element, the one described as ``seen``, in ``scope``
    (the page loaded again)?"""
    try:
        target = scope.locator(candidate.selector)
        return target.count() == 1 and fingerprint(target) == seen
    except PlaywrightError:
        return False


def ranked(found: list[Candidate]) -> list[Candidate]:
    """Best first: what named the same element on another load, then by how long that
    kind of selector lasts (``STABILITY``)."""
    return sorted(found, key=lambda c: (c.stable is False, STABILITY.get(c.how, 8)))


# Steps that act on one element: Playwright refuses when their selector matches several.
STRICT = frozenset({"fill", "click", "check", "uncheck", "select", "press", "upload", "read"})
CANDIDATES_SHOWN = 3
# Steps that take an element present but not shown with `state: attached`, and steps
# that act only on one shown.
TAKE_ATTACHED = frozenset({"fill", "check", "uncheck", "wait_for", "expect"})
NEED_SHOWN = frozenset({"click", "select", "press", "download"})


def explain(scope: Scope, step: StepBase, variables: dict[str, Any]) -> Explanation:
    """What each of the step's selectors matches in ``scope``, why a match is not
    visible or not enabled (and, shown none, what to do), and, when a selector names no
    element or several where the step acts on one, selectors (checked to name it alone)
    for the element the step was probably meant for: the closest to what a selector that
    matches nothing asks, else its one match, else the first visible of several."""
    lines: list[str] = []
    meant: ElementHandle | None = None
    trouble: ElementHandle | None = None  # the element in the step's way, if any
    wrong = False  # a selector that names none, or several where one is acted on
    condition = selectors(step, variables)[:1] if isinstance(step.when, PageCondition) else []
    for number, selector in enumerate(selectors(step, variables)):
        own = not (condition and number == 0)  # not the `when`'s, which takes hidden ones
        target = scope.locator(selector)
        try:
            count = target.count()
        except PlaywrightError as exc:
            lines.append(f"{selector}: not a selector Playwright takes ({first_line(exc)})")
            continue
        lines.append(f"{selector}: {count} match{'es' if count != 1 else ''}")
        if count == 0:
            wrong = wrong or own
            lines += _in_other_frames(scope, selector)
            nearly = closest(scope, selector, step.kind)
            for item in nearly[:CLOSEST_SHOWN]:
                lines.append(
                    f"  nearly: {item['text']}: has {' '.join(item['has'])}"
                    + (f"; lacks {' '.join(item['lacks'])}" if item["lacks"] else "")
                )
            if nearly and own and trouble is None:
                trouble = _nth_element(scope, nearly[0]["i"])
            continue
        if count > 1 and step.kind in STRICT:
            wrong = wrong or own
            lines.append(f"  {step.kind} acts on one element: Playwright refuses {count}")
        shown = False
        for index in range(min(count, CLOSEST_SHOWN)):
            element = target.nth(index)
            seen = state(element)
            shown = shown or not seen["why"]
            usable = "usable" if not (seen["why"] or seen["disabled"] or seen["covered"]) else ""
            options = option_problem(element, step, variables) if step.kind == "select" else ""
            usable = "" if options else usable
            lines.append(f"  {index + 1}. {seen['described']} {usable}".rstrip())
            for reason in seen["why"]:
                lines.append(f"     not visible: {reason}")
            for reason in seen["disabled"]:
                lines.append(f"     not enabled: {reason}")
            if seen["covered"]:
                lines.append(
                    f"     covered by {seen['covered']}: a click lands on it instead "
                    "(an overlay to dismiss first?)"
                )
            if options:
                lines.append(f"     cannot choose: {options}")
            if own and trouble is None and count == 1 and (seen["why"] or options):
                trouble = element.element_handle()
            if meant is None and (count == 1 or not seen["why"]):
                meant = element.element_handle()
        if own and not shown:
            lines += _not_shown_hint(step)
    text = step.args.text if step.kind == "expect" and step.args.selector is None else None
    if text:
        wanted = as_shown(text, variables)
        found = _count(scope, f"text={wanted}")
        lines.append(f"text {wanted!r}: {found} match{'es' if found != 1 else ''}")
        if not found:
            lines += _in_other_frames(scope, f"text={wanted}")
    meant = trouble or meant
    if step.kind == "table" and meant is not None:
        lines += _table_lines(scope, step, variables, meant)
    if meant is not None and not wrong:
        if step.kind != "table":  # a table's rows, fields and pager are said above
            lines.append("its selectors name what it acts on: no other selector to propose")
        return Explanation(url_of(scope), tuple(lines))
    if meant is None:
        return Explanation(url_of(scope), tuple(lines))
    return Explanation(
        url_of(scope), tuple(lines), tuple(candidates(scope, meant)), fingerprint(meant)
    )


def _in_other_frames(scope: Scope, looked_for: str) -> list[str]:
    """The page's other frames that have what a step looked for in vain where it ran."""
    page = scope.page if isinstance(scope, PwFrame) else scope
    here = scope if isinstance(scope, PwFrame) else page.main_frame
    lines = []
    for frame in page.frames:
        if frame == here:
            continue
        count = _count_in(frame, looked_for)
        if count:
            named = f"frame[name={frame.name}]" if frame.name else "an iframe"
            lines.append(
                f"  in frame {frame.name or '(unnamed)'} ({frame.url}): {count} "
                f"match{'es' if count != 1 else ''}; a `frame` step ({named}) runs steps there"
            )
    return lines


def _not_shown_hint(step: StepBase) -> list[str]:
    """What to do when what a step acts on is in the page but not shown."""
    if step.kind in TAKE_ATTACHED and getattr(step.args, "state", None) != "attached":
        takes = (
            "waits for it in the page, shown or not"
            if step.kind in ("wait_for", "expect")
            else f"lets the {step.kind} set it by script where it is"
        )
        return [
            f"  present, not shown: `state: attached` {takes}; or a step before this one "
            "shows it (click its tab, open its menu)"
        ]
    if step.kind in NEED_SHOWN:
        return [
            f"  present, not shown: a {step.kind} needs it shown; a step before this one must "
            "show it (click its tab, open its menu)"
        ]
    return []


def _nth_element(scope: Scope, index: int) -> ElementHandle | None:
    """The element ``_CLOSEST`` numbered ``index`` (its place among the body's elements)."""
    return scope.evaluate_handle("i => document.body.querySelectorAll('*')[i]", index).as_element()


def _table_lines(
    scope: Scope, step: StepBase, variables: dict[str, Any], table: ElementHandle
) -> list[str]:
    """In the table the step means: its rows, and each field in the first of them."""
    args = step.args
    rows_selector = as_shown(args.rows, variables)
    rows = table.query_selector_all(rows_selector)
    lines = [f"rows {rows_selector}: {len(rows)} in that table"]
    if rows:
        for name, spec in args.fields.items():
            found = rows[0].query_selector_all(as_shown(spec.selector, variables))
            what = f"{len(found)} in the first row"
            if found:
                what += ": " + str(found[0].evaluate(_DESCRIBE))
            elif spec.optional:
                what += " (optional)"
            lines.append(f"  field {name} ({spec.selector}): {what}")
    if args.next:
        pager = as_shown(args.next, variables)
        links = _count(scope, pager)
        lines.append(f"next {pager}: {links} on this page")
        if links == 0:  # the last page, or a link named otherwise (another language?)
            lines += _pager_links(scope, pager)
    return lines


_CONTROLS = "a, button, input[type=submit], input[type=button]"


def _pager_links(scope: Scope, pager: str) -> list[str]:
    """What a paginator that named nothing could have meant: the links inside the
    deepest of its outer parts that is on the page (``nav.pagination`` of
    ``nav.pagination a:text-is('Next')``), else the links most like what it asks."""
    chain = compounds(pager)
    for depth in range(len(chain) - 1, 0, -1):
        outer = " ".join(chain[:depth])
        try:
            container = scope.locator(outer)
            if container.count() == 0:
                continue
            controls = container.first.locator(_CONTROLS)
            shown = []
            for n in range(min(controls.count(), CLOSEST_SHOWN)):
                control = controls.nth(n)
                named = candidates(scope, control.element_handle())
                best = f" ({named[0].selector})" if named else ""
                shown.append(f"{control.evaluate(_DESCRIBE)}{best}")
        except PlaywrightError:
            continue
        return [f"  in {outer}: {', '.join(shown) if shown else 'no link'}"]
    return [
        f"  nearly: {item['text']}: has {' '.join(item['has'])}"
        + (f"; lacks {' '.join(item['lacks'])}" if item["lacks"] else "")
        for item in closest(scope, pager, "click")[:CLOSEST_SHOWN]
    ]


def recheck(scope: Scope, explanation: Explanation) -> Explanation:
    """The candidates tried on the page loaded again: each marked stable when it names
    one element there, described as before; ranked again."""
    checked = [
        dataclasses.replace(c, stable=still_names(scope, c, explanation.meant))
        for c in explanation.candidates
    ]
    return dataclasses.replace(explanation, candidates=tuple(ranked(checked)))
