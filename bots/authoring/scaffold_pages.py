"""What `runner.py scaffold` looks for in a page: a login form, a query form with dates,
the data table with its columns, download links and paginator, each with selectors.

The looking is JavaScript evaluated in the page (one evaluation per frame returns the
whole structure: the DOM is there, and a round trip per element would cost seconds);
this module holds those scripts and turns what they return into typed values. It never
drives the page itself: ``bots.authoring.scaffold`` does.

Selectors are chosen to survive the next page load: a stable-looking id, then a `name`,
then a class, then a structural path; each one is checked to pick out exactly the
element meant (``only`` below), since a web step's locator must match one element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Shared by every script: visibility, text, selectors that name one element.
_PRELUDE = r"""
const shownBox = e => {
  if (!e || !e.getBoundingClientRect) return false;
  const r = e.getBoundingClientRect();
  const s = getComputedStyle(e);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
};
const squash = t => (t || '').replace(/\s+/g, ' ').trim();
const textOf = e => squash(e.innerText !== undefined ? e.innerText : e.textContent);
const controlText = e => squash(e.tagName === 'INPUT' ? (e.value || '') : textOf(e));
// Generated names (ext-gen1234, a hash) change from one page load to the next.
const stableWord = w => /^[A-Za-z][\w-]*$/.test(w) && !/\d{4,}/.test(w)
  && !/[0-9a-f]{8,}/i.test(w) && w.length <= 40;
const STATE = new RegExp('^(odd|even|alt|alternate|active|selected|current|hover|highlight(ed)?'
  + '|first|last|disabled|hidden|show|open|closed|focus|(is|has|ng|js)-.*)$', 'i');
