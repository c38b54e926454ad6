"""Recipe validation: every error names the file, the line and the problem."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bots.errors import RecipeError
from bots.recipe import load_recipe
from tests.conftest import DEMO_RECIPE, ROOT


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = DEMO_RECIPE.read_text(encoding="utf-8")
    assert old in text, f"test is stale: {old!r} no longer in demo.yaml"
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    shutil.copytree(ROOT / "recipes" / "schedules", tmp_path / "schedules", dirs_exist_ok=True)
    return path


def schedule_variant(tmp_path: Path, old: str, new: str) -> Path:
    """The demo recipe beside a changed copy of its retention schedule; returns the schedule."""
    write_variant(tmp_path, "recipe: demo", "recipe: demo")
    schedule = tmp_path / "schedules" / "accounting.yaml"
    text = schedule.read_text(encoding="utf-8")
    assert old in text, f"test is stale: {old!r} no longer in the schedule"
    schedule.write_text(text.replace(old, new, 1), encoding="utf-8")
    return schedule


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return info.value.problems


def test_demo_recipe_is_valid() -> None:
    loaded = load_recipe(DEMO_RECIPE)
    assert loaded.name == "demo"
    assert len(loaded.digest) == 64
    assert loaded.recipe.source.credential == "demo-erp"
    assert loaded.recipe.archive.credential == "demo-archive"


def test_misspelled_step_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "    - goto: /ingest", "    - gotoo: /ingest")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'gotoo')}"
    assert "unknown step 'gotoo'" in what and "did you mean 'goto'" in what


def test_missing_required_field_names_its_parent_line(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "  credential: demo-erp\n", "")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'source:')}"
    assert "`source.credential` is required but missing" in what


def test_unknown_key_inside_a_step(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        '- read: {selector: "#sha256", into: sha256}',
        '- read: {selector: "#sha256", into: sha256, intoo: x}',
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'intoo')}"
    assert "unknown key `intoo`" in what


def test_two_actions_in_one_step_are_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "    - goto: /ingest", "    - goto: /ingest\n      click: '#x'")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'goto: /ingest')}"
    assert "exactly one action, found goto, click" in what


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "    - goto: /ingest", "    - gotoo: /ingest")
    text = path.read_text(encoding="utf-8").replace("  credential: demo-archive\n", "")
    path.write_text(text, encoding="utf-8")
    found = problems(path)
    assert len(found) == 2
    assert {what.split(":")[0] for _, what in found} >= {"archive.upload[0]"}


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "recipe: x\nsource:\n  base_url: [unclosed\n  credential: a\n", encoding="utf-8"
    )
    [(where, what)] = problems(path)
    assert where.startswith(f"{path}:")
    assert int(where.rsplit(":", 1)[1]) in (3, 4, 5)
    assert what.startswith("invalid YAML")


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "recipe: demo\n", "recipe: demo\nrecipe: other\n")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'recipe: other')}"
    assert "duplicate" in what


def test_template_syntax_error_is_found_before_running(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, 'title: "{{ row.title or content.title }}"', 'title: "{{ row.title }"'
    )
    [(where, what)] = problems(path)
    bad_line = line_of(path, '"{{ row.title }"')
    assert where == f"{path}:{bad_line}"
    assert "invalid template" in what


def test_condition_syntax_error_is_found(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "when: not row.href", "when: not row.href ==")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'when: not row.href ==')}"
    assert "invalid expression" in what


def test_list_without_table_is_refused(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "          - table:", "          - tablee:")
    found = problems(path)
    assert any("unknown step 'tablee'" in what for _, what in found)


def test_upload_must_read_back_the_archive_id(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "into: archive_id}", "into: archive_no}")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, '  upload:')}"
    assert "into: archive_id" in what


def test_retention_period_must_be_known(tmp_path: Path) -> None:
    schedule = schedule_variant(tmp_path, "retention: D30", "retention: D20")
    [(where, what)] = problems(tmp_path / "variant.yaml")
    assert where == f"{schedule}:{line_of(schedule, 'retention: D20')}"
    assert "rules.1.retention" in what


def test_schedule_rule_may_only_read_listed_fields(tmp_path: Path) -> None:
    schedule = schedule_variant(tmp_path, "when: row.kind == '凭证汇总表'", "when: row.knd == 'x'")
    [(where, what)] = problems(tmp_path / "variant.yaml")
    assert where == f"{schedule}:{line_of(schedule, 'name: 记账凭证')}"  # the rule's line
    assert "`row.knd` is not defined" in what


def test_missing_schedule_file_is_named(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "schedules/accounting.yaml", "schedules/nope.yaml")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'retention_schedule:')}"
    assert "nope.yaml" in what and "does not exist" in what


def test_unknown_metadata_field_suggests_the_right_one(tmp_path: Path) -> None:
    path = write_variant(tmp_path, '  doc_number: ""', '  doc_numbr: ""')
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'metadata:')}"
    assert "unknown metadata field 'doc_numbr'" in what and "did you mean 'doc_number'" in what


def test_mandatory_metadata_must_be_mapped(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "  date: \"{{ row.date | replace('-', '') }}\"\n", "")
    [(_, what)] = problems(path)
    assert "mandatory metadata missing: date (日期)" in what


def test_changing_the_schedule_changes_the_recipe_digest(tmp_path: Path) -> None:
    write_variant(tmp_path, "recipe: demo", "recipe: demo")
    before = load_recipe(tmp_path / "variant.yaml").digest
    schedule_variant(tmp_path, "retention: D30", 'retention: "Y"')
    assert load_recipe(tmp_path / "variant.yaml").digest != before


def test_read_may_not_overwrite_bot_names(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "into: reference_code}", "into: row}")
    [(_, what)] = problems(path)
    assert "would overwrite a name the bot provides" in what


def test_not_utf8_recipe(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("recipe: demo\n# 注释\n".encode("gbk"))
    [(where, what)] = problems(path)
    assert where == f"{path}:2"
    assert "not UTF-8" in what


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    [(where, what)] = problems(path)
    assert where == f"{path}:1" and "mapping" in what


def test_check_command_reports_and_contacts_nothing(tmp_path: Path) -> None:
    """`runner.py check` on a broken recipe exits 2, names file and line, opens no connection."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        path = write_variant(tmp_path, "    - goto: /ingest", "    - clik: '#x'")
        text = path.read_text(encoding="utf-8")
        text = text.replace("'http://127.0.0.1:8301'", f"'{url}'").replace(
            "'http://127.0.0.1:8302'", f"'{url}'"
        )
        path.write_text(text, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "runner.py", "check", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    assert result.returncode == 2
    assert f"{path}:{line_of(path, 'clik')}" in result.stderr
    assert "unknown step 'clik'" in result.stderr


def test_check_command_accepts_the_demo_recipe() -> None:
    result = subprocess.run(
        [sys.executable, "runner.py", "check", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "ok (recipe 'demo'" in result.stdout


def test_minimal_recipe_with_shorthands(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(
        textwrap.dedent("""\
        recipe: mini
        source:
          system: S
          base_url: http://127.0.0.1:1
          credential: s
          window: {start: "2024-01-01", end: "{{ today }}"}
          login: [{goto: /}, {click: "#go"}]
          list:
            - table: {selector: table, rows: tr, fields: {id: td}, key: "{{ row.id }}"}
          download: [{download: {href: "/f?id={{ row.id }}"}}]
        archive:
          system: A
          base_url: http://127.0.0.1:2
          credential: a
          login: [{goto: /}]
          upload:
            - upload: {selector: "input[type=file]"}
            - read: {selector: "#id", into: archive_id}
        metadata:
          {fonds: Z1, category: WS, year: "2024", retention: D10, department: AB,
           title: "{{ row.id }}", author: x, date: "20240101"}
        retention_schedule: schedule.yaml
        """),
        encoding="utf-8",
    )
    (tmp_path / "schedule.yaml").write_text(
        "schedule: s\nrules:\n  - {name: all, when: 'true', retention: D10, department: AB}\n",
        encoding="utf-8",
    )
    loaded = load_recipe(path)
    click = loaded.recipe.source.login[1]
    assert click.kind == "click" and click.args.selector == "#go" and not click.args.optional
    assert loaded.schedule.spec.rules[0].line == 3


# -- issue 11: the language real apps need -------------------------------------------------

UPLOAD_STEP = "    - goto: /ingest\n"


def with_steps(tmp_path: Path, steps: str) -> Path:
    """The demo recipe with ``steps`` (indented as upload steps) before its first one."""
    return write_variant(
        tmp_path, UPLOAD_STEP, textwrap.indent(textwrap.dedent(steps), "    ") + UPLOAD_STEP
    )


def test_new_syntax_loads(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        "  credential: demo-erp\n",
        "  credential: demo-erp\n  locale: en-US\n  timezone: Europe/Berlin\n",
    )
    text = path.read_text(encoding="utf-8").replace(
        UPLOAD_STEP,
        textwrap.indent(
            textwrap.dedent("""\
            - set: {report_id: "{{ row.id | search('([0-9]+)') }}", year: "{{ row.date[:4] }}"}
            - read: {selector: "a.view", property: href, pattern: "id=(\\\\d+)", into: view_id}
            - expect: {selector: "a.logout", state: attached}
            - fill: {selector: "input[name=x]", value: "{{ year }}", state: attached}
            - fill: {fields: {"input[name=y]": "1"}, state: attached}
            - check: {selector: "input[name=c]", state: attached}
            - uncheck: "input[name=d]"
            - select: {selector: "select[name=tags]", value: [finance, "{{ meta.category }}"]}
            - select: {selector: "select[name=n]", label: 10}
            - when: {selector: "form#login"}
              click: "#go"
            - when: {selector: "a.logout", present: false, timeout: 2}
              click: "#go"
            """),
            "    ",
        )
        + UPLOAD_STEP,
        1,
    )
    path.write_text(text, encoding="utf-8")
    recipe = load_recipe(path).recipe
    assert (recipe.source.locale, recipe.source.timezone) == ("en-US", "Europe/Berlin")
    assert (recipe.archive.locale, recipe.archive.timezone) == (None, None)
    steps = recipe.archive.upload
    assert steps[0].kind == "set" and list(steps[0].args) == ["report_id", "year"]
    assert steps[1].args.pattern == "id=(\\d+)"
    assert steps[2].args.state == "attached" and steps[5].args.state == "attached"
    assert steps[6].args.state == "visible"
    assert steps[7].args.value == ["finance", "{{ meta.category }}"] and steps[8].args.label == "10"
    assert steps[9].when.selector == "form#login" and steps[9].when.present
    assert (steps[10].when.present, steps[10].when.timeout) == (False, 2)
    assert steps[11].when is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "  locale: en_US",
            "locale 'en_US' is not a language tag such as en-US or zh-CN (did you mean 'en-US'?)",
        ),
        ("  locale: english please", "is not a language tag"),
        (
            "  timezone: Europe/Berln",
            "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        ("  timezone: ../etc/passwd", "unknown time zone"),
    ],
)
def test_locale_and_timezone_are_checked(tmp_path: Path, line: str, message: str) -> None:
    path = write_variant(
        tmp_path, "  credential: demo-archive\n", f"  credential: demo-archive\n{line}\n"
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, line.strip())}"
    assert message in what and what.startswith("archive.")


@pytest.mark.parametrize(
    ("steps", "needle", "message"),
    [
        (
            '- read: {selector: "#x", into: y, pattern: "id=(\\\\d+"}',
            "pattern:",
            "invalid pattern 'id=(\\\\d+': missing )",
        ),
        ("- set: {row: x}", "set: {row", "`row` would overwrite a name the bot provides"),
        (
            "- set: {listing: x}",
            "set: {listing",
            "`listing` would overwrite a name the bot provides",
        ),
        ("- set: {2x: y}", "set: {2x", "should match pattern"),
        ("- set: {}", "set: {}", "at least 1 item"),
        ("- set: {a: '{{ b }'}", "set: {a:", "invalid template"),
        (
            '- expect: {selector: "#x", state: detached}',
            "state: detached",
            "'visible', 'attached' or 'hidden'",
        ),
        (
            '- fill: {selector: "#x", value: v, state: hidden}',
            "state: hidden",
            "'visible' or 'attached'",
        ),
        ('- check: {selector: "#x", state: hidden}', "state: hidden", "'visible' or 'attached'"),
        ('- select: {selector: "#x", value: []}', "value: []", "an empty list chooses nothing"),
        (
            '- select: {selector: "#x", value: [{a: 1}]}',
            "value: [{a",
            "an option is a string, not dict",
        ),
        (
            '- when: {selectr: "#x"}\n  click: "#go"',
            "selectr",
            "unknown key `selectr` in `archive.upload[0].when`",
        ),
        (
            '- when: {selector: "#x", timeout: -1}\n  click: "#go"',
            "timeout: -1",
            "when.timeout: input should be greater than or equal to 0",
        ),
        (
            '- when: 5\n  click: "#go"',
            "when: 5",
            "`when` is an expression (`row.href`) or a page condition",
        ),
        (
            '- when: {selector: "{{ row.nope }}"}\n  click: "#go"',
            "row.nope",
            "`row.nope` is not defined",
        ),
        ('- when: "row.id =="\n  click: "#go"', "row.id ==", "invalid expression"),
    ],
)
def test_new_step_options_are_checked(
    tmp_path: Path, steps: str, needle: str, message: str
) -> None:
    path = with_steps(tmp_path, steps + "\n")
    found = problems(path)
    assert {where for where, _ in found} == {f"{path}:{line_of(path, needle)}"}, found
    assert any(message in what for _, what in found), found


def test_set_counts_as_reading_the_archive_id(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        '    - read: {selector: "#archive-id", into: archive_id}',
        '    - read: {selector: "#archive-id", into: shown}\n'
        "    - set: {archive_id: \"{{ shown | search('A([0-9]+)') }}\"}",
    )
    assert load_recipe(path).recipe.archive.upload[-2].kind == "set"


# -- metadata profiles ----------------------------------------------------------------------

PROFILE = """metadata_profile:
  fields:
    report_id: {label: Report ID, required: true, pattern: "^R\\\\d+$"}
    retention_years: {label: Retention (years), type: integer, values: [1, 3, 10, 30]}
    tags: {label: Tags, type: list}
metadata:
  report_id: "{{ row.id }}"
"""


def profile_variant(tmp_path: Path, profile: str = PROFILE, old: str = "", new: str = "") -> Path:
    path = write_variant(tmp_path, "metadata:\n", profile)
    if old:
        text = path.read_text(encoding="utf-8")
        assert old in text, f"test is stale: {old!r}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_custom_fields_load_beside_the_dat46_ones(tmp_path: Path) -> None:
    profile = load_recipe(profile_variant(tmp_path)).recipe.metadata_profile
    assert profile.dat46 and profile.has_codes
    assert profile.labels() == {
        "report_id": "Report ID",
        "retention_years": "Retention (years)",
        "tags": "Tags",
    }
    assert profile.required()[-1] == "report_id"


def test_unknown_metadata_field_suggests_a_custom_one(tmp_path: Path) -> None:
    path = profile_variant(tmp_path, old='  report_id: "{{', new='  report_ids: "{{')
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'metadata:')}"
    assert "unknown metadata field 'report_ids'" in what and "did you mean 'report_id'" in what
    assert "report_id (Report ID)" in what  # the fields listed include the profile's


