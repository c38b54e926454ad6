"""In-memory systems with their own ground truth: a legacy source and an archive.

They play the part of the Flask simulators (sims/) for unit tests: the tests read what
each system holds and every call it saw, never only the bot's ledger. Faults are
scripted per step kind (``fail``, ``expire``, ``hook``, ``misfit``) and, on the archive
and the source, per effect (``lose_answer``, ``refuse``, ``serve_html``,
``serve_truncated``).

A call is one step the bot sent (one page, for a ``table``), recorded before any fault
applies: a failed attempt is a call like any other.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bots.errors import BusinessError, TransientError

LOGIN_PAGE = b"<!DOCTYPE html><html><body><form name=loginForm>...</form></body></html>\n"


@dataclass(frozen=True)
class Call:
    kind: str  # the step kind
    phase: str  # the recipe section it came from (login, list, download, upload, ...)
    key: str | None  # the document being worked on, when there is one
    session: int


@dataclass
class Rule:
    """A scripted fault: skip ``after`` matching calls, then fire on ``times`` of them
    (``None``: on every one)."""

    kind: str
    # fail, expire, expire_silently, hook, misfit, lose_answer, refuse, html, truncate
    effect: str
    key: str | None = None
    phase: str | None = None
    after: int = 0
    times: int | None = 1
    message: str = ""
    action: Callable[[], None] | None = None

    def fires(self, call: Call) -> bool:
        if self.kind != call.kind or self.key not in (None, call.key):
            return False
        if self.phase not in (None, call.phase):
            return False
        if self.after:
            self.after -= 1
            return False
        if self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass
class Answer:
    """What the system did with one call, for the session to turn into errors."""

    failure: str | None = None  # a scripted transient failure's message
    logged_out: str | None = None  # "loud" (it says so) or "silent" (the page is wrong)
    # lose_answer, refuse, html, acknowledge_only
    effects: dict[str, str] = field(default_factory=dict)


class FakeSystem:
    """What the source and the archive share: accounts, sessions, calls and faults."""

    def __init__(self, name: str, url: str, users: dict[str, str]) -> None:
        self.name = name
        self.url = url
        self.users = users  # username -> password
        self.calls: list[Call] = []
        self.logins: list[str] = []  # the usernames that logged in, in order
        self.sessions_opened = 0
        self.logouts = 0
        self._rules: list[Rule] = []
        self._live: set[int] = set()
        self._dead: dict[int, str] = {}  # session -> how it shows it is gone
        self.peak_live = 0  # the most sessions logged in at once (a run's lanes)
        self.max_live: int | None = None  # refuse a login beyond this many (transient)
        self.refused = 0
        # A run's lanes are threads: the system answers one call at a time, as a
        # legacy system's single database would.
        self.lock = threading.RLock()

    # -- scripting faults -----------------------------------------------------------

    def fail(
        self,
        kind: str,
        *,
        times: int | None = 1,
        after: int = 0,
        key: str | None = None,
        phase: str | None = None,
        message: str = "",
    ) -> None:
        """Matching calls fail with a transient error (a timeout, a 5xx)."""
        text = message or f"{self.name} timed out"
        self._rules.append(Rule(kind, "fail", key, phase, after, times, message=text))

    def expire(
        self,
        kind: str,
        *,
        after: int = 0,
        key: str | None = None,
        phase: str | None = None,
        silently: bool = False,
    ) -> None:
        """Every session dies just before the matching call. A loud system says so
        (SessionExpired); a silent one shows its login page where the step looked for
        something else (a StepFailed, with ``is_logged_out()`` true)."""
        effect = "expire_silently" if silently else "expire"
        self._rules.append(Rule(kind, effect, key, phase, after, 1))

    def hook(
        self,
        kind: str,
        action: Callable[[], None],
        *,
        after: int = 0,
        key: str | None = None,
        phase: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Call ``action`` just before the matching call is answered."""
        self._rules.append(Rule(kind, "hook", key, phase, after, times, action=action))

    def misfit(
        self,
        kind: str,
        *,
        times: int | None = 1,
        key: str | None = None,
        phase: str | None = None,
        message: str = "",
    ) -> None:
        """Matching calls meet a page that answered normally but does not fit the step
        (a wrong selector): a ``RecipeStepError``, not worth another attempt."""
        self._rules.append(Rule(kind, "misfit", key, phase, 0, times, message=message))

    def _effect(
        self, kind: str, effect: str, key: str | None, times: int | None, message: str = ""
    ) -> None:
        self._rules.append(Rule(kind, effect, key, times=times, message=message))

    def heal(self) -> None:
        """Forget every scripted fault (the next run meets a healthy system)."""
        self._rules.clear()

    # -- what tests read --------------------------------------------------------------

    def count(self, kind: str, *, key: str | None = None, phase: str | None = None) -> int:
        return sum(
            c.kind == kind and key in (None, c.key) and phase in (None, c.phase) for c in self.calls
        )

    def keys_touched(self) -> set[str]:
        return {c.key for c in self.calls if c.key is not None}

    # -- the server side, as the fake session sees it ---------------------------------

    def connect(self) -> int:
        with self.lock:
            self.sessions_opened += 1
            session = self.sessions_opened
            self._dead[session] = "loud"  # not logged in yet
            return session

    def disconnect(self, session: int) -> None:
        with self.lock:
            self._live.discard(session)

    def is_live(self, session: int) -> bool:
        return session in self._live

    def receive(self, session: int, kind: str, phase: str, key: str | None) -> Answer:
        """Record one call and say what the scripted faults make of it. A hook's action
        runs outside the system's lock: it may wait for the run's other lanes."""
        call = Call(kind, phase, key, session)
        with self.lock:
            self.calls.append(call)
            fired = [rule for rule in self._rules if rule.fires(call)]
        answer = Answer()
        for rule in fired:
            if rule.effect == "hook":
                assert rule.action is not None
                rule.action()
                continue
            with self.lock:
                if rule.effect in ("expire", "expire_silently"):
                    for live in self._live:
                        silently = rule.effect == "expire_silently"
                        self._dead[live] = "silent" if silently else "loud"
                    self._live.clear()
                elif rule.effect == "fail":
                    answer.failure = rule.message
                else:
                    answer.effects[rule.effect] = rule.message
        with self.lock:
            if phase != "login" and session not in self._live:
                answer.logged_out = self._dead.get(session, "loud")
        return answer

    def authenticate(self, session: int, username: str, password: str) -> None:
        if self.users.get(username) != password:
            raise BusinessError(f"{self.name}: wrong user name or password for {username!r}")
        with self.lock:
            if self.max_live is not None and len(self._live) >= self.max_live:
                self.refused += 1  # a licence for so many users at once: try later
                raise TransientError(f"{self.name}: too many users logged in")
            self._live.add(session)
            self._dead.pop(session, None)
            self.logins.append(username)
            self.peak_live = max(self.peak_live, len(self._live))

    def log_out(self, session: int) -> None:
        with self.lock:
            self._live.discard(session)
            self.logouts += 1

    # What each system serves; the source and the archive override what they have.

    def show(self, path: str) -> dict[str, str] | None:
        """What the page at ``path`` shows; None: there is no such page (HTTP 404)."""
        return {}

    def rows(self, path: str) -> list[dict[str, str]]:
        """The list shown at ``path`` (the page the session opened last)."""
        raise AssertionError(f"{self.name} has no list to read")

    def fetch(self, ident: str) -> tuple[str, bytes] | None:
        raise AssertionError(f"{self.name} has no files to download")


