"""`runner.py scaffold`: log in to a new web system, look at its list page, and write a
recipe whose source section does what was seen (issue 16).

It opens Chromium the way a run does (the web driver's ``WebDriver``: Debian's headless
shell, the fleet's arguments, the keyring's master key kept from the browser), logs in
with the login steps it drafted (run through the driver's own step runner, so what is
written is what was tried), fills the list's query dates with the recipe's window,
finds the data table, its columns, download links and paginator
(``scaffold_pages``), and writes the recipe (``scaffold_recipe``): the source section
drafted, the archive side copied from a recipe that already feeds the archive.

The password is only ever a template (``{{ credential.password }}``) in what is written
and run; the store registered it with the redactor when it was read, so nothing printed
can show it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..drivers import registry
from ..drivers.base import SessionConfig, StepContext
from ..errors import FleetError, RecipeError, SystemFailure, UsageError
from ..recipe import load_recipe
from ..recipe.model import SLUG
from ..yamlfile import parse_yaml
from .scaffold_pages import (
    DETAIL_JS,
    FRAME_ELEMENT_JS,
    LISTING_JS,
    LOGIN_JS,
    DetailLink,
    ListingLook,
    LoginForm,
    PageFacts,
    QueryForm,
    Table,
)
from .scaffold_recipe import (
    WINDOW_START,
    ArchiveSide,
    DetailDraft,
    SourceDraft,
    Step,
    choose_key,
    comment,
    in_frames,
    login_steps,
    query_steps,
    recipe_text,
    shown_path,
    steps_text,
    table_fields,
)

if TYPE_CHECKING:
    from credentials import Credential

    from ..drivers.web.session import WebSession

# How long a page may take to show a login form or a table its scripts draw after it
# loaded (seconds): a bound, not a pause; a page that has them shows them at once.
LATE_CONTENT_SECONDS = 5.0
TABLES_KEPT = 3  # the best tables of each frame the page look returns
EXCERPT_CHARS = 240


@dataclass(frozen=True)
class ScaffoldRequest:
    """What the command line asks for."""

    url: str  # the page where the reports are listed
    login_url: str
    credential: Credential
    archive_from: Path  # the recipe whose archive side is copied
    out: Path | None = None  # default: recipes/<name>.yaml beside archive_from's folder
    name: str | None = None
    force: bool = False  # overwrite an existing file
    locale: str | None = None  # the browser's language (default: the machine's)
    recipes_dir: Path = Path("recipes")


@dataclass(frozen=True)
class Scaffolded:
    """What was written, what was found, what to check."""

    path: Path
    name: str
    found: list[str]
    checks: list[str]


@dataclass(frozen=True)
class _LookSpec:
    """What the web session reads of a system's recipe section while there is none yet:
    no logged-out marker (every page may be a login page now), the language asked for."""

    logged_out: str | None = None
    locale: str | None = None
    timezone: str | None = None


def scaffold(request: ScaffoldRequest, env: dict[str, str], today: date) -> Scaffolded:
    """Log in, look, write the recipe; a ``FleetError`` saying what and where otherwise."""
    origin = _origin(request.url, "URL")
    _origin(request.login_url, "--login-url")
    if request.name is not None and not SLUG.match(request.name):
        raise UsageError(
            f"--name {request.name!r}: a recipe name is lower case letters, digits, - and _ "
            "(starting with a letter or digit)"
        )
    side = ArchiveSide.load(request.archive_from)
    planned = request.out or (
        request.recipes_dir / f"{request.name}.yaml" if request.name else None
    )
    if planned is not None:
        _refuse_overwrite(planned, request.force)
    with _session(side, origin, env, request.locale) as session:
        login, login_frames, login_facts = _log_in(session, request, origin)
        looks, sent = _list_page(session, request.url, today)
        look, table = _best_table(looks, request.url, session)
        detail = _detail_link(session, table)
    titles = [login_facts.title, looks[0].facts.title, look.facts.title]
    system = system_name(titles)
    name = request.name or recipe_name(system, request.url)
    out = planned or request.recipes_dir / f"{name}.yaml"
    _refuse_overwrite(out, request.force)
    link_name = "href" if table.download is None and table.row_link is not None else None
    fields, column_notes = table_fields(table, link_name)
    if not fields:
        raise UsageError(
            f"the table {table.selector} at {request.url} has no column a recipe can read "
            "in every row"
        )
    draft = SourceDraft(
        system=system,
        base_url=origin,
        credential=request.credential.name,
        locale=request.locale or look.facts.lang,
        login_goto=_relative(request.login_url, origin),
        login=login,
        login_frames=login_frames,
        list_goto=_relative(request.url, origin),
        frames=look.frames,
        query=sent or look.query,  # as it was before the window went in
        lone_dates=look.lone_dates,
        table=table,
        fields=fields,
        key=choose_key(table, fields),
        pager=look.pager,
        detail=DetailDraft(link_name, detail) if detail is not None and link_name else None,
        charset=look.facts.charset,
        column_notes=column_notes,
        copied_from=side.shown,
    )
    draft.placeholders = sorted(side.reads("row") - draft.field_names)
    header = _header(request, out, side, today)
    text = recipe_text(name=name, draft=draft, side=side, out=out, header=header)
    _write(out, text, request.force)
    window = f"{WINDOW_START}..{today.isoformat()}" if sent else None
    return Scaffolded(out, name, _found(draft, request, window), _checks(draft))


# -- the browser ------------------------------------------------------------------------


@contextlib.contextmanager
def _session(
    side: ArchiveSide, origin: str, env: dict[str, str], locale: str | None
) -> Iterator[WebSession]:
    """One session of the web driver, closed (with its browser) on the way out. Its
    step runner names "the draft" where a recipe's file and line would be."""
    from ..drivers.web.session import WebDriver

    config = SessionConfig(
        system="the new system",
        spec=_LookSpec(locale=locale),
        target=origin,
        recipe=dataclasses.replace(side.loaded, path=Path("(the draft's steps)")),
        emit=lambda *args, **kwargs: None,
    )
    driver = WebDriver(env)
    try:
        yield driver.open(config)
    finally:
        driver.close()