def test_a_required_custom_field_must_be_mapped(tmp_path: Path) -> None:
    path = profile_variant(tmp_path, old='  report_id: "{{ row.id }}"\n', new="")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'metadata:')}"
    assert "mandatory metadata missing: report_id (Report ID)" in what


def test_a_custom_field_may_not_take_a_dat46_name_under_dat46(tmp_path: Path) -> None:
    path = profile_variant(tmp_path, old="    tags: {label: Tags", new="    title: {label: Tags")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'metadata_profile:') + 1}"  # its `fields:`
    assert "custom field 'title' (题名) has the name of a DA/T 46 field" in what


def test_a_bad_pattern_is_named_at_its_line(tmp_path: Path) -> None:
    path = profile_variant(tmp_path, old='pattern: "^R\\\\d+$"', new='pattern: "^R(\\\\d+$"')
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'report_id: {label')}"
    assert "metadata_profile.fields.report_id.pattern" in what
    assert "invalid regular expression" in what


def test_allowed_values_must_have_the_fields_type(tmp_path: Path) -> None:
    path = profile_variant(tmp_path, old="values: [1, 3, 10, 30]", new="values: [1, three]")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'retention_years: {label')}"
    assert "allowed value 'three': 'three' must be a whole number" in what


def test_standard_none_drops_the_dat46_fields(tmp_path: Path) -> None:
    path = profile_variant(
        tmp_path, old="metadata_profile:\n", new="metadata_profile:\n  standard: none\n"
    )
    [(where, what)] = problems(path)  # the demo's DA/T fields are unknown now
    assert where == f"{path}:{line_of(path, 'metadata:')}"
    assert "unknown metadata field 'fonds'" in what
    assert "the fields are: report_id (Report ID), retention_years" in what


