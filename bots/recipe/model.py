"""The recipe schema: what a recipe may say, checked before anything is contacted.

The two systems (`source`, `archive`) each name a driver (`driver:`, default `web`); the
driver brings the vocabulary of their steps (bots.drivers), and this module the rules
every driver's sections obey: one `table` in `list` (or in each of `listings`), a
`download` in `download`, an `upload` that reads `archive_id` back, and so on.
``recipe_model()`` builds the model for the drivers registered now.
"""

from __future__ import annotations

import codecs
import difflib
import re
import zoneinfo
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Generic, TypeVar, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..archival.metadata import FIELDS as METADATA_FIELDS
from ..archival.metadata import MANDATORY, value_problem
from ..drivers import registry
from ..scheduling.spec import RunSchedule
from .steps import (
    RESERVED_NAMES,
    Identifier,
    Seconds,
    StepBase,
    Strict,
    assigned,
    count,
    of_kind,
    walk_steps,
)

__all__ = [
    "RESERVED_NAMES",
    "ArchiveSystem",
    "Listing",
    "ListingPlan",
    "FieldType",
    "MetadataProfile",
    "ProfileField",
    "Recipe",
    "SourceSystem",
    "Standard",
    "StepBase",
    "recipe_model",
    "walk_steps",
]

StepT = TypeVar("StepT")


def _forbid(steps: list[Any], kinds: tuple[str, ...], where: str) -> None:
    for step in walk_steps(steps):
        if step.kind in kinds:
            raise ValueError(f"a `{step.kind}` step cannot appear in {where}")


def _reads(steps: list[Any]) -> set[str]:
    """The variables the steps fill: `read` into them, or `set` them."""
    return set(assigned(steps))


# A language tag as browsers take it: en, en-US, zh-Hans-CN, de-CH-1996.
LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _locale(tag: str) -> str:
    if not LOCALE.match(tag):
        hint = f" (did you mean {tag.replace('_', '-')!r}?)" if "_" in tag else ""
        raise ValueError(f"locale {tag!r} is not a language tag such as en-US or zh-CN{hint}")
    return tag


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown time zone {name!r}{hint}; an IANA name such as Europe/Berlin"
        ) from exc
    return name


class Window(Strict):
    """The listing window, rendered from templates (``{{ today }}`` etc.)."""

    start: str
    end: str


# More would be a denial of service on a legacy system, not a speed-up.
MAX_SESSIONS = 32

CredentialName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class SystemBase(Strict, Generic[StepT]):
    """What the source and the archive system have in common, over one driver's steps."""

    driver: str = registry.DEFAULT_DRIVER  # which driver works this system (bots.drivers)
    system: str  # a name people recognise, for logs and workbooks
    # What a driver needs to reach its system (web: `base_url`; desktop: `app`, ...) is
    # the driver's own: DriverSpec.system_fields, added by `_systems`.
    credential: CredentialName
    # A marker present only when the session is gone (a login form's selector, a login
    # window's title): after a failure, or on a page reached by navigation, it means
    # "log in again", not "retry".
    logged_out: str | None = None
    # The user's language and time zone the system sees (web: the browser's locale,
    # Accept-Language and timezone); absent: the machine's own.
    locale: Annotated[str, AfterValidator(_locale)] | None = None
    timezone: Annotated[str, AfterValidator(_timezone)] | None = None
    login: list[StepT] = Field(min_length=1)
    # Steps that end a session (a logout link), run when a run closes or recycles one:
    # a system that counts logged-in sessions sees them end instead of idling out.
    logout: list[StepT] = Field(default_factory=list)
    # How many sessions the system tolerates at once. A run works its documents in as
    # many lanes (a session on each system) as both its systems allow.
    sessions: int = Field(default=1, ge=1, le=MAX_SESSIONS)
    # A session is logged out and a fresh one logged in after this many documents:
    # a browser's memory grows while one context is reused.
    recycle_after: int = Field(default=200, ge=1)

    @field_validator("login")
    @classmethod
    def _login_steps(cls, steps: list[Any]) -> list[Any]:
        _forbid(steps, ("table", "download", "upload"), "login")
        return steps

    @field_validator("logout")
    @classmethod
    def _logout_steps(cls, steps: list[Any]) -> list[Any]:
        _forbid(steps, ("table", "download", "upload", "submit"), "logout")
        return steps

    @field_validator("sessions")
    @classmethod
    def _sessions_the_driver_allows(cls, sessions: int, info: ValidationInfo) -> int:
        driver = info.data.get("driver", registry.DEFAULT_DRIVER)
        allowed = registry.get(driver).max_sessions if driver in registry.names() else None
        if allowed is not None and sessions > allowed:
            raise ValueError(
                f"the {driver} driver works {allowed} session(s) of a system at a time "
                f"(sessions: {sessions})"
            )
        return sessions


