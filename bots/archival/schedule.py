"""The retention schedule (保管期限表): a data file that says how long each kind of record
is kept, and under which department code it is filed.

It is data an archivist owns, not recipe logic: one schedule serves every recipe that
captures the same kind of records, and it changes when the rules change, not when a
legacy system's pages do. A report that no rule covers is refused with that reason,
never given a default period.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from ..errors import BusinessError, RecipeError
from ..templating import TemplateProblem, check_expression, evaluate
from ..yamlfile import read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    name: str = Field(min_length=1)  # the schedule's own wording, e.g. 年度财务会计报告
    when: str  # a condition over `row`, the listing row
    retention: Literal["Y", "D30", "D10"]
    department: str = Field(pattern=r"^[A-Z0-9]{2,8}$")
    line: int = Field(default=0, alias="__line__")


class ScheduleFile(_Strict):
    schedule: str = Field(min_length=1)  # its title, e.g. 会计档案保管期限表
    basis: str = ""  # the regulation it follows
    rules: list[Rule] = Field(min_length=1)


@dataclass(frozen=True)
class Classification:
    """What the schedule says about one report."""

    retention: str
    department: str
    rule: str  # the rule's name, for the record
    schedule: str

    def as_vars(self) -> dict[str, str]:
        return {
            "retention": self.retention,
            "department": self.department,
            "rule": self.rule,
            "name": self.schedule,
        }


class NotCovered(BusinessError):
    """No rule of the schedule covers this report."""


@dataclass(frozen=True)
class RetentionSchedule:
    spec: ScheduleFile
    path: Path
    digest: str  # part of the recipe's version: a changed schedule retries held reports

    def where(self, rule: Rule) -> str:
        return f"{self.path}:{rule.line}" if rule.line else str(self.path)

    def classify(self, row: dict[str, Any], context: dict[str, Any]) -> Classification:
        """The first rule whose condition holds for ``row``; NotCovered if none does."""
        variables = {**context, "row": row}
        for rule in self.spec.rules:
            try:
                if evaluate(rule.when, variables):
                    return Classification(
                        rule.retention, rule.department, rule.name, self.spec.schedule
                    )
            except TemplateProblem as exc:
                raise BusinessError(f"{self.where(rule)}: {exc}") from exc
        shown = {k: v for k, v in row.items() if k in ("kind", "title", "department")} or row
        raise NotCovered(
            f"no rule of the retention schedule {self.path.name} ({self.spec.schedule}) covers "
            f"this report ({', '.join(f'{k}={v!r}' for k, v in shown.items())}); add a rule "
            "for it rather than guessing a period"
        )


def load_schedule(path: Path) -> RetentionSchedule:
    """Read and validate a schedule file; raise RecipeError naming file and line."""
    raw, tree = read_yaml(path, "retention schedule", "retention schedules")
    if not isinstance(tree, CommentedMap):
        raise RecipeError([(f"{path}:1", "a schedule is a mapping with `schedule` and `rules`")])
    try:
        spec = ScheduleFile.model_validate(_plain(tree))
    except ValidationError as exc:
        raise RecipeError(
            [(f"{path}:{_line(tree, e['loc'])}", _describe(e)) for e in exc.errors()]
        ) from exc
    problems = []
    for rule in spec.rules:
        try:
            check_expression(rule.when)
        except TemplateProblem as exc:
            problems.append((f"{path}:{rule.line}", str(exc)))
    if problems:
        raise RecipeError(problems)
    return RetentionSchedule(spec, path, hashlib.sha256(raw).hexdigest())


def _plain(tree: CommentedMap) -> dict[str, Any]:
    data = {str(k): v for k, v in tree.items()}
    rules = tree.get("rules")
    if isinstance(rules, CommentedSeq):
        data["rules"] = [
            {**dict(rule), "__line__": rules.lc.item(i)[0] + 1}
            if isinstance(rule, CommentedMap)
            else rule
            for i, rule in enumerate(rules)
        ]
    return data


def _line(tree: CommentedMap, loc: tuple[Any, ...]) -> int:
    node: Any = tree
    line = 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line, node = node.lc.key(part)[0] + 1, node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line, node = node.lc.item(part)[0] + 1, node[part]
    return line


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "missing":
        return f"`{where}` is required but missing"
    if err["type"] == "extra_forbidden":
        return f"unknown key `{err['loc'][-1]}`"
    return f"{where}: {err['msg']}"