def _playwright_error() -> type[Exception]:
    """The browser's error class, as the web driver imports it (only the web driver
    imports Playwright; this tool drives the driver's own page)."""
    from ..drivers.web.runner import PlaywrightError

    return PlaywrightError


def _goto(session: WebSession, url: str, what: str) -> None:
    """Load ``url`` in the page (all its frames): a system that does not answer is a
    system failure; an address it does not know is the caller's."""
    from ..drivers.web.runner import first_line

    failed = _playwright_error()
    timeout = session.config.recipe.recipe.timeouts.step * 1000
    try:
        response = session.page.goto(url, wait_until="load", timeout=timeout)
    except failed as exc:
        raise SystemFailure(f"cannot reach {what} {url}: {first_line(exc)}") from exc
    if response is None:
        return
    if response.status >= 500:
        raise SystemFailure(f"{what} {url} answered HTTP {response.status}; try again later")
    if response.status >= 400:
        raise UsageError(
            f"{what} {url} answered HTTP {response.status} {response.status_text}: "
            "is the address right?"
        )


def _evaluate(scope: Any, script: str, arg: Any = None) -> Any:
    """One look at a page or frame; a page that goes away meanwhile is a system failure."""
    from ..drivers.web.runner import first_line

    failed = _playwright_error()
    try:
        return scope.evaluate(script, arg)
    except failed as exc:
        raise SystemFailure(f"cannot read the page at {scope.url}: {first_line(exc)}") from exc


def _frames(session: WebSession) -> list[tuple[Any, list[str]]]:
    """Every frame of the page, the page's own first, each with the selectors of the
    <frame>/<iframe> elements that lead to it from the top."""
    failed = _playwright_error()
    found = []
    for frame in session.page.frames:
        chain: list[str] = []
        node = frame
        try:
            while node.parent_frame is not None:
                chain.insert(0, node.frame_element().evaluate(FRAME_ELEMENT_JS))
                node = node.parent_frame
        except failed:
            continue  # gone while we looked: nothing of it to draft
        found.append((frame, chain))
    return found