const stableClasses = e => Array.from(e.classList).filter(c => stableWord(c) && !STATE.test(c));
const quoted = v => "'" + String(v).replace(/['\\]/g, '\\$&') + "'";
const attrValue = v => /^[A-Za-z_][\w-]*$/.test(v) ? v : quoted(v);
const only = (root, sel, el) => {
  try { const f = root.querySelectorAll(sel); return f.length === 1 && f[0] === el; }
  catch (err) { return false; }
};
const candidates = el => {
  const tag = el.tagName.toLowerCase();
  const out = [];
  if (el.id && stableWord(el.id)) out.push(tag + '#' + CSS.escape(el.id));
  const name = el.getAttribute('name');
  if (name) out.push(tag + '[name=' + attrValue(name) + ']');
  const classes = stableClasses(el);
  for (const c of classes) out.push(tag + '.' + c);
  if (classes.length > 1) out.push(tag + '.' + classes.join('.'));
  return out;
};
// tag:nth-of-type steps up from the element to the nearest ancestor a short selector names.
const structural = el => {
  const parts = [];
  let node = el;
  while (node && node.nodeType === 1 && node !== document.documentElement) {
    const short = candidates(node).find(s => only(document, s, node));
    if (short) { parts.unshift(short); return parts.join(' > '); }
    const parent = node.parentElement;
    if (!parent) break;
    const tag = node.tagName.toLowerCase();
    const same = Array.from(parent.children).filter(c => c.tagName === node.tagName);
    parts.unshift(same.length > 1 ? tag + ':nth-of-type(' + (same.indexOf(node) + 1) + ')' : tag);
    node = parent;
  }
  return parts.join(' > ');
};
const selectorFor = el => candidates(el).find(s => only(document, s, el)) || structural(el);
// An element inside a form: by itself when that names it alone, else inside the form.
const within = (el, form, formSel, extra) => {
  const own = candidates(el).find(s => only(document, s, el));
  if (own) return own;
  if (form) {
    const local = [...candidates(el), ...extra].find(s => only(form, s, el));
    if (local) return formSel + ' ' + local;
  }
  return structural(el);
};
const SUBMITS = 'button, input[type=submit], input[type=image]';
const isSubmit = e => e.tagName !== 'BUTTON'
  || !['button', 'reset'].includes((e.getAttribute('type') || 'submit').toLowerCase());
const formSubmit = form =>
  Array.from(form.querySelectorAll(SUBMITS)).find(e => shownBox(e) && isSubmit(e)) || null;
const saying = (selector, words) => Array.from(document.querySelectorAll(selector))
  .find(e => shownBox(e) && words.test(controlText(e)));
// A button by what it says, the way Playwright reads it (text-is on a button; the value
// of an input button).
const controlSelector = (el, form, formSel) => {
  const tag = el.tagName.toLowerCase();
  const root = form || document;
  const prefix = form ? formSel + ' ' : '';
  if (el.id && stableWord(el.id) && only(document, tag + '#' + CSS.escape(el.id), el))
    return tag + '#' + CSS.escape(el.id);
  const type = (el.getAttribute('type') || (tag === 'button' ? 'submit' : '')).toLowerCase();
  const byType = tag + '[type=' + type + ']';
  if (type && only(root, byType, el)) return prefix + byType;
  const words = controlText(el);
  if (tag === 'input' && words) {
    const byValue = byType + '[value=' + attrValue(el.value) + ']';
    if (only(root, byValue, el)) return prefix + byValue;
  }
  if (words && tag !== 'input') {
    const same = Array.from(root.querySelectorAll(tag)).filter(e => controlText(e) === words);
    if (same.length === 1) return prefix + tag + ':text-is(' + quoted(words) + ')';
  }
  return within(el, form, formSel, []);
};
const MESSAGES = '[role=alert], .error, .errors, .errorlist, .alert, .alert-error, '
  + '.alert-danger, .flash, .msg, .message, .warning, .text-danger, .invalid-feedback, '
  + 'font[color=red], font[color="#FF0000"], font[color="#ff0000"]';
const messages = () => {
  const seen = [];
  for (const e of document.querySelectorAll(MESSAGES)) {
    const t = textOf(e).slice(0, 200);
    if (t && shownBox(e) && !seen.includes(t)) seen.push(t);
  }
  return seen.slice(0, 5);
};
const visiblePasswords = () =>
  Array.from(document.querySelectorAll('input[type=password]')).filter(shownBox);
const pageFacts = () => ({
  title: document.title, url: location.href, lang: navigator.language,
  charset: document.characterSet, passwords: visiblePasswords().length, messages: messages(),
});
"""

# The login form: a form with one visible password input (or the page's only one); the
# username is the visible text input before it; the submit control is the form's own
# submit button, or a button that says 登录 / Sign in / Log in.
LOGIN_JS = (
    "() => {"
    + _PRELUDE
    + r"""
  const facts = pageFacts();
  const passwords = visiblePasswords();
  let password = null, form = null;
  for (const p of passwords) {
    const f = p.form || p.closest('form');
    if (f && Array.from(f.querySelectorAll('input[type=password]')).filter(shownBox).length === 1) {
      password = p; form = f; break;
    }
  }
  if (!password && passwords.length === 1) password = passwords[0];
  if (!password) return {...facts, login: null};
  const scope = form || document;
  const USER_TYPES = ['', 'text', 'email', 'tel', 'number', 'search'];
  const before = Array.from(scope.querySelectorAll('input')).filter(e =>
    USER_TYPES.includes((e.getAttribute('type') || '').toLowerCase()) && shownBox(e)
    && (e.compareDocumentPosition(password) & Node.DOCUMENT_POSITION_FOLLOWING));
  const user = before.length ? before[before.length - 1] : null;
  const LOGIN_WORDS = new RegExp('^(登\\s*录|登\\s*陆|登\\s*入|sign\\s*in|log\\s*in|login'
    + '|log\\s*on|logon|submit|提\\s*交|确\\s*定|ok)$', 'i');
  let submit = form ? formSubmit(form) : null;
  let submitForm = form;
  if (!submit) {
    submit = saying('button, input[type=submit], input[type=button], a', LOGIN_WORDS);
    submitForm = null;
  }
  const userType = user ? 'input[type=' + (user.getAttribute('type') || 'text') + ']' : '';
  const formSel = form ? selectorFor(form) : null;
  return {...facts, login: {
    form: formSel,
    user: user ? within(user, form, formSel, [userType]) : null,
    password: within(password, form, formSel, ['input[type=password]']),
    submit: submit ? controlSelector(submit, submitForm, formSel) : null,
    submit_text: submit ? controlText(submit) : null,
    submit_in_form: !!(submit && form && form.contains(submit)),
  }};
}"""
)

# The list page: date inputs of a query form, the tables of repeated rows (best first)
# with their columns, links and the paginator.
LISTING_JS = (
    "(limits) => {"
    + _PRELUDE
    + r"""
  const facts = pageFacts();
  // -- the query form's dates -------------------------------------------------------------
  const DATE_VALUE = /^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$/;
  const START_WORDS = new RegExp('^(start|from|begin|since|min|starttime|startdate|begindate'
    + '|datefrom|fromdate)$', 'i');
  const END_WORDS = /^(end|to|until|till|max|endtime|enddate|dateto|todate)$/i;
  const DATE_WORDS = /^(date|day|time|dt|period)$/i;
  const tokens = s => (s || '').replace(/([a-z])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/).filter(Boolean);
  const labelOf = e => {
    if (e.labels && e.labels.length) return textOf(e.labels[0]);
    if (e.getAttribute('aria-label')) return e.getAttribute('aria-label');
    if (e.placeholder) return e.placeholder;
    let text = '', node = e.previousSibling;
    while (node && text.length < 30) {
      if (node.nodeType === 1 && node.matches('input, select, textarea')) break;
      text = (node.textContent || '') + text;
      node = node.previousSibling;
    }
    text = squash(text);
    if (!text) {
      const cell = e.closest('td, th');
      const prev = cell && cell.previousElementSibling;
      if (prev) text = textOf(prev);
    }
    return text.slice(0, 40);
  };
  const TEXTUAL = ['', 'text', 'date', 'search', 'datetime-local', 'month'];
  const dates = [];
  for (const e of document.querySelectorAll('input')) {
    const type = (e.getAttribute('type') || '').toLowerCase();
    if (!TEXTUAL.includes(type) || !shownBox(e)) continue;
    const words = [...tokens(e.name), ...tokens(e.id)];
    const label = labelOf(e);
    let role = null;
    if (words.some(w => START_WORDS.test(w)) || /开始|起始|起$/.test(label)) role = 'start';
    else if (words.some(w => END_WORDS.test(w)) || /结束|截止|止$|^至$|^到$/.test(label)) {
      role = 'end';
    }
    const datey = type === 'date' || DATE_VALUE.test(e.value || '') || role !== null
      || words.some(w => DATE_WORDS.test(w)) || /日期|时间|date/i.test(label);
    if (!datey) continue;
    const form = e.form || e.closest('form');
    const formSel = form ? selectorFor(form) : null;
    dates.push({
      selector: within(e, form, formSel, []), role, label, value: e.value || '',
      name: e.name || e.id || '', readonly: e.readOnly, form: formSel, _form: form,
    });
  }
  // Roles by order where the names say nothing: the first is the start, the second the end.
  const unnamed = dates.filter(d => d.role === null);
  if (!dates.some(d => d.role === 'start') && unnamed.length) unnamed[0].role = 'start';
  if (!dates.some(d => d.role === 'end')) {
    const rest = dates.filter(d => d.role === null);
    if (rest.length) rest[0].role = 'end';
  }
  let query = null;
  const start = dates.find(d => d.role === 'start'), end = dates.find(d => d.role === 'end');
  if (start && end) {
    const form = start._form;
    const QUERY_WORDS = new RegExp('^(查\\s*询|搜\\s*索|检\\s*索|查\\s*找|筛\\s*选|确\\s*定'
      + '|提\\s*交|search|query|find|filter|go|apply|submit|ok|refresh|show|刷\\s*新)$', 'i');
    let submit = form ? formSubmit(form) : null;
    let submitForm = form;
    if (!submit) {
      submit = saying('button, input[type=submit], input[type=button]', QUERY_WORDS);
      submitForm = null;
    }
    query = {
      start: start.selector, end: end.selector, start_label: start.label, end_label: end.label,
      start_value: start.value, end_value: end.value,
      readonly: !!(start.readonly || end.readonly), form: start.form,
      submit: submit ? controlSelector(submit, submitForm, start.form) : null,
      submit_text: submit ? controlText(submit) : null,
      submit_is_form_submit: !!(submit && form && form.contains(submit) && isSubmit(submit)),
    };
  }
  const loneDates = dates.filter(d => d !== start && d !== end).map(d => d.selector);
  // -- tables of repeated rows ------------------------------------------------------------
  const DOWNLOAD = /^(下\s*载|download|导\s*出|export)/i;
  const hrefOf = a => a.getAttribute('href') || '';
  const isDownload = a => DOWNLOAD.test(textOf(a)) || /download/i.test(hrefOf(a));
  const realHref = a => !!hrefOf(a) && !/^(javascript:|#)/i.test(hrefOf(a));
  const EDITABLE = 'input[type=text], input:not([type]), select, textarea';
  const tables = [];
  for (const t of document.querySelectorAll('table')) {
    if (!shownBox(t)) continue;
    const rows = Array.from(t.rows);
    if (!rows.length) continue;
    const isHead = r => (r.parentElement && r.parentElement.tagName === 'THEAD')
      || (r.cells.length > 0 && Array.from(r.cells).every(c => c.tagName === 'TH'));
    const header = rows.find(isHead) || null;
    const inFoot = r => r.parentElement && r.parentElement.tagName === 'TFOOT';
    let body = rows.filter(r => !isHead(r) && !inFoot(r)
      && Array.from(r.cells).some(c => c.tagName === 'TD'));
    // A table of tables is layout; rows with inputs to type in are a form.
    if (body.some(r => r.querySelector('table') || r.querySelector(EDITABLE))) continue;
    const counts = {};
    for (const r of body) counts[r.cells.length] = (counts[r.cells.length] || 0) + 1;
    const width = Number(Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0] || 0);
    const odd = body.filter(r => r.cells.length !== width).length;
    body = body.filter(r => r.cells.length === width);
    if (!body.length || (!header && body.length < 2) || width < 1) continue;
    // The rows' selector, relative to the table: a class they all share, tbody rows, or
    // rows with data cells; checked to pick out exactly these rows.
    const same = sel => {
      try {
        const found = Array.from(t.querySelectorAll(sel));
        return found.length === body.length && found.every((r, i) => r === body[i]);
      } catch (err) { return false; }
    };
    let rowsSel = null;
    const shared = stableClasses(body[0]).filter(c => body.every(r => r.classList.contains(c)));
    for (const c of shared) if (same('tr.' + c)) { rowsSel = 'tr.' + c; break; }
    for (const sel of ['tbody tr', 'tr:has(> td)', 'tr:nth-child(n+2)', 'tbody tr:nth-child(n+2)'])
      if (!rowsSel && same(sel)) rowsSel = sel;
    if (!rowsSel) continue;  // rows we cannot name apart from the others
    // Columns: the header's words, one selector per cell (a class every row's cell has,
    // else its position), a <time datetime> inside when every cell has one.
    const columns = [];
    for (let i = 0; i < width; i++) {
      const cells = body.map(r => r.cells[i]);
      const first = cells[0];
      const alike = cells.every(c => c.tagName === first.tagName);
      const tag = alike ? first.tagName.toLowerCase() : null;
      const place = c => Array.prototype.indexOf.call(c.parentElement.children, c) + 1;
      const position = place(first);
      const samePosition = cells.every(c => place(c) === position);
      let selector = null;
      const common = stableClasses(first)
        .filter(c => cells.every(cell => cell.classList.contains(c)));
      for (const c of common) {
        const alone = cell => cell.parentElement.querySelectorAll(tag + '.' + c).length === 1;
        if (tag && cells.every(alone)) { selector = tag + '.' + c; break; }
      }
      if (!selector && tag && samePosition) selector = tag + ':nth-child(' + position + ')';
      const headerCell = header && header.cells[i] ? header.cells[i] : null;
      const times = cells.every(c => c.querySelector('time[datetime]'));
      columns.push({
        index: i + 1, header: headerCell ? textOf(headerCell) : '', selector,
        values: cells.map(textOf), time: times,
        time_values: times
          ? cells.map(c => c.querySelector('time[datetime]').getAttribute('datetime')) : [],
        links: cells.filter(c => Array.from(c.querySelectorAll('a')).some(realHref)).length,
      });
    }
    // Download links: one per row where there is one.
    const downloads = body.map(r => Array.from(r.querySelectorAll('a')).find(isDownload) || null);
    const having = downloads.filter(Boolean);
    let download = null;
    if (having.length) {
      const texts = [...new Set(having.map(textOf))];
      const classes = stableClasses(having[0])
        .filter(c => having.every(a => a.classList.contains(c)));
      let selector;
      if (texts.length === 1 && texts[0]) selector = 'a:text-is(' + quoted(texts[0]) + ')';
      else if (having.every(a => /download/i.test(hrefOf(a)))) selector = 'a[href*=download i]';
      else if (classes.length) selector = 'a.' + classes[0];
      else selector = 'a:has-text(' + quoted(texts[0] || 'Download') + ')';
      const column = having[0].closest('td, th');
      const at = column ? Array.from(column.parentElement.cells).indexOf(column) : -1;
      const instead = body.filter((r, i) => !downloads[i]).map(r => {
        const cell = at >= 0 ? r.cells[at] : null;
        const buttons = 'button, input[type=submit], input[type=button]';
        const controls = cell ? Array.from(cell.querySelectorAll(buttons)).map(controlText) : [];
        return {text: cell ? textOf(cell) : '', controls};
      });
      download = {selector, text: texts[0] || '', rows: having.length, column: at + 1, instead};
    }
    // A link to each row's own page (when there is no download link in the rows).
    let rowLink = null;
    for (const column of columns) {
      if (download || rowLink || !column.selector) continue;
      const anchors = body.map(r => r.cells[column.index - 1].querySelector('a[href]'));
      if (anchors.every(a => a && realHref(a) && !isDownload(a)))
        rowLink = {selector: column.selector + ' a', column: column.index, first: anchors[0].href};
    }
    const thHeader = !!(header && Array.from(header.cells).every(c => c.tagName === 'TH'));
    tables.push({
      selector: selectorFor(t), rows: rowsSel, count: body.length, odd_rows: odd,
      header: !!header, th_header: thHeader,
      columns, download, row_link: rowLink,
      // The most rows; a header of th cells (a data grid's) counts double; then width.
      score: body.length * (thHeader ? 2 : 1) + width / 100,
    });
  }
  tables.sort((a, b) => b.score - a.score);
  // -- the paginator: a control that says "next page", named by its exact text ------------
  const NEXT = /^(下一页|下页|后一页|下一頁|next|next page|next\s*[›»>]{1,2}|[›»>]{1,2})$/i;
  const controls = Array.from(
    document.querySelectorAll('a, button, input[type=button], input[type=submit]')
  ).filter(e => shownBox(e));
  const relNext = e => e.tagName === 'A'
    && (e.getAttribute('rel') || '').split(/\s+/).includes('next');
  const next = controls.find(e => NEXT.test(controlText(e))) || controls.find(relNext);
  let pager = null;
  if (next) {
    const tag = next.tagName.toLowerCase();
    const words = controlText(next);
    const byText = (root, prefix) => {
      const same = Array.from(root.querySelectorAll(tag)).filter(e => controlText(e) === words);
      return same.length === 1 ? prefix + tag + ':text-is(' + quoted(words) + ')' : null;
    };
    let selector = null;
    // Inside the nearest container that has a name of its own (div.pager, nav.pagination).
    let box = next.parentElement;
    for (let depth = 0; box && box !== document.body && depth < 5 && !selector; depth++) {
      const named = candidates(box).find(s => only(document, s, box));
      if (named && words) selector = byText(box, named + ' ');
      box = box.parentElement;
    }
    if (!selector && words) selector = byText(document, '');
    if (!selector) selector = selectorFor(next);
    pager = {selector, text: words, href: next.getAttribute('href') || ''};
  }
  return {...facts, query, lone_dates: loneDates, tables: tables.slice(0, limits.tables), pager};
}"""
)

# A row's own page: its download link (a link saying 下载 / Download, or whose address
# says download).
DETAIL_JS = (
    "() => {"
    + _PRELUDE
    + r"""
  const DOWNLOAD = /^(下\s*载|download)/i;
  const links = Array.from(document.querySelectorAll('a[href]')).filter(a => shownBox(a)
    && (DOWNLOAD.test(textOf(a)) || /download/i.test(a.getAttribute('href') || '')));
  if (!links.length) return {...pageFacts(), download: null};
  const a = links[0];
  let selector = candidates(a).find(s => only(document, s, a));
  const words = textOf(a);
  if (!selector && words) {
    const same = Array.from(document.querySelectorAll('a')).filter(e => textOf(e) === words);
    if (same.length === 1) selector = 'a:text-is(' + quoted(words) + ')';
  }
  if (!selector) selector = structural(a);
  return {...pageFacts(), download: {selector, text: words, href: a.href}};
}"""
)

# The selector of a frame's <frame>/<iframe> element in its parent document.
FRAME_ELEMENT_JS = "(el) => {" + _PRELUDE + "return selectorFor(el); }"


@dataclass(frozen=True)
class PageFacts:
    """What every look reports of the page (or frame) it looked at."""

    title: str
    url: str
    lang: str
    charset: str
    passwords: int  # visible password inputs
    messages: list[str]  # visible texts that look like messages (errors, notices)

    @classmethod
    def of(cls, seen: dict[str, Any]) -> PageFacts:
        return cls(
            title=str(seen.get("title") or ""),
            url=str(seen.get("url") or ""),
            lang=str(seen.get("lang") or ""),
            charset=str(seen.get("charset") or ""),
            passwords=int(seen.get("passwords") or 0),
            messages=[str(m) for m in seen.get("messages") or []],
        )


@dataclass(frozen=True)
class LoginForm:
    """The login form's controls, by selector."""

    form: str | None  # None: the password input is in no <form>
    user: str | None
    password: str
    submit: str | None
    submit_text: str | None
    submit_in_form: bool

    @property
    def marker(self) -> str:
        """What shows only when logged out: the form, else the password input."""
        return self.form or self.password

    @classmethod
    def of(cls, seen: dict[str, Any]) -> LoginForm | None:
        login = seen.get("login")
        if not login:
            return None
        return cls(
            form=login.get("form"),
            user=login.get("user"),
            password=str(login["password"]),
            submit=login.get("submit"),
            submit_text=login.get("submit_text"),
            submit_in_form=bool(login.get("submit_in_form")),
        )