def _table_steps(steps: list[Any], where: str) -> list[Any]:
    if count(steps, "table") != 1:
        raise ValueError(f"`{where}` must contain exactly one `table` step")
    _forbid(steps, ("download", "upload"), where)
    return steps


def _download_steps(steps: list[Any] | None) -> list[Any] | None:
    if steps is None:
        return None
    if count(steps, "download") < 1:
        raise ValueError("`download` must contain a `download` step")
    _forbid(steps, ("table", "upload"), "download")
    return steps


def _detail_steps(steps: list[Any] | None) -> list[Any] | None:
    # Detail pages are read, never listed, downloaded from or uploaded to.
    if steps is not None:
        _forbid(steps, ("table", "download", "upload"), "detail")
    return steps


class Listing(Strict, Generic[StepT]):
    """One of several listings of a source (`source.listings`): its own list pages, its
    keys under their own prefix, and optionally its own detail and download steps."""

    name: Identifier  # the template variable `listing` holds it
    key_prefix: str | None = None  # default "<name>/": prefixed to the table's key
    steps: list[StepT] = Field(min_length=1)
    detail: list[StepT] | None = None  # else the source's `detail`
    download: list[StepT] | None = Field(None, min_length=1)  # else the source's `download`
    line: int = Field(0, alias="__line__")

    @property
    def prefix(self) -> str:
        return f"{self.name}/" if self.key_prefix is None else self.key_prefix

    @field_validator("steps")
    @classmethod
    def _one_table(cls, steps: list[Any]) -> list[Any]:
        return _table_steps(steps, "steps")

    _downloads = field_validator("download")(_download_steps)
    _details = field_validator("detail")(_detail_steps)


@dataclass(frozen=True)
class ListingPlan:
    """One listing as a run works it, whichever form the recipe used: `list` is one plan
    named "" with no key prefix (keys exactly as before `listings` existed)."""

    name: str
    prefix: str
    steps: list[Any]
    detail: list[Any]  # empty: no detail pages
    download: list[Any]


