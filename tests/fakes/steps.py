"""The fake driver's step vocabulary: small, but obeying every section rule a recipe has.

``open`` goes to a path, ``login`` sends the credential, ``table`` reads the system's
list page by page, ``download`` fetches a file by id, ``fill`` types into a form field,
``upload`` sends the staged file with the item's metadata, ``find`` looks an item up by
its source key, and ``read`` copies one value the system shows now into a variable.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from bots.recipe.steps import (
    RESERVED_NAMES,
    Identifier,
    Pattern,
    StepBase,
    Strict,
    step_union,
    vocabulary,
)


class LoginArgs(Strict):
    username: str = "{{ credential.username }}"
    password: str = "{{ credential.password }}"


class TableArgs(Strict):
    key: str  # template over `row`: the document's source key
    fields: list[Identifier] = Field(min_length=1)  # what each row shows
    page_size: int = Field(default=2, ge=1)


class DownloadArgs(Strict):
    id: str  # template: the report's id (source) or the item's archive id (archive)


class UploadArgs(Strict):
    key: str  # template: the source key the archive files the item under
    file: str = "{{ file.path }}"


class FillArgs(Strict):
    selector: str  # a field of the form the system shows now
    value: str  # template


class FindArgs(Strict):
    key: str  # template: the source key to look up


class ReadArgs(Strict):
    what: Identifier  # a value the system shows now: archive_id, reference_code, sha256
    into: Identifier
    optional: bool = False  # nothing shown: the variable is empty (a search miss)
    pattern: Pattern | None = None  # keep the first group of its match (as the web's read)

    @field_validator("into")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_NAMES:
            raise ValueError(f"`into: {name}` would overwrite a name the bot provides")
        return name


class Open(StepBase):
    open: str


class Login(StepBase):
    login: LoginArgs


class Table(StepBase):
    table: TableArgs


class Download(StepBase):
    download: DownloadArgs


class Upload(StepBase):
    upload: UploadArgs


class Fill(StepBase):
    fill: FillArgs


class Find(StepBase):
    find: FindArgs


class Read(StepBase):
    read: ReadArgs


FAKE_STEPS: dict[str, type[StepBase]] = vocabulary(
    {
        "open": Open,
        "login": Login,
        "table": Table,
        "download": Download,
        "upload": Upload,
        "fill": Fill,
        "find": Find,
        "read": Read,
    }
)
FakeStep: Any = step_union(FAKE_STEPS)