@dataclass(frozen=True)
class QueryForm:
    """A query form's start and end date inputs and the control that submits it."""

    start: str
    end: str
    start_label: str
    end_label: str
    start_value: str
    end_value: str
    readonly: bool  # a date picker: set by script (`state: attached`), not typed
    form: str | None
    submit: str | None
    submit_text: str | None
    navigates: bool  # the submit control sends its form: a page load follows

    @classmethod
    def of(cls, seen: dict[str, Any] | None) -> QueryForm | None:
        if not seen:
            return None
        return cls(
            start=str(seen["start"]),
            end=str(seen["end"]),
            start_label=str(seen.get("start_label") or ""),
            end_label=str(seen.get("end_label") or ""),
            start_value=str(seen.get("start_value") or ""),
            end_value=str(seen.get("end_value") or ""),
            readonly=bool(seen.get("readonly")),
            form=seen.get("form"),
            submit=seen.get("submit"),
            submit_text=seen.get("submit_text"),
            navigates=bool(seen.get("submit_is_form_submit")),
        )


@dataclass(frozen=True)
class Column:
    """One column of the data table, as its rows show it."""

    index: int  # 1-based
    header: str
    selector: str | None  # inside a row; None: no one selector reads it in every row
    values: list[str]
    time: bool  # every cell holds a <time datetime>: read that attribute
    time_values: list[str]
    links: int  # rows whose cell holds a link