@dataclass(frozen=True)
class Report:
    """One report the legacy system holds."""

    id: str
    title: str
    kind: str  # what the retention schedule classifies by
    department: str
    date: str  # YYYY-MM-DD
    filename: str
    data: bytes
    # Shown only on the report's own page (``/reports/<id>``), never in a list.
    detail: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "department": self.department,
            "date": self.date,
            "size": f"{len(self.data):,}",
        }


def csv_report(
    ident: str,
    title: str,
    date: str,
    *,
    kind: str = "月度财务报表",
    department: str = "财务部",
    detail: dict[str, str] | None = None,
) -> Report:
    """A small UTF-8 CSV report that passes every four-property check."""
    text = (
        f"{title}\n编制部门：{department}\n报表编号,{ident}\n科目,期末余额\n"
        f"货币资金,{len(ident) * 1000 + 17}.00\n应收账款,{len(title) * 100}.50\n"
    )
    return Report(
        ident, title, kind, department, date, f"{title}.csv", text.encode("utf-8"), detail or {}
    )


class FakeSource(FakeSystem):
    """The legacy system: a list of reports, each with its file and its own page.

    ``reports`` is the list every path shows; ``lists`` gives some paths lists of their
    own (several listings: ``/incidents``, ``/changes``), drawn from the same reports.
    """

    def __init__(
        self,
        reports: list[Report],
        users: dict[str, str],
        lists: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__("fake ERP", "fake://erp", users)
        self.reports = list(reports)
        self.lists = dict(lists or {})  # path -> report ids, in order

    def serve_html(self, *, key: str | None = None, times: int | None = 1) -> None:
        """Downloads answer with the login page where the file should be (HTTP 200)."""
        self._effect("download", "html", key, times)

    def serve_truncated(self, *, key: str | None = None, times: int | None = 1) -> None:
        """Downloads stop halfway through the length declared (an ``Incomplete``)."""
        self._effect("download", "truncate", key, times)

    def report(self, ident: str) -> Report:
        return next(r for r in self.reports if r.id == ident)

    def rows(self, path: str) -> list[dict[str, str]]:
        if path in self.lists:
            return [self.report(ident).row() for ident in self.lists[path]]
        return [r.row() for r in self.reports]

    def show(self, path: str) -> dict[str, str]:
        """A report's own page shows its detail fields, and nothing else does."""
        if path.startswith("/reports/"):
            found = [r for r in self.reports if r.id == path.removeprefix("/reports/")]
            if found:
                return dict(found[0].detail)
        return {}

    def fetch(self, ident: str) -> tuple[str, bytes] | None:
        found = [r for r in self.reports if r.id == ident]
        return (found[0].filename, found[0].data) if found else None


@dataclass(frozen=True)
class Item:
    """One item the archive holds."""

    archive_id: str
    reference_code: str
    source_key: str
    metadata: dict[str, Any]
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# The fields the archive numbers an item by: fonds-category·year-retention-department.
CODE_GROUP = ("fonds", "category", "year", "retention", "department")


class FakeArchive(FakeSystem):
    """The archive: items with ids and reference codes, found by source key.

    ``codes=False`` plays an archive with its own fields and no reference codes (a
    recipe's ``metadata_profile`` with ``standard: none``): it refuses an item without
    its ``required`` fields and assigns no code.
    """

    def __init__(
        self,
        users: dict[str, str],
        name: str = "fake archive",
        url: str = "fake://archive",
        *,
        codes: bool = True,
        required: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, url, users)
        self.items: list[Item] = []
        # Ids and item numbers given out, never reused (an item removed keeps its number).
        self.issued: list[str] = []
        self._numbers: dict[str, int] = {}
        self.codes = codes
        self.required = required or (CODE_GROUP if codes else ())
        # False: a driver that cannot tell when its upload commits (never calls on_commit)
        self.announces_commit = True

    def lose_answer(self, *, key: str | None = None, times: int | None = 1) -> None:
        """Uploads are filed, then their answer is lost: the outcome is unknown."""
        self._effect("upload", "lose_answer", key, times)

    def refuse(
        self, *, key: str | None = None, reason: str = "refused", times: int | None = None
    ) -> None:
        """Uploads are refused (a business error): nothing is filed."""
        self._effect("upload", "refuse", key, times, reason)

    def acknowledge_only(self, *, key: str | None = None, times: int | None = 1) -> None:
        """Uploads are answered with an id, but nothing is kept: reading back that id
        answers "not found" (a form that saved nothing, and an id read off the page)."""
        self._effect("upload", "acknowledge_only", key, times)

    def holding(self, source_key: str) -> list[Item]:
        return [i for i in self.items if i.source_key == source_key]

    def ingest(self, source_key: str, metadata: dict[str, Any], filename: str, data: bytes) -> Item:
        """File an item; its reference code is numbered within its group:
        fonds-category·year-retention-department-NNNN (the demo archive's rule), unless
        this archive has no codes."""
        with self.lock:
            return self._ingest(source_key, metadata, filename, data)

    def _ingest(
        self, source_key: str, metadata: dict[str, Any], filename: str, data: bytes
    ) -> Item:
        missing = [name for name in self.required if not metadata.get(name)]
        if missing:
            raise BusinessError(f"{self.name} refused: missing {', '.join(missing)}")
        code = ""
        if self.codes:
            group = "{fonds}-{category}\u00b7{year}-{retention}-{department}".format(**metadata)
            number = self._numbers[group] = self._numbers.get(group, 0) + 1
            code = f"{group}-{number:04d}"
        self.issued.append(f"A{len(self.issued) + 1:05d}")
        item = Item(
            archive_id=self.issued[-1],
            reference_code=code,
            source_key=source_key,
            metadata=dict(metadata),
            filename=filename,
            data=data,
        )
        self.items.append(item)
        return item

    def item(self, archive_id: str) -> Item | None:
        return next((i for i in self.items if i.archive_id == archive_id), None)

    def show(self, path: str) -> dict[str, str] | None:
        if path.startswith("/items/"):
            item = self.item(path.removeprefix("/items/"))
            if item is None:
                return None  # HTTP 404
            return {
                "archive_id": item.archive_id,
                "reference_code": item.reference_code,
                "sha256": item.sha256,
            }
        return {}

    def rows(self, path: str) -> list[dict[str, str]]:
        return [
            {
                "archive_id": i.archive_id,
                "reference_code": i.reference_code,
                "title": str(i.metadata.get("title", "")),
                "size": str(len(i.data)),
            }
            for i in self.items
        ]

    def fetch(self, ident: str) -> tuple[str, bytes] | None:
        item = self.item(ident)
        return (item.filename, item.data) if item else None

    def find(self, source_key: str) -> dict[str, str]:
        found = self.holding(source_key)
        if not found:
            return {}
        return {"archive_id": found[0].archive_id, "reference_code": found[0].reference_code}


class FakeWorld:
    """The two systems a run meets, by the URL a recipe names them with."""

    def __init__(self, source: FakeSource, archive: FakeArchive) -> None:
        self.source = source
        self.archive = archive
        self.drivers_started = 0
        self.others: list[FakeSystem] = []  # more systems, for recipes that name them

    @property
    def systems(self) -> dict[str, FakeSystem]:
        found = {self.source.url: self.source, self.archive.url: self.archive}
        return {**found, **{system.url: system for system in self.others}}
