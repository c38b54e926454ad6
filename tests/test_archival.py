"""Item metadata rules, reference codes, the retention schedule, and safe screenshots."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from bots.archival.evidence import Evidence, ScreenshotRefused
from bots.archival.metadata import (
    check_reference,
    gaps_and_repeats,
    readable,
    reference_code,
    retention_at_least,
    shaped,
    validate,
)
from bots.archival.schedule import NotCovered, load_schedule
from bots.drivers.web.browser import launch
from bots.drivers.web.session import password_filled, screenshot_page
from bots.files import key_folder
from bots.ledger import Ledger, queries
from bots.recipe.model import ProfileField
from bots.redaction import Redactor
from bots.runlog import RunLog
from tests.conftest import ROOT

TODAY = dt.date(2026, 11, 21)
GOOD = {
    "fonds": "Z109",
    "category": "KU",
    "year": "2025",
    "retention": "D10",
    "department": "CWB",
    "title": "2025年1月资金日报表",
    "author": "财务部",
    "date": "20250131",
    "doc_number": "",
    "classification": "内部",
    "pages": "12",
    "remarks": "",
}


def test_good_metadata_passes() -> None:
    result = validate(GOOD, TODAY)
    assert result.ok, result


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("year", "20x5", "年度 (year): '20x5' must be four digits"),
        ("year", "1900", "年度 (year): 1900 is outside 1949-2027"),
        ("date", "20250230", "日期 (date): 20250230 is not a calendar date"),
        ("date", "2025-01-31", "must be 8 digits, YYYYMMDD"),
        ("date", "20261231", "not a plausible date"),
        ("retention", "D20", "保管期限 (retention): 'D20' is not one of 'D10', 'D30', 'Y'"),
        ("category", "XX", "门类代码 (category): 'XX' is not one of"),
        ("classification", "绝密", "密级 (classification): '绝密' is not one of"),
        ("department", "cwb", "must be 2-8 capital letters or digits"),
        ("fonds", "Z 109", "must be 1-12 capital letters or digits"),
        ("pages", "3页", "页数 (pages): '3页' must be a whole number"),
        ("title", "x" * 201, "is 201 characters long, at most 200"),
        ("title", "报表\x07", "contains control characters"),
    ],
)
def test_each_bad_value_is_named(field: str, value: str, says: str) -> None:
    result = validate({**GOOD, field: value}, TODAY)
    assert not result.missing
    assert any(says in problem for problem in result.invalid), result.invalid


def test_blank_mandatory_fields_are_missing_not_invalid() -> None:
    result = validate({**GOOD, "title": "  ", "author": ""}, TODAY)
    assert result.missing == ["题名 (title)", "责任者 (author)"]
    assert result.invalid == []
    # Optional fields may be blank.
    assert validate({**GOOD, "doc_number": "", "pages": "", "classification": ""}, TODAY).ok


def test_reference_code_rule() -> None:
    code = reference_code(GOOD, 7)
    assert code == "Z109-KU·2025-D10-CWB-0007"
    assert check_reference(code, GOOD) is None
    assert "does not follow" in (check_reference("Z109-KU-2025-D10-CWB-0007", GOOD) or "")
    assert "does not follow" in (check_reference("Z109-KU·2025-D10-CWB-7", GOOD) or "")
    wrong_group = check_reference("Z109-KU·2025-D30-CWB-0007", GOOD) or ""
    assert "not in this item's group 'Z109-KU·2025-D10-CWB'" in wrong_group
    assert "0000" in (check_reference("Z109-KU·2025-D10-CWB-0000", GOOD) or "")


def test_continuity_finds_gaps_and_repeats() -> None:
    codes = [reference_code(GOOD, n) for n in (1, 2, 2, 5)]
    assert gaps_and_repeats(codes) == [
        "item 0002 appears more than once",
        "item numbers missing: 0003, 0004",
    ]
    assert gaps_and_repeats([reference_code(GOOD, n) for n in (2, 1, 3)]) == []


CUSTOM = {
    "report_id": ProfileField(label="Report ID", required=True, pattern=r"^R\d+$"),
    "retention_years": ProfileField.model_validate(
        {"label": "Retention (years)", "type": "integer", "values": [1, 3, 10, 30]}
    ),
    "report_date": ProfileField.model_validate({"label": "Report date", "type": "date"}),
    "tags": ProfileField.model_validate(
        {"label": "Tags", "type": "list", "required": True, "values": ["a", "b"]}
    ),
}
CUSTOM_GOOD = {
    "report_id": "R12",
    "retention_years": "10",
    "report_date": "2025-01-31",
    "tags": "a; b",
}


def test_custom_fields_are_checked_by_their_own_rules() -> None:
    assert validate(CUSTOM_GOOD, TODAY, fields=CUSTOM, dat46=False).ok
    assert validate(
        {**CUSTOM_GOOD, "report_date": "20250131"}, TODAY, fields=CUSTOM, dat46=False
    ).ok
    # Beside DA/T 46: both sets of rules apply, and its mandatory fields stay mandatory.
    assert validate({**GOOD, **CUSTOM_GOOD}, TODAY, fields=CUSTOM).ok
    assert validate(CUSTOM_GOOD, TODAY, fields=CUSTOM).missing[0] == "全宗号 (fonds)"


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("report_id", "X-1", "Report ID (report_id): 'X-1' does not match the pattern ^R\\d+$"),
        ("retention_years", "ten", "Retention (years) (retention_years): 'ten' must be a whole"),
        ("retention_years", "5", "'5' is not one of '1', '3', '10', '30'"),
        ("report_date", "2025-02-30", "Report date (report_date): 2025-02-30 is not a calendar"),
        ("report_date", "2025-0131", "must be a date, YYYY-MM-DD or YYYYMMDD"),
        ("tags", "a; c", "Tags (tags): 'c' is not one of 'a', 'b'"),
    ],
)
def test_each_bad_custom_value_is_named_by_its_label(field: str, value: str, says: str) -> None:
    result = validate({**CUSTOM_GOOD, field: value}, TODAY, fields=CUSTOM, dat46=False)
    assert not result.missing
    assert any(says in problem for problem in result.invalid), result.invalid


def test_a_required_list_with_no_items_is_missing() -> None:
    result = validate({**CUSTOM_GOOD, "tags": " ; "}, TODAY, fields=CUSTOM, dat46=False)
    assert result.missing == ["Tags (tags)"] and result.invalid == []


def test_a_list_is_sent_as_its_items_and_shown_readably() -> None:
    sent = shaped({**CUSTOM_GOOD, "tags": "a;; b ;"}, CUSTOM)
    assert sent["tags"] == ["a", "b"] and sent["retention_years"] == "10"
    assert readable(sent["tags"]) == "a; b" and readable(None) == ""


def test_retention_is_a_minimum() -> None:
    assert retention_at_least("Y", "D30") and retention_at_least("D30", "D30")
    assert not retention_at_least("D10", "D30")


def test_demo_schedule_classifies_and_refuses_what_it_does_not_cover() -> None:
    schedule = load_schedule(ROOT / "recipes" / "schedules" / "accounting.yaml")
    annual = schedule.classify({"kind": "年度财务决算报告"}, {})
    assert (annual.retention, annual.department, annual.rule) == ("Y", "CWB", "年度财务会计报告")
    sales = schedule.classify({"kind": "销售明细"}, {})
    assert (sales.retention, sales.department) == ("D10", "XSB")
    with pytest.raises(NotCovered, match="no rule of the retention schedule accounting.yaml"):
        schedule.classify({"kind": "工资表", "title": "2025年工资表"}, {})


# -- screenshots ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = launch(playwright, {})
        try:
            yield browser.new_page()
        finally:
            browser.close()


class PageSession:
    """The one part of a driver session that evidence uses: its screenshots."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def screenshot(self, path: Path, target: object = None) -> None:
        screenshot_page(self.page, path, target)