@dataclass(frozen=True)
class DownloadLinks:
    """The rows' download links."""

    selector: str  # inside a row
    text: str
    rows: int  # rows that have one
    column: int
    instead: list[dict[str, Any]]  # what the other rows show in that column


@dataclass(frozen=True)
class RowLink:
    """A link in every row to the row's own page."""

    selector: str
    column: int
    first: str  # the first row's, absolute


@dataclass(frozen=True)
class Table:
    """A table of repeated rows."""

    selector: str
    rows: str  # the data rows, relative to the table
    count: int  # data rows on this page
    odd_rows: int  # rows of another width, left out
    header: bool
    th_header: bool
    columns: list[Column]
    download: DownloadLinks | None
    row_link: RowLink | None

    @classmethod
    def of(cls, seen: dict[str, Any]) -> Table:
        download = seen.get("download")
        link = seen.get("row_link")
        return cls(
            selector=str(seen["selector"]),
            rows=str(seen["rows"]),
            count=int(seen["count"]),
            odd_rows=int(seen.get("odd_rows") or 0),
            header=bool(seen.get("header")),
            th_header=bool(seen.get("th_header")),
            columns=[
                Column(
                    index=int(c["index"]),
                    header=str(c.get("header") or ""),
                    selector=c.get("selector"),
                    values=[str(v) for v in c.get("values") or []],
                    time=bool(c.get("time")),
                    time_values=[str(v) for v in c.get("time_values") or []],
                    links=int(c.get("links") or 0),
                )
                for c in seen.get("columns") or []
            ],
            download=None
            if not download
            else DownloadLinks(
                selector=str(download["selector"]),
                text=str(download.get("text") or ""),
                rows=int(download["rows"]),
                column=int(download.get("column") or 0),
                instead=list(download.get("instead") or []),
            ),
            row_link=None
            if not link
            else RowLink(
                selector=str(link["selector"]), column=int(link["column"]), first=str(link["first"])
            ),
        )


