"""What `try` and `explain` say about a page (bots.drivers.web.inspect), on tiny pages in
real Chromium: why an element that is there cannot be used, which of a step's selectors
it failed on, what a `select` could not choose, and where the paginator went."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page
from pydantic import TypeAdapter

from bots.drivers.web.inspect import diagnose, explain
from bots.drivers.web.schema import WebStep

MENU = """<!DOCTYPE html><html><body>
<details class="user-menu"><summary>archivist</summary>
  <div class="menu"><a href="/docs">My documents</a><a class="logout" href="/out">Log out</a></div>
</details></body></html>"""

TABS = """<!DOCTYPE html><html><body><form id="f">
<section id="tab-general"><label for="t">Title</label><input id="t" name="title"></section>
<section id="tab-classification" hidden>
  <input id="s" name="source_system">
  <select id="tags" name="tags" multiple>
    <option value="incident">Incident</option><option value="minutes">Minutes</option>
  </select>
</section>
<select id="ret" name="retention"><option value="10">10 years</option></select>
</form></body></html>"""

LIST = """<!DOCTYPE html><html lang="zh-CN"><body>
<table id="incidents"><tbody><tr class="incident"><td class="number">#1</td></tr></tbody></table>
<nav class="pagination"><span>第 1 页</span><a rel="next" href="?page=2">下一页 ›</a></nav>
</body></html>"""


def step(item: dict[str, Any]) -> Any:
    return TypeAdapter(WebStep).validate_python({**item, "__line__": 7})


def test_a_link_in_a_closed_menu_is_named_not_visible_with_the_menu_and_what_to_do(
    page: Page,
) -> None:
    """Its box has a size and its styles say shown, but a closed <details> does not draw
    what it holds: Playwright calls it not visible, and so must the explanation."""
    page.set_content(MENU)
    explained = explain(page, step({"expect": {"selector": "a.logout"}}), {})
    text = "\n".join(explained.lines)
    assert "a.logout: 1 match" in text
    assert 'not visible: its ancestor details.user-menu "archivist" is closed' in text
    assert "`state: attached` waits for it in the page, shown or not" in text
    assert "usable" not in text
    # The selector names what the step acts on: no other selector is proposed.
    assert explained.candidates == ()
    assert "no other selector to propose" in text


def test_a_failed_fill_of_several_fields_is_diagnosed_on_the_hidden_one(page: Page) -> None:
    page.set_content(TABS)
    fill = step({"fill": {"fields": {"input[name=title]": "x", "input[name=source_system]": "y"}}})
    diagnosis = diagnose(page, page, fill, {})
    assert diagnosis.closest[0].startswith(
        "input#s[name=source_system] (not visible: its ancestor section#tab-classification "
    ), diagnosis.closest
    assert "has display: none" in diagnosis.closest[0]
    explained = explain(page, fill, {})
    text = "\n".join(explained.lines)
    assert "input#t[name=title] usable" in text
    assert "`state: attached` lets the fill set it by script where it is" in text


def test_a_select_without_the_option_says_which_options_there_are(page: Page) -> None:
    page.set_content(TABS)
    select = step({"select": {"selector": "select[name=retention]", "value": "{{ years }}"}})
    explained = explain(page, select, {"years": "D10"})
    text = "\n".join(explained.lines)
    assert "cannot choose: no option has the value 'D10'; its values: '10'" in text
    assert "usable" not in text and explained.candidates == ()
    diagnosis = diagnose(page, page, select, {"years": "D10"})
    assert "no option has the value 'D10'" in diagnosis.closest[0], diagnosis.closest
    # Each item of a list is an option of its own; an empty one is dropped, as the step does.
    tags = step({"select": {"selector": "#tags", "value": ["incident", "{{ sev }}", "tracker"]}})
    text = "\n".join(explain(page, tags, {"sev": ""}).lines)
    assert "no option has the value 'tracker'; its values: 'incident', 'minutes'" in text


def test_a_selector_that_names_nothing_still_gets_candidates(page: Page) -> None:
    page.set_content(TABS)
    explained = explain(page, step({"fill": {"selector": "input[name=titel]", "value": "x"}}), {})
    assert explained.candidates, explained.lines
    assert explained.candidates[0].selector == "input#t"


def test_a_pager_named_in_another_language_shows_the_links_there_are(page: Page) -> None:
    page.set_content(LIST)
    table = step(
        {
            "table": {
                "selector": "table#incidents",
                "rows": "tr.incident",
                "fields": {"id": "td.number"},
                "key": "{{ row.id }}",
                "next": "nav.pagination a:text-is('Next ›')",
            }
        }
    )
    text = "\n".join(explain(page, table, {}).lines)
    assert "next nav.pagination a:text-is('Next ›'): 0 on this page" in text
    # The link there, and a selector for it in any language.
    assert """  in nav.pagination: a "下一页 ›" (a[rel='next'])""" in text


def test_what_another_frame_holds_is_said_to_need_a_frame_step(page: Page) -> None:
    page.set_content(
        '<!DOCTYPE html><html><body><iframe name="top" srcdoc="<p>欢迎您 clerk</p>"></iframe>'
        '<iframe name="main" srcdoc="<table id=grid><tr><td>1</td></tr></table>"></iframe>'
        "</body></html>"
    )
    page.frame(name="main").wait_for_load_state()
    page.frame(name="top").wait_for_load_state()
    welcome = step({"expect": {"text": "欢迎您"}})
    diagnosis = diagnose(page, page, welcome, {})
    assert diagnosis.frames[0].endswith(" <- here"), diagnosis.frames
    assert diagnosis.frames[1].endswith(
        "(text=欢迎您: 1 here; a `frame` step runs steps in this frame)"
    ), diagnosis.frames
    text = "\n".join(explain(page, welcome, {}).lines)
    assert "text '欢迎您': 0 matches" in text
    assert "1 match; a `frame` step (frame[name=top]) runs steps there" in text
    grid = step({"click": {"selector": "#grid td"}})
    text = "\n".join(explain(page, grid, {}).lines)
    assert "#grid td: 0 matches\n  in frame main (about:srcdoc): 1 match" in text, text