def evidence(tmp_path: Path) -> Evidence:
    clock = lambda: dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)  # noqa: E731
    ledger = Ledger.open(
        f"sqlite:///{tmp_path / 'ledger.db'}", clock, staging_root=tmp_path / "staging"
    )
    log = RunLog(tmp_path / "run.jsonl", run_id="r1", recipe="t", redactor=Redactor(), clock=clock)
    return Evidence(ledger, log, run_id="r1", recipe="t", directory=tmp_path / "ev", clock=clock)


def test_no_screenshot_while_a_password_is_typed(page: Page, tmp_path: Path) -> None:
    page.set_content(
        "<form><input name=u value=clerk><input type=password name=p></form>"
        "<iframe srcdoc='<input type=password value=s3cret-in-frame>'></iframe>"
    )
    page.frames[-1].wait_for_load_state()
    assert password_filled(page)  # the frame's field counts too
    with pytest.raises(ScreenshotRefused):
        evidence(tmp_path).screenshot(PageSession(page), "R1", "listing-row")
    assert not list((tmp_path / "ev").rglob("*.png"))


def test_screenshot_saved_with_its_digest(page: Page, tmp_path: Path) -> None:
    import hashlib

    page.set_content("<table><tr id=r><td>R000001</td><td>2025年1月资金日报表</td></tr></table>")
    shot = evidence(tmp_path).screenshot(
        PageSession(page), "../R1", "listing-row", page.locator("#r")
    )
    # The key cannot climb out: one folder of its own, under the recipe's.
    assert shot.path.parent == tmp_path / "ev" / "t" / key_folder("../R1")
    assert shot.path.parent.name.startswith("_R1-")
    assert hashlib.sha256(shot.path.read_bytes()).hexdigest() == shot.sha256


def test_event_details_reach_the_ledger_scrubbed(tmp_path: Path) -> None:
    """The ledger's events are read by auditors like the run log: no secret in either."""
    from bots.archival.evidence import EventOutcome, EventType

    ev = evidence(tmp_path)
    ev.log._redactor.register("hunter2-Secret")
    ev.event("R1", EventType.CAPTURE, EventOutcome.SUCCESS, {"url": "http://x/?pw=hunter2-Secret"})
    ev.log.close("ok")
    [detail] = [event["detail"] for event in queries.table_rows(ev.ledger, "events")]
    assert "hunter2-Secret" not in detail and "http://x/?pw=" in detail
    assert "hunter2-Secret" not in (tmp_path / "run.jsonl").read_text(encoding="utf-8")