class SourceSystem(SystemBase[StepT], Generic[StepT]):
    window: Window
    # `list` (one listing, keys as the table renders them) or `listings` (several, keys
    # prefixed); exactly one of them.
    listing: list[StepT] | None = Field(None, alias="list", min_length=1)
    listings: list[Listing[StepT]] | None = Field(None, min_length=1)
    # Steps run for each row not yet downloaded, before its download: their `read`s
    # become row fields (row.<into>). A listing's own `detail` replaces them.
    detail: list[StepT] | None = None
    download: list[StepT] | None = Field(None, min_length=1)

    @field_validator("listing")
    @classmethod
    def _one_table(cls, steps: list[Any] | None) -> list[Any] | None:
        return None if steps is None else _table_steps(steps, "list")

    @field_validator("listings")
    @classmethod
    def _listings(cls, listings: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        if listings is None:
            return None
        if info.data.get("listing") is not None:
            raise ValueError("`list` and `listings` are exclusive: use one of them")
        seen: dict[str, int] = {}
        for item in listings:
            if item.name in seen:
                raise ValueError(
                    f"the name {item.name!r} (line {item.line}) is already used by the "
                    f"listing at line {seen[item.name]}; names must be unique"
                )
            seen[item.name] = item.line
        # Keys of different listings must never meet: no prefix may begin another.
        for one in listings:
            for other in listings:
                if one is not other and other.prefix.startswith(one.prefix):
                    raise ValueError(
                        f"the key prefix {one.prefix!r} of listing {one.name!r} begins the "
                        f"prefix {other.prefix!r} of listing {other.name!r}: their keys "
                        "could meet; give each listing a prefix of its own"
                    )
        return listings

    _downloads = field_validator("download")(_download_steps)
    _details = field_validator("detail")(_detail_steps)

    @model_validator(mode="after")
    def _one_form(self) -> SourceSystem[StepT]:
        if self.listing is None and self.listings is None:
            raise ValueError("`list` or `listings` is required (one of them)")
        if self.download is None:
            if self.listings is None:
                raise ValueError("`download` is required with `list`")
            lacking = [item.name for item in self.listings if item.download is None]
            if lacking:
                raise ValueError(
                    f"`download` is required: listing(s) {', '.join(map(repr, lacking))} "
                    "have no `download` of their own"
                )
        return self

    def plans(self) -> list[ListingPlan]:
        """The listings a capture walks, in the recipe's order."""
        if self.listings is None:
            assert self.listing is not None and self.download is not None
            return [ListingPlan("", "", self.listing, self.detail or [], self.download)]
        return [
            ListingPlan(
                item.name,
                item.prefix,
                item.steps,
                (item.detail if item.detail is not None else self.detail) or [],
                item.download or self.download or [],
            )
            for item in self.listings
        ]

    def plan(self, name: str | None) -> ListingPlan | None:
        """The listing a document came from (the ledger's ``listing_name``; None or "":
        the `list` form); None when the recipe no longer has it."""
        return next((p for p in self.plans() if p.name == (name or "")), None)


class ArchiveSystem(SystemBase[StepT], Generic[StepT]):
    upload: list[StepT] = Field(min_length=1)
    # Steps that read the item back after upload; a `read` into `sha256` is compared
    # with the digest taken at download.
    confirm: list[StepT] = Field(default_factory=list)
    # Steps that look the document up in the archive (by source key or digest) and read
    # its archive_id, empty when absent. Run before re-trying an upload whose outcome is
    # unknown (a lost response, a crash after submitting), so nothing is archived twice.
    find: list[StepT] = Field(default_factory=list)
    # Steps that download the stored file back from the archive after ingest: its SHA-256
    # must equal the one taken at download (the fixity check). Optional, but without it
    # the archive's own word is the only evidence of what it holds.
    fixity: list[StepT] = Field(default_factory=list)

    # Steps that walk the archive's own list pages: one `table` whose fields include
    # archive_id (and reference_code, title, size, sha256, ingested_at where shown). What
    # the archive says it holds, for reconciliation: our ledger cannot be the only witness.
    inventory: list[StepT] = Field(default_factory=list)

    @field_validator("inventory")
    @classmethod
    def _inventory_table(cls, steps: list[Any]) -> list[Any]:
        if not steps:
            return steps
        tables = of_kind(steps, "table")
        if len(tables) != 1:
            raise ValueError("`inventory` must contain exactly one `table` step")
        if "archive_id" not in tables[0].args.fields:
            raise ValueError("the `inventory` table must have an `archive_id` field")
        _forbid(steps, ("download", "upload", "submit"), "inventory")
        return steps

    @field_validator("fixity")
    @classmethod
    def _fixity_downloads(cls, steps: list[Any]) -> list[Any]:
        if steps and count(steps, "download") != 1:
            raise ValueError("`fixity` must contain exactly one `download` step")
        _forbid(steps, ("table", "upload"), "fixity")
        return steps

    @field_validator("find")
    @classmethod
    def _find_reads_id(cls, steps: list[Any]) -> list[Any]:
        if steps and "archive_id" not in _reads(steps):
            raise ValueError("`find` must read into archive_id (optional: true for a miss)")
        _forbid(steps, ("table", "download", "upload"), "find")
        return steps

    @field_validator("upload")
    @classmethod
    def _upload_reads_back(cls, steps: list[Any]) -> list[Any]:
        if count(steps, "upload") < 1:
            raise ValueError("`upload` must contain an `upload` step")
        if "archive_id" not in _reads(steps):
            raise ValueError(
                "`upload` must read the assigned id back: "
                "add `read: {selector: ..., into: archive_id}`"
            )
        _forbid(steps, ("table", "download"), "upload")
        return steps

    @field_validator("confirm")
    @classmethod
    def _confirm_steps(cls, steps: list[Any]) -> list[Any]:
        _forbid(steps, ("table", "download", "upload"), "confirm")
        return steps


class Timeouts(Strict):
    step: Seconds = 20.0
    download: Seconds = 300.0


class RetrySettings(Strict):
    """System errors only; business errors are never retried."""

    attempts: int = Field(default=4, ge=1, le=50)  # per stage, counting the first
    backoff: float = Field(default=1.0, ge=0, le=600)  # seconds; doubles, with full jitter
    max_backoff: float = Field(default=30.0, ge=0, le=3600)
    breaker: int = Field(default=8, ge=1, le=1000)  # system errors in a row that stop the run


class Limits(Strict):
    max_file_mb: float = Field(default=1024.0, gt=0)  # larger downloads are refused, mid-stream
    # Opening one file to inspect it (pypdf, pdfminer, openpyxl) runs in a child process
    # with this much address space and time; a file that needs more fails the
    # inspection_bounded check (a decompression bomb is a document problem).
    inspect_mb: float = Field(default=512.0, ge=128, le=65536)
    inspect_seconds: float = Field(default=30.0, gt=0, le=3600)


class FileRules(Strict):
    """What a captured file must be to go into the archive (the usability checks)."""

    accept: list[Annotated[str, Field(pattern=r"^[a-z0-9]{1,10}$")]] = Field(
        default_factory=lambda: ["pdf", "xlsx", "csv"], min_length=1
    )
    csv_encoding: str = "utf-8"  # what the source system writes its CSV files in
    # The size the listing shows, when it shows one (``"{{ row.size }}"``): the file
    # downloaded must have exactly that many bytes. Thousands separators are allowed.
    listed_size: str | None = None

    @field_validator("csv_encoding")
    @classmethod
    def _known_encoding(cls, name: str) -> str:
        try:
            codecs.lookup(name)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {name!r}") from exc
        return name


class Standard(StrEnum):
    """Which standard's item fields (and reference-code rule) a profile starts from."""

    DAT46 = "dat46"  # DA/T 46 fields, their rules, reference codes (档号) and continuity
    NONE = "none"  # only the profile's own fields; no reference codes to check


class FieldType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"  # YYYY-MM-DD or YYYYMMDD
    LIST = "list"  # values separated by ";" once rendered


class ProfileField(Strict):
    """One of the target archive's own fields: what a value must be to be sent."""

    label: str = Field(min_length=1)  # as the archive's form and the exports show it
    type: FieldType = FieldType.TEXT  # noqa: A003 - the recipe's own word
    required: bool = False
    pattern: str | None = None  # Python regex the whole value (each list item) must match
    values: list[str | int] | None = Field(default=None, min_length=1)  # allowed values

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return pattern

    @model_validator(mode="after")
    def _values_fit_type(self) -> ProfileField:
        for value in self.values or ():
            if problem := value_problem(self, str(value)):
                raise ValueError(f"allowed value {value!r}: {problem}")
        return self


class MetadataProfile(Strict):
    """The fields item metadata may map: DA/T 46's (``standard: dat46``), the archive's
    own (``fields``), or both."""

    standard: Standard = Standard.DAT46
    fields: dict[Identifier, ProfileField] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _no_clash(cls, fields: dict[str, ProfileField], info: ValidationInfo) -> Any:
        if info.data.get("standard") is Standard.DAT46:
            clash = [n for n in fields if n in METADATA_FIELDS]
            if clash:
                raise ValueError(
                    "custom field "
                    + ", ".join(f"{n!r} ({METADATA_FIELDS[n].label})" for n in clash)
                    + " has the name of a DA/T 46 field; rename it, or use `standard: none`"
                )
        return fields

    @property
    def dat46(self) -> bool:
        """The DA/T 46 fields and their rules apply."""
        return self.standard is Standard.DAT46

    @property
    def has_codes(self) -> bool:
        """Items get reference codes (档号) that follow the DA/T rule, numbered
        continuously: the checks after upload and the batch's continuity apply."""
        return self.standard is Standard.DAT46

    def names(self) -> dict[str, str]:
        """Every field the metadata may map -> how it is named to a person."""
        dat = (
            {n: f"{n} ({s.label})" for n, s in METADATA_FIELDS.items()}
            if self.standard is Standard.DAT46
            else {}
        )
        return {**dat, **{n: f"{n} ({f.label})" for n, f in self.fields.items()}}

    def required(self) -> list[str]:
        dat = list(MANDATORY) if self.standard is Standard.DAT46 else []
        return dat + [n for n, f in self.fields.items() if f.required]

    def labels(self) -> dict[str, str]:
        """The custom fields' names -> labels, for exports."""
        return {n: f.label for n, f in self.fields.items()}


def _metadata_fields(fields: dict[str, str], info: ValidationInfo) -> dict[str, str]:
    profile = info.data.get("metadata_profile")
    if not isinstance(profile, MetadataProfile):
        return fields  # the profile's own error is reported; nothing to check against
    known = profile.names()
    for name in fields:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        shown = ", ".join(known.values()) or "none (the profile declares no fields)"
        raise ValueError(f"unknown metadata field {name!r}{hint}; the fields are: {shown}")
    missing = [known[n] for n in profile.required() if n not in fields]
    if missing:
        raise ValueError(f"mandatory metadata missing: {', '.join(missing)}")
    return fields


SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# An environment variable's name as the recipe's `env:` list declares it.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The rule for a name that looks like a secret's, which `env:` refuses. The name is cut
# into parts at `_` (and any other character that is not a letter or digit) and compared
# without regard to case: a part that *contains* one of SECRET_WORDS (PASSWORD, DB_PASSWD,
# APIKEY, AUTH_HEADER, SESSIONID) or *is* one of SECRET_PARTS (DB_PW) makes the name a
# secret's. Deliberately wide: a false alarm costs a rename, a miss leaks a password into
# the archive, the ledger and the bag.
SECRET_WORDS = (
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
    "PRIVATE",
)
SECRET_PARTS = frozenset({"PW"})


def secret_looking(name: str) -> bool:
    """Whether an environment variable's name looks like a secret's (the rule above)."""
    parts = [part for part in re.split(r"[^A-Za-z0-9]+", name.upper()) if part]
    return any(part in SECRET_PARTS or any(word in part for word in SECRET_WORDS) for part in parts)


def _env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise ValueError(
            f"{name!r} is not an environment variable name (letters, digits and `_`, "
            "not starting with a digit)"
        )
    if secret_looking(name):
        raise ValueError(
            f"{name!r} looks like the name of a secret; templates may not read secrets "
            "from the environment. Store it as a credential (`runner.py credentials set`) "
            "and use `credential.password` in the login steps"
        )
    return name


def _unique_env(names: list[str]) -> list[str]:
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{name!r} is declared twice")
        seen.add(name)
    return names


class Recipe(Strict):
    recipe: Annotated[str, Field(pattern=SLUG.pattern)]
    description: str = ""
    vars: dict[str, Any] = Field(default_factory=dict)  # noqa: A003 - lookup tables for templates
    # The environment variables templates may read (`env.ERP_URL`): an allow-list, by
    # name. Nothing else of the environment reaches a template; a secret's name is refused.
    env: Annotated[list[Annotated[str, AfterValidator(_env_name)]], AfterValidator(_unique_env)] = (
        Field(default_factory=list)
    )
    # The systems, over their drivers' steps: `recipe_model()` validates them for real.
    source: SourceSystem[Any]
    archive: ArchiveSystem[Any]
    # Which fields item metadata has: DA/T 46's (default) and/or the archive's own.
    # Declared before `metadata`, which is validated against it.
    metadata_profile: MetadataProfile = Field(default_factory=MetadataProfile)
    # Item metadata (the profile's fields): templates over the row, the file, its content
    # and the schedule's classification.
    metadata: Annotated[dict[Identifier, str], AfterValidator(_metadata_fields)]
    # The retention schedule file (保管期限表), relative to the recipe's folder.
    retention_schedule: str = Field(min_length=1)
    files: FileRules = Field(default_factory=FileRules)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    limits: Limits = Field(default_factory=Limits)
    # When it runs by itself (cron, systemd, `runner.py serve`); None: only by hand.
    schedule: RunSchedule | None = None


def _driver_of(data: Any) -> str:
    if isinstance(data, SystemBase):
        return data.driver
    if isinstance(data, dict):
        return str(data.get("driver", registry.DEFAULT_DRIVER))
    return registry.DEFAULT_DRIVER


def _known_driver(data: Any) -> Any:
    """Name an unknown driver (with a suggestion) before the union tries its members."""
    name = _driver_of(data)
    if name not in registry.names():
        raise PydanticCustomError(
            "unknown_driver", "{problem}", {"problem": registry.unknown_driver(name)}
        )
    return data


def _systems(kind: type[SystemBase[Any]]) -> Any:
    """One model of ``kind`` per registered driver, chosen by the system's `driver:`:
    ``kind`` over the driver's steps, with the driver's own system fields."""
    members = tuple(
        Annotated[
            create_model(  # type: ignore[call-overload]
                f"{kind.__name__}_{name}",
                __base__=kind[spec.step_type],  # type: ignore[index]
                **spec.system_fields,
            ),
            Tag(name),
        ]
        for name, spec in ((n, registry.get(n)) for n in registry.names())
    )
    return Annotated[
        Annotated[Union[members], Discriminator(_driver_of)],  # noqa: UP007 - built at run time
        BeforeValidator(_known_driver),
    ]


def recipe_model() -> type[Recipe]:
    """The recipe model for the drivers registered now."""
    return _recipe_model(registry.generation())


@cache
def _recipe_model(_generation: int) -> type[Recipe]:
    return create_model(
        "Recipe",
        __base__=Recipe,
        source=(_systems(SourceSystem), ...),
        archive=(_systems(ArchiveSystem), ...),
    )