def test_unknown_standard_is_refused(tmp_path: Path) -> None:
    path = profile_variant(
        tmp_path, old="metadata_profile:\n", new="metadata_profile:\n  standard: dat47\n"
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'standard: dat47')}"
    assert "'dat46' or 'none'" in what


# Hostile recipe files (issue 12): refused with file and line, before any expansion.
_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text("recipe: demo\n" + _LAUGHS, encoding="utf-8")
    [(where, what)] = problems(path)
    assert where == f"{path}:2"
    assert what == "recipes may not use YAML aliases (&/*)"


def test_a_lone_alias_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "recipe: demo", "recipe: demo\nx: *nowhere")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, '*nowhere')}"
    assert "may not use YAML aliases" in what


def test_schedule_aliases_are_refused(tmp_path: Path) -> None:
    schedule = schedule_variant(tmp_path, "rules:", "x: &x 1\nrules:")
    [(where, what)] = problems(tmp_path / "variant.yaml")
    assert where == f"{schedule}:{line_of(schedule, '&x')}"
    assert what == "retention schedules may not use YAML aliases (&/*)"


def test_oversized_recipe_is_refused_before_parsing(tmp_path: Path) -> None:
    from bots.yamlfile import MAX_YAML_BYTES

    path = tmp_path / "huge.yaml"
    path.write_text("recipe: demo\n" + "#" * MAX_YAML_BYTES + "\n", encoding="utf-8")
    [(where, what)] = problems(path)
    assert where == str(path)
    assert f"larger than {MAX_YAML_BYTES:,} bytes" in what


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("source: " + "[" * 2000 + "]" * 2000 + "\n", id="flow"),
        pytest.param("".join("  " * i + f"k{i}:\n" for i in range(300)), id="block"),
    ],
)
def test_deep_nesting_exits_2_with_file_and_line(tmp_path: Path, body: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("recipe: demo\n" + body, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "runner.py", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{path}:" in result.stderr and "levels deep" in result.stderr


def test_alias_bomb_via_check_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text("recipe: demo\n" + _LAUGHS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "runner.py", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{path}:2: recipes may not use YAML aliases (&/*)" in result.stderr


# -- env: an allow-list of environment variables; credentials only in login ---------------


def test_declared_env_names_pass(tmp_path: Path) -> None:
    loaded = load_recipe(DEMO_RECIPE)
    assert loaded.recipe.env == ["ERP_URL", "ARCHIVE_URL"]
    path = write_variant(
        tmp_path, "env: [ERP_URL, ARCHIVE_URL]", "env: [ERP_URL, ARCHIVE_URL, ERP_LANG]"
    )
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "    - goto: /ingest", '    - goto: "/ingest?lang={{ env.ERP_LANG }}"', 1
        ),
        encoding="utf-8",
    )
    # A template reads ERP_LANG (declared): the loader raises nothing about env.
    assert load_recipe(path).recipe.env[-1] == "ERP_LANG"


@pytest.mark.parametrize("template", ["{{ env.PW }}", "{{ env['PW'] }}"])
def test_an_undeclared_env_name_is_refused_with_its_line(tmp_path: Path, template: str) -> None:
    path = write_variant(tmp_path, "    - goto: /ingest", f'    - goto: "/ingest?x={template}"')
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, '/ingest?x=')}"
    assert "`env.PW` is not declared in the recipe's `env:` list" in what


def test_an_undeclared_env_name_in_a_condition_is_refused(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        "    - goto: /ingest",
        "    - goto: /ingest\n      when: env.STAGE == 'test'",
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'env.STAGE')}"
    assert "`env.STAGE` is not declared" in what


def test_no_env_list_means_no_environment(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "env: [ERP_URL, ARCHIVE_URL]\n", "")
    found = problems(path)
    assert [what.split(" is ")[0] for _, what in found] == ["`env.ERP_URL`", "`env.ARCHIVE_URL`"]
    assert [where for where, _ in found] == [
        f"{path}:{line_of(path, '{{ env.ERP_URL')}",
        f"{path}:{line_of(path, '{{ env.ARCHIVE_URL')}",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "PW",
        "DB_PW",
        "erp_pw",
        "ERP_PASSWORD",
        "ERP_PASSWD",
        "DBPWD",
        "API_KEY",
        "APIKEY",
        "FLEET_KEYRING_KEY",
        "GITHUB_TOKEN",
        "CLIENT_SECRET",
        "ERP_CREDENTIALS",
        "BASIC_AUTH",
        "ERP_COOKIE",
        "SESSIONID",
        "PRIVATE_CERT",
    ],
)
def test_a_secret_looking_env_name_is_refused_with_its_line(tmp_path: Path, name: str) -> None:
    path = write_variant(tmp_path, "env: [ERP_URL, ARCHIVE_URL]", f"env: [ERP_URL, {name}]")
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, 'env: [')}"
    assert f"{name!r} looks like the name of a secret" in what


def test_secret_rule_is_on_name_parts() -> None:
    from bots.recipe.model import secret_looking

    # PW only as a whole part: these are not secrets.
    assert not any(secret_looking(n) for n in ("ERP_URL", "UPWARD_URL", "HTTP_PROXY", "TZ"))
    assert secret_looking("erp_Pw") and secret_looking("X_PASS_Y")


def test_env_names_must_be_names_and_unique(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "env: [ERP_URL, ARCHIVE_URL]", "env: [ERP_URL, ERP_URL, 1X]")
    found = problems(path)
    assert all(where == f"{path}:{line_of(path, 'env: [')}" for where, _ in found)
    assert any("'1X' is not an environment variable name" in what for _, what in found)


def test_credential_outside_login_is_refused_naming_the_step(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, "    - goto: /ingest", '    - goto: "/ingest?pw={{ credential.password }}"'
    )
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, '/ingest?pw=')}"
    assert "step 1 (`goto`) of `archive.upload` reads `credential`" in what
    assert "only be used in the `login` steps" in what


@pytest.mark.parametrize(
    ("old", "new", "needle", "named"),
    [
        (  # the find steps are not login steps: a lost session logs in through `login`
            '    - goto: "/items?q={{ meta.remarks | urlencode }}"',
            '    - goto: "/items?q={{ credential.username }}"',
            "/items?q={{ credential",
            "step 1 (`goto`) of `archive.find`",
        ),
        (  # a setting of the system, not a step
            "base_url: \"{{ env.ERP_URL | default('http://127.0.0.1:8301') }}\"",
            'base_url: "http://{{ credential.username }}@127.0.0.1:8301"',
            "base_url: ",
            "`source.base_url`",
        ),
        (  # metadata, and `credential` read whole
            "  fonds: Z109",
            '  fonds: "{{ credential }}"',
            "fonds: ",
            "`metadata.fonds`",
        ),
    ],
)
def test_credential_is_refused_in_find_settings_and_metadata(
    tmp_path: Path, old: str, new: str, needle: str, named: str
) -> None:
    path = write_variant(tmp_path, old, new)
    [(where, what)] = problems(path)
    assert where == f"{path}:{line_of(path, needle)}"
    assert f"{named} reads `credential`" in what


def test_credential_in_login_steps_passes() -> None:
    # demo.yaml fills the password in both systems' login steps (and in a frame's steps).
    text = DEMO_RECIPE.read_text(encoding="utf-8")
    assert text.count("{{ credential.password }}") == 2
    load_recipe(DEMO_RECIPE)
    load_recipe(ROOT / "recipes" / "examples" / "tracker-to-dms.yaml")
