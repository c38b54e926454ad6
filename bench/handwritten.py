"""The hand-written script bench/overhead.py measures the fleet against.

    python bench/handwritten.py ERP_URL ARCHIVE_URL WORKDIR [SHARD/COUNT]

What a user writes instead of a recipe, for the demo's two simulators: sync Playwright on
the Chromium the fleet launches (the same binary and flags, bots.drivers.web.browser),
the same clicks as recipes/demo.yaml, and nothing else: no ledger, no checks, no
evidence, no retries, no run log. Log in to both systems, list every report in the ERP's
frameset page by page, download each (a 凭证汇总表 generated first: 生成, then the job
page's 下载), upload it through the archive's two-step wizard form with the demo's
metadata fields, and read the archive id and SHA-256 back from the archive's viewer.

Metadata as a script would fill it: the retention schedule as a dict, the author from the
listing's department (the recipe reads it from the report itself), a PDF's pages counted
in its bytes. Prints one JSON line per report (id, archive_id, sha256) and exits 0.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from playwright.sync_api import Frame, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.drivers.web.browser import CHROMIUM_ARGS, system_chromium  # noqa: E402

ERP_USER, ERP_PASSWORD = "clerk", "clerk-demo"
ARCHIVE_USER, ARCHIVE_PASSWORD = "archivist", "archivist-demo"
# recipes/schedules/accounting.yaml, as a script writes it: kind -> (retention, department)
SCHEDULE = {
    "年度财务决算报告": ("Y", "CWB"),
    "凭证汇总表": ("D30", "CWB"),
    "月度财务报表": ("D10", "CWB"),
    "资金日报表": ("D10", "CWB"),
    "销售明细": ("D10", "XSB"),
    "库存盘点表": ("D10", "CCB"),
}
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-z])")
TIMEOUT_MS = 30_000


def chromium() -> str:
    path = system_chromium()
    assert path is not None, "no Debian Chromium: apt-get install chromium-headless-shell"
    return path


def erp_login(page: Page, base: str) -> Frame:
    page.goto(f"{base}/login.do")
    page.fill("input[name=username]", ERP_USER)
    page.fill("input[name=password]", ERP_PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit][value=登录]")
    top = page.frame(name="top")
    assert top is not None
    top.get_by_text("欢迎您").wait_for()
    main = page.frame(name="main")
    assert main is not None
    return main


def erp_list(main: Frame, base: str) -> list[dict[str, str]]:
    main.goto(f"{base}/report/list.do")
    main.fill("input[name=start]", "2000-01-01")
    main.fill("input[name=end]", "2099-12-31")
    with main.expect_navigation():
        main.click("input[type=submit][value=查询]")
    rows: list[dict[str, str]] = []
    while True:
        for row in main.locator("table#dataGrid tr.row").all():
            cells = row.locator("td").all_inner_texts()
            link = row.locator("a:text-is('下载')")
            href = link.get_attribute("href") if link.count() else None
            rows.append(
                {
                    "id": cells[0].strip(),
                    "title": cells[1].strip(),
                    "kind": cells[2].strip(),
                    "department": cells[3].strip(),
                    "date": cells[4].strip(),
                    "href": href or "",
                }
            )
        following = main.locator(".pager a:text-is('下一页')")
        if not following.count():
            return rows
        with main.expect_navigation():
            following.click()


def erp_download(page: Page, main: Frame, base: str, row: dict[str, str], out: Path) -> Path:
    target = out / row["id"]
    if row["href"]:
        answer = page.context.request.get(f"{base}/report/{row['href']}")
        target.write_bytes(answer.body())
        return target
    main.goto(f"{base}/report/list.do?report_no={row['id']}&start={row['date']}&end={row['date']}")
    with main.expect_navigation():
        main.click("#dataGrid tr.row input[value=生成]")
    link = main.locator("a:text-is('下载')")
    link.wait_for(timeout=60_000)
    with page.expect_download() as info:
        link.click()
    info.value.save_as(target)
    return target


def archive_login(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    page.fill("#sidebar input[name=username]", ARCHIVE_USER)
    page.fill("#sidebar input[name=password]", ARCHIVE_PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    page.click("#notice button.close")
    page.locator("#notice").wait_for(state="detached")


def archive_upload(page: Page, base: str, row: dict[str, str], path: Path) -> str:
    retention, department = SCHEDULE[row["kind"]]
    data = path.read_bytes()
    pages = str(len(PDF_PAGE.findall(data))) if data.startswith(b"%PDF") else ""
    page.goto(f"{base}/ingest")
    fields = {
        "fonds": "Z109",
        "year": row["date"][:4],
        "department": department,
        "title": row["title"],
        "author": row["department"],
        "date": row["date"].replace("-", ""),
        "doc_number": "",
        "pages": pages,
    }
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    page.select_option("select[name=category]", "KU")
    page.select_option("select[name=retention]", retention)
    page.select_option("select[name=classification]", "内部")
    page.check("input[name=has_remarks]")
    page.fill("textarea[name=remarks]", f"源系统报表编号 {row['id']}")
    page.click("#next-btn")
    page.set_input_files("#file-input", path)
    with page.expect_navigation():
        page.click("#submit-btn")
    return page.inner_text("#archive-id").strip()


def archive_read_back(page: Page, base: str, archive_id: str) -> str:
    page.goto(f"{base}/app#/items/{archive_id}")
    page.locator(f"#archive-id:text-is('{archive_id}')").wait_for()
    return page.inner_text("#sha256").strip()


def main(argv: list[str]) -> int:
    erp, archive, workdir = argv[0].rstrip("/"), argv[1].rstrip("/"), Path(argv[2])
    # SHARD/COUNT (bench/fleet.py --scripts): this copy takes every COUNT-th report of
    # the listing, as a user runs COUNT copies of a script side by side.
    shard, count = (int(n) for n in argv[3].split("/")) if len(argv) > 3 else (0, 1)
    workdir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        erp_page = browser.new_context(accept_downloads=True).new_page()
        archive_page = browser.new_context().new_page()
        for page in (erp_page, archive_page):
            page.set_default_timeout(TIMEOUT_MS)
        main_frame = erp_login(erp_page, erp)
        rows = erp_list(main_frame, erp)[shard::count]
        archive_login(archive_page, archive)
        for row in rows:
            path = erp_download(erp_page, main_frame, erp, row, workdir)
            archive_id = archive_upload(archive_page, archive, row, path)
            sha256 = archive_read_back(archive_page, archive, archive_id)
            print(json.dumps({"id": row["id"], "archive_id": archive_id, "sha256": sha256}))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