def _wait_for(session: WebSession, selector: str) -> None:
    """Up to LATE_CONTENT_SECONDS for ``selector`` to show in the page: scripts that draw
    a form or a table after the load."""
    failed = _playwright_error()
    with contextlib.suppress(failed):  # not there in time: the caller says what it saw
        session.page.locator(selector).first.wait_for(
            state="visible", timeout=LATE_CONTENT_SECONDS * 1000
        )


def shown(session: WebSession) -> str:
    """What the page shows, in short (its title and the start of its text)."""
    from ..drivers.web.runner import shown as page_shows

    return page_shows(session.page)


def _run(session: WebSession, steps: list[Step], variables: dict[str, Any], phase: str) -> None:
    """Run drafted steps exactly as the recipe will say them: their text, parsed and
    validated as the web driver's steps, through the session's step runner."""
    from pydantic import TypeAdapter, ValidationError

    text = "\n".join(steps_text(steps, 0))
    data = parse_yaml(text, Path("(the draft's steps)"))
    step_type: Any = registry.get("web").step_type  # the validated union of web steps
    adapter: TypeAdapter[Any] = TypeAdapter(step_type)
    try:
        parsed = [
            adapter.validate_python({**item, "__line__": n}) for n, item in enumerate(data, 1)
        ]
    except ValidationError as exc:  # a step this tool drafted wrongly: our bug, said plainly
        raise UsageError(f"scaffold drafted a step the web driver refuses: {exc}\n{text}") from exc
    session.run(parsed, StepContext(variables, phase=phase))


# -- logging in ---------------------------------------------------------------------------


def _log_in(
    session: WebSession, request: ScaffoldRequest, origin: str
) -> tuple[LoginForm, list[str], PageFacts]:
    _goto(session, request.login_url, "the login page")
    found = _login_form(session)
    if found is None:
        _wait_for(session, "input[type=password]")
        found = _login_form(session)
    if found is None:
        moved = session.page.url.split("#")[0] != request.login_url.split("#")[0]
        hint = (
            f"; it went on to {session.page.url}: a session may be alive already (log out "
            "first), or the system needs no login"
            if moved
            else ""
        )
        raise UsageError(
            f"no login form at {request.login_url} (no visible password input in the page "
            f"or its frames){hint}. The page showed: {shown(session)}"
        )
    login, frames, facts = found
    credential = request.credential
    steps = login_steps(login, _relative(request.login_url, origin), frames)
    try:
        _run(session, steps, {"credential": credential}, "login")
    except FleetError as exc:
        if _still_on_login(session):
            raise _login_refused(session, request) from exc
        kind = UsageError if exc.exit_code == UsageError.exit_code else SystemFailure
        raise kind(
            f"logging in at {request.login_url} with the drafted steps failed: {exc}"
        ) from exc
    if _still_on_login(session):
        raise _login_refused(session, request)
    return login, frames, facts


def _login_form(session: WebSession) -> tuple[LoginForm, list[str], PageFacts] | None:
    for frame, chain in _frames(session):
        seen = _evaluate(frame, LOGIN_JS)
        login = LoginForm.of(seen)
        if login is not None:
            return login, chain, PageFacts.of(seen)
    return None


def _still_on_login(session: WebSession) -> bool:
    """A visible password input anywhere in the page: the login did not go through."""
    return any(PageFacts.of(_evaluate(f, LOGIN_JS)).passwords for f, _ in _frames(session))


def _login_refused(session: WebSession, request: ScaffoldRequest) -> SystemFailure:
    messages = [
        m for f, _ in _frames(session) for m in PageFacts.of(_evaluate(f, LOGIN_JS)).messages
    ]
    said = f", saying {' / '.join(repr(m) for m in messages)}" if messages else ""
    return SystemFailure(
        f"cannot log in at {request.login_url} as {request.credential.username!r} (credential "
        f"{request.credential.name!r}): the login form came back after signing in{said}. "
        f"Check the credential (`python runner.py credentials set {request.credential.name}`). "
        f"The page showed: {shown(session)}"
    )


# -- the list page ------------------------------------------------------------------------


