"""The fake driver: sessions on in-memory systems, through the same protocol as the web's.

A session turns the system's answers into the fleet's errors the way the web driver
does: a scripted failure is a ``StepFailed`` (retryable), a session the system dropped
is ``SessionExpired`` (or, on a silent system, a ``StepFailed`` while ``is_logged_out()``
is true), a login page where a file belongs is an ``UnexpectedPage``, a cut transfer an
``Incomplete``, a refusal is a ``BusinessError``, a step that does not fit a page that
answered a ``RecipeStepError``. Its ``upload`` is the step that may commit: it calls
``on_commit`` before it is sent, as the web driver's ``submit`` does. Steps never retry:
the pipeline's stage runner does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.drivers import DriverSpec, SessionConfig, StepContext, StepOutcome, TableCursor
from bots.drivers import register as register_driver
from bots.drivers import unregister as unregister_driver
from bots.drivers.base import ScreenshotRefused, screenshot_each
from bots.errors import (
    BusinessError,
    DriverError,
    Incomplete,
    NotFound,
    RecipeStepError,
    SessionExpired,
    StepFailed,
    TransientError,
)
from bots.files import StagingWriter, check_received, safe_filename
from bots.recipe.steps import PageCondition, StepBase, assign, extract
from bots.templating import TemplateProblem, evaluate, render

from .steps import FAKE_STEPS, FakeStep
from .systems import LOGIN_PAGE, Answer, FakeArchive, FakeSystem, FakeWorld

NAME = "fake"
# The smallest valid PNG (1x1, transparent): evidence gets a real file to hash.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass
class Call:
    """One step about to run, as a handler sees it."""

    session: FakeSession
    step: StepBase
    context: StepContext
    outcome: StepOutcome

    @property
    def system(self) -> FakeSystem:
        return self.session.system

    @property
    def args(self) -> Any:
        return self.step.args

    def render(self, template: str) -> str:
        return render(template, self.context.variables)

    def failed(self, problem: str) -> StepFailed:
        where = self.session.config.recipe.where(self.step.line)
        return StepFailed(where, self.step.kind, problem, self.session.location)

    def request(self) -> Answer:
        """Send this step to the system: the call is recorded, faults apply."""
        context = self.context
        answer = self.system.receive(self.session.id, self.step.kind, context.phase, context.key)
        if answer.logged_out == "loud":
            raise SessionExpired(f"{self.system.name} says the session has expired")
        if answer.logged_out == "silent":
            raise self.failed("nothing there: the page is the login form")
        if answer.failure is not None:
            raise self.failed(answer.failure)
        if "misfit" in answer.effects:  # the page answered; the step does not fit it
            where = self.session.config.recipe.where(self.step.line)
            raise RecipeStepError(
                where,
                self.step.kind,
                None,
                self.session.location,
                answer.effects["misfit"] or "nothing on the page matches the step",
                f"title {self.system.name!r}, text ''",
            )
        return answer


Handler = Callable[[Call], None]
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


@handles("open")
def _open(call: Call) -> None:
    call.request()
    path = call.render(call.args)
    call.session.path = path
    if path == "/logout":  # the recipe's `logout` steps: the system ends the session
        call.system.log_out(call.session.id)
    view = call.system.show(path)
    if view is None:
        message = f"{call.system.name} answered HTTP 404 for {call.session.location}"
        if call.context.phase in ("confirm", "fixity"):  # as the web driver's `goto`
            raise NotFound(message)
        raise call.failed(message)
    call.session.view = view


@handles("login")
def _login(call: Call) -> None:
    call.request()
    username, password = call.render(call.args.username), call.render(call.args.password)
    call.system.authenticate(call.session.id, username, password)
    call.session.view = {}


@handles("table")
def _table(call: Call) -> None:
    args, context = call.args, call.context
    if context.cursor is None:
        context.cursor = TableCursor()
    cursor = context.cursor
    while not cursor.done:
        call.request()  # one call per page: a retry resumes at the page reached
        rows = call.system.rows(call.session.path)
        start = cursor.pages * args.page_size
        page = rows[start : start + args.page_size]
        missing = sorted({f for f in args.fields for row in page if f not in row})
        if missing:
            raise call.failed(f"the rows show no {', '.join(missing)}")
        shown: list[dict[str, str | None]] = [{f: row[f] for f in args.fields} for row in page]
        cursor.rows.extend(shown)
        call.outcome.rows.extend(shown)
        cursor.pages += 1
        cursor.done = start + args.page_size >= len(rows)
        if context.on_rows is not None:
            context.on_rows(shown, [row.get("id") for row in page])


@handles("download")
def _download(call: Call) -> None:
    staging = call.context.staging_dir
    if staging is None:
        raise RuntimeError("a download step ran with no staging folder given")
    answer = call.request()
    ident = call.render(call.args.id)
    found = call.system.fetch(ident)
    if found is None:
        raise call.failed(f"HTTP 404 for {ident}")
    filename, data = found
    if "html" in answer.effects:
        data = LOGIN_PAGE
    if "truncate" in answer.effects:
        raise Incomplete(
            f"received {len(data) // 2} of the {len(data)} bytes {call.system.name} declared "
            f"for {filename!r}: the connection closed early"
        )
    # As the web driver does: stored under a safe name, the name as sent kept beside it.
    stored = safe_filename(filename, safe_filename(call.context.key or "download", "download"))
    writer = StagingWriter(staging / stored, original=filename)
    writer.write(data)
    staged = writer.commit()
    max_bytes = int(call.session.config.recipe.recipe.limits.max_file_mb * 1024 * 1024)
    check_received(staged, max_bytes)
    call.outcome.downloaded = staged


@handles("upload")
def _upload(call: Call) -> None:
    archive = call.system
    if not isinstance(archive, FakeArchive):
        raise AssertionError(f"{archive.name} takes no uploads")
    # The one step that may commit: the pipeline records its intent before it is sent.
    if call.context.on_commit is not None and archive.announces_commit:
        call.context.on_commit()
    answer = call.request()
    key, path = call.render(call.args.key), Path(call.render(call.args.file))
    if "refuse" in answer.effects:
        raise BusinessError(f"{archive.name} refused: {answer.effects['refuse']}")
    metadata = dict(call.context.variables.get("meta") or {})
    item = archive.ingest(key, metadata, path.name, path.read_bytes())
    if "acknowledge_only" in answer.effects:
        archive.items.remove(item)
    if "lose_answer" in answer.effects:
        raise TransientError(f"no answer from {archive.name}: whether it was taken is unknown")
    call.session.view = {"archive_id": item.archive_id, "reference_code": item.reference_code}


@handles("fill")
def _fill(call: Call) -> None:
    call.request()
    call.session.form[call.args.selector] = call.render(call.args.value)


@handles("find")
def _find(call: Call) -> None:
    archive = call.system
    if not isinstance(archive, FakeArchive):
        raise AssertionError(f"{archive.name} has nothing to find")
    call.request()
    call.session.view = archive.find(call.render(call.args.key))


@handles("read")
def _read(call: Call) -> None:
    call.request()
    args = call.args
    value = call.session.view.get(args.what)
    if value is None and not args.optional:
        raise call.failed(f"the page shows no {args.what}")
    if value is not None and args.pattern is not None:
        shown, value = value, extract(args.pattern, value)
        if value is None and not args.optional:
            raise call.failed(f"pattern {args.pattern!r} does not match the value read: {shown!r}")
    call.context.variables[args.into] = value or ""


@handles("set")
def _set(call: Call) -> None:
    assign(call.args, call.context.variables)


class FakeSession:
    """One session on one fake system: the page it shows now, and its steps."""

    def __init__(self, system: FakeSystem, config: SessionConfig) -> None:
        self.system = system
        self.config = config
        self.id = system.connect()
        self.path = "/"
        self.view: dict[str, str] = {}
        self.form: dict[str, str] = {}  # what `fill` steps typed

    @property
    def location(self) -> str:
        return f"{self.system.url}{self.path}"

    def run(self, steps: Sequence[StepBase], context: StepContext) -> StepOutcome:
        outcome = StepOutcome()
        for step in steps:
            where = self.config.recipe.where(step.line)
            try:
                if not self.applies(step.when, context):
                    continue
                HANDLERS[step.kind](Call(self, step, context, outcome))
            except TemplateProblem as exc:
                raise BusinessError(f"{where}: {exc}") from exc
            self.config.on_success()
            self.config.emit(
                "step",
                key=context.key,
                system=self.config.system,
                phase=context.phase,
                step=step.kind,
                line=step.line,
                url=self.location,
            )
        return outcome

    def applies(self, when: str | PageCondition | None, context: StepContext) -> bool:
        """A step's condition: an expression, or a page condition in the fake's terms:
        its selector names a value the page shows now (``archive_id`` after an upload or
        a find). The fake's pages never change by themselves: ``timeout`` waits for nothing."""
        if when is None:
            return True
        if isinstance(when, str):
            return bool(evaluate(when, context.variables))
        shown = bool(self.view.get(render(when.selector, context.variables)))
        return shown == when.present

    def is_logged_out(self) -> bool:
        return not self.system.is_live(self.id)

    def screenshot(self, path: Path, target: Any = None) -> None:
        path.write_bytes(PNG)

    def screenshot_rows(self, shots: Sequence[tuple[Path, Any]]) -> list[ScreenshotRefused | None]:
        return screenshot_each(self.screenshot, shots)

    def close(self) -> None:
        self.system.disconnect(self.id)


class FakeDriver:
    """Opens sessions on the world's systems, by the target a recipe renders."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.sessions: list[FakeSession] = []

    def open(self, config: SessionConfig) -> FakeSession:
        system = self.world.systems.get(config.target)
        if system is None:
            raise DriverError(f"no fake system at {config.target!r}")
        session = FakeSession(system, config)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.sessions.clear()


def spec(world: FakeWorld) -> DriverSpec:
    def start(env: Mapping[str, str]) -> FakeDriver:
        world.drivers_started += 1
        return FakeDriver(world)

    return DriverSpec(
        NAME,
        FAKE_STEPS,
        FakeStep,
        start,
        system_fields={"base_url": (str, ...)},
        target=lambda spec: spec.base_url,
        target_field="base_url",
    )


@contextmanager
def registered(world: FakeWorld) -> Iterator[FakeWorld]:
    """The fake driver in the registry, working ``world``, for the time of the block."""
    register_driver(spec(world))
    try:
        yield world
    finally:
        unregister_driver(NAME)