@dataclass(frozen=True)
class Pager:
    """The control to the next page, by its exact text."""

    selector: str
    text: str
    href: str


@dataclass(frozen=True)
class ListingLook:
    """One frame of the list page: its query form, its tables (best first), its pager."""

    facts: PageFacts
    query: QueryForm | None
    lone_dates: list[str]  # date-like inputs not taken as the window's start or end
    tables: list[Table]
    pager: Pager | None
    frames: list[str] = field(default_factory=list)  # <frame> selectors from the top

    @classmethod
    def of(cls, seen: dict[str, Any], frames: list[str]) -> ListingLook:
        pager = seen.get("pager")
        return cls(
            facts=PageFacts.of(seen),
            query=QueryForm.of(seen.get("query")),
            lone_dates=[str(s) for s in seen.get("lone_dates") or []],
            tables=[Table.of(t) for t in seen.get("tables") or []],
            pager=None
            if not pager
            else Pager(str(pager["selector"]), str(pager["text"]), str(pager.get("href") or "")),
            frames=frames,
        )


@dataclass(frozen=True)
class DetailLink:
    """The download link on a row's own page."""

    selector: str
    text: str
    href: str

    @classmethod
    def of(cls, seen: dict[str, Any]) -> DetailLink | None:
        found = seen.get("download")
        if not found:
            return None
        return cls(str(found["selector"]), str(found.get("text") or ""), str(found["href"]))