def _look(session: WebSession) -> list[ListingLook]:
    return [
        ListingLook.of(_evaluate(frame, LISTING_JS, {"tables": TABLES_KEPT}), chain)
        for frame, chain in _frames(session)
    ]


def _list_page(
    session: WebSession, url: str, today: date
) -> tuple[list[ListingLook], QueryForm | None]:
    """The list page's frames as they look with the query dates set to the window (when
    it has them); and the query form filled, as it was before."""
    _goto(session, url, "the list page")
    looks = _look(session)
    if not any(look.tables for look in looks):
        _wait_for(session, "table tr td")
        looks = _look(session)
    if _still_on_login(session) and not any(look.tables for look in looks):
        raise SystemFailure(
            f"the list page {url} showed a login form again right after logging in: the "
            f"session was not kept (or the page needs another login). It showed: {shown(session)}"
        )
    queried = [look for look in looks if look.query is not None]
    if not queried:
        return looks, None
    # The frame whose query form to fill: the one with the table, else the first.
    look = next((q for q in queried if q.tables), queried[0])
    assert look.query is not None
    window = {"start": WINDOW_START, "end": today.isoformat()}
    steps = in_frames(look.frames, query_steps(look.query), "query form")
    try:
        _run(session, steps, {"window": window}, "list")
    except FleetError as exc:
        kind = UsageError if exc.exit_code == UsageError.exit_code else SystemFailure
        raise kind(
            f"filling the query dates of {url} ({look.query.start}, {look.query.end}) with "
            f"the window and sending them failed: {exc}"
        ) from exc
    return _look(session), look.query


def _best_table(
    looks: list[ListingLook], url: str, session: WebSession
) -> tuple[ListingLook, Table]:
    ranked = [(look, table) for look in looks for table in look.tables[:1]]
    if not ranked:
        frames = [f"{' > '.join(look.frames)} ({look.facts.url})" for look in looks if look.frames]
        inside = f"; its frames: {', '.join(frames)}" if frames else ""
        raise UsageError(
            f"no table of repeated rows at {url} (nor in its frames){inside}. Give the "
            "address of the page that lists the reports; scaffold drafts from HTML tables "
            "(<table>) only: a list built of other elements (div rows, a ul) needs its "
            "`table` step written by hand (any selector works there: see the README's "
            f"step table). The page showed: {shown(session)}"
        )
    # The most rows wins; a header row of th cells (a data grid's) counts double.
    return max(ranked, key=lambda pair: pair[1].count * (2 if pair[1].th_header else 1))


def _detail_link(session: WebSession, table: Table) -> DetailLink | None:
    """With no download link in the rows: the first row's own page, and its download
    link, if it has one."""
    if table.download is not None or table.row_link is None:
        return None
    _goto(session, table.row_link.first, "the first row's page")
    return DetailLink.of(_evaluate(session.page, DETAIL_JS))


# -- names, paths, the file ---------------------------------------------------------------

_SEPARATORS = re.compile(r"\s+[-–—|·:]\s+|\s*[|·]\s*")


def system_name(titles: list[str]) -> str:
    """What the pages' titles share (``Sign in · Northwind Tracker`` and ``Incidents ·
    Northwind Tracker``: Northwind Tracker), else the list page's title."""
    parts = [[p.strip() for p in _SEPARATORS.split(t) if p.strip()] for t in titles if t.strip()]
    if not parts:
        return "new system"
    common: list[str] = []
    for group in zip(*(reversed(p) for p in parts), strict=False):
        if any(g != group[0] for g in group):
            break
        common.insert(0, group[0])
    if common:
        return " - ".join(common)
    return " - ".join(parts[1] if len(parts) > 1 else parts[0])


def recipe_name(system: str, url: str) -> str:
    """A recipe name from the system's name in ASCII words (ERP, Northwind Tracker), else
    from the host name."""
    words = [
        w for w in re.findall(r"[a-z][a-z0-9]*", system.lower()) if not re.fullmatch(r"v\d*", w)
    ]
    name = "-".join(words)[:64].strip("-")
    if not name:
        host = urlsplit(url).hostname or ""
        labels = [x for x in host.split(".") if x and x != "www" and not x.isdigit()]
        name = re.sub(r"[^a-z0-9_-]+", "-", labels[0].lower()).strip("-") if labels else ""
    return name if name and SLUG.match(name) else "new-source"


def _origin(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{what} {url!r} is not an http(s) address such as http://erp.intra/list")
    return f"{parts.scheme}://{parts.netloc}"


def _relative(url: str, origin: str) -> str:
    """``url`` for a `goto`: its path (and query) when it is on the base URL's origin."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return url
    path = parts.path or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} exists already: give another --out or --name, or --force")


def _write(out: Path, text: str, force: bool) -> None:
    """Validate the text as `runner.py check` would, from the folder it will live in
    (relative paths resolve there), then put it in place; never over an existing file
    without ``force``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    draft = out.with_name(f".{out.name}.{os.getpid()}.part")
    draft.write_text(text, encoding="utf-8")
    try:
        load_recipe(draft)
    except RecipeError as exc:
        kept = out.with_name(out.name + ".rejected")
        draft.replace(kept)
        raise UsageError(
            f"the drafted recipe does not validate (kept as {kept} to mend by hand): {exc}"
        ) from exc
    if force:
        draft.replace(out)
        return
    try:
        os.link(draft, out)  # fails if the file appeared meanwhile: never overwritten
    except FileExistsError as exc:
        raise UsageError(f"{out} exists already: give another --out or --name, or --force") from exc
    finally:
        draft.unlink()


def _header(request: ScaffoldRequest, out: Path, side: ArchiveSide, today: date) -> list[str]:
    return [
        *comment(
            f"Drafted by `runner.py scaffold` on {today.isoformat()} from what {request.url} "
            f"showed after logging in at {request.login_url}. The source section is what was "
            f"found there; everything after it is copied from {side.shown}. Read the comments "
            "marked check:, then"
        ),
        f"#   .venv/bin/python runner.py check {shown_path(out)}",
        f"#   .venv/bin/python runner.py try {shown_path(out)} list",
    ]


def _found(draft: SourceDraft, request: ScaffoldRequest, window: str | None) -> list[str]:
    login = draft.login
    controls = ", ".join(x for x in (login.user, login.password, login.submit) if x)
    lines = [f"login form {login.marker} at {request.login_url} ({controls}): logged in"]
    if draft.query is not None:
        lines.append(
            f"query dates {draft.query.start}, {draft.query.end}: filled with {window} and sent"
        )
    table = draft.table
    where = f" in frame {' > '.join(draft.frames)}" if draft.frames else ""
    lines.append(
        f"table {table.selector}{where}, rows {table.rows}: {table.count} rows on the first page"
    )
    columns = ", ".join(
        f"{f.note or '?'} → {f.name}" for f in draft.fields if f.prop is None or f.name != "href"
    )
    lines.append(f"columns: {columns}")
    lines.append(f"key: {draft.key.template} ({draft.key.note})")
    lines.append(f"paginator: {draft.pager.selector}" if draft.pager else "paginator: none found")
    if table.download is not None:
        lines.append(
            f"download links ({table.download.text}): {table.download.rows} of {table.count} rows"
        )
    elif draft.detail is not None:
        lines.append(
            f"download link on each row's own page: {draft.detail.link.selector} "
            f"(seen on {table.row_link.first if table.row_link else '?'})"
        )
    else:
        lines.append("download links: none found")
    return lines


def _checks(draft: SourceDraft) -> list[str]:
    checks = []
    table = draft.table
    if table.download is not None and table.download.rows < table.count:
        missing = table.count - table.download.rows
        checks.append(
            f"rows without a {table.download.text} link: {missing} on the first page; they "
            "may need a generate step"
        )
    if not draft.key.sure:
        checks.append(f"the key: {draft.key.note}")
    if draft.pager is None:
        checks.append("no paginator found: one page of rows?")
    if draft.placeholders:
        checks.append(
            "the archive side reads row fields this list does not show: "
            + ", ".join(draft.placeholders)
            + " (left empty in `detail`)"
        )
    if table.download is None and draft.detail is None:
        checks.append("no download link found: the download step is a placeholder")
    checks += draft.column_notes
    return checks
