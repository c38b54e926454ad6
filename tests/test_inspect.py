"""inspect_file on real files: made by reportlab, pypdf and openpyxl, then damaged by hand."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from pypdf import PdfWriter

from bots.archival import inspect as inspect_module
from bots.archival import sandbox
from bots.archival.checks import Outcome
from bots.archival.inspect import (
    INSPECT_MB,
    INSPECT_SECONDS,
    FileReport,
    inspect_file,
    virus_scan,
)
from bots.files import safe_filename
from bots.settings import Settings
from sims.erp import documents
from sims.erp.reports import EICAR
from tests import bombs

MB = 1024 * 1024
# Found before the fixture below empties PATH; scripts/setup.sh installs Debian's clamav.
CLAMSCAN = shutil.which("clamscan")
SLEEP = shutil.which("sleep") or "/bin/sleep"
# ClamAV's hash database format (.hdb): MD5:size:name, one signature a line.
EICAR_SIGNATURE = "Eicar-Test-Signature"
EICAR_HDB_LINE = f"44d88612fea8a8f36de82e1278abb02f:68:{EICAR_SIGNATURE}\n"
NAMES = [
    "format_identified",
    "format_matches_extension",
    "format_accepted",
    "opens",
    "inspection_bounded",
    "not_encrypted",
    "filename_safe",
    "size_limit",
    "virus_scan",
]
TITLE = "2026年10月 资产负债表"
META = "编制单位: 华东分公司  单位: 元"


def pdf_bytes(title: str = TITLE) -> bytes:
    page = documents.PdfTable(
        heading="资产",
        headers=["科目", "期末余额"],
        rows=[["库存现金", "1,000.00"], ["银行存款", "250,000.00"]],
        widths=[2, 1],
    )
    return documents.pdf_bytes(title=title, meta_line=META, author="财务部", pages=[page] * 3)


def xlsx_bytes(rows: int = 5) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "科目余额表"
    sheet["A1"] = "2026年10月 科目余额表"  # the header cell a person reads as the title
    sheet.append(["科目编码", "科目名称", "期末余额"])
    for number in range(rows):
        sheet.append([f"{1001 + number}", "库存现金", 1000.5 + number])
    sheet.cell(row=3, column=27, value="beyond Z")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def gbk_csv() -> bytes:
    return documents.csv_bytes(
        headers=["科目编码", "科目名称", "期末余额"], rows=[["1001", "库存现金", "1,000.00"]] * 30
    )


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def inspect(
    path: Path,
    filename: str | None = None,
    *,
    accept: tuple[str, ...] = ("pdf", "xlsx", "csv"),
    csv_encoding: str = "utf-8",
    max_bytes: int = 10 * MB,
) -> FileReport:
    return inspect_file(
        path,
        filename=path.name if filename is None else filename,
        accept=accept,
        csv_encoding=csv_encoding,
        max_bytes=max_bytes,
    )


def outcomes(report: FileReport) -> dict[str, Outcome]:
    return {check.name: check.outcome for check in report.checks}


def reason(report: FileReport, name: str) -> str:
    return next(check.reason for check in report.checks if check.name == name)


@pytest.fixture(autouse=True)
def no_scanner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No clamscan on PATH, so virus_scan is the same not_run here as on a bare machine."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


PASSED_USABILITY = {
    "format_identified": Outcome.PASS,
    "format_matches_extension": Outcome.PASS,
    "format_accepted": Outcome.PASS,
    "opens": Outcome.PASS,
    "inspection_bounded": Outcome.PASS,
    "not_encrypted": Outcome.PASS,
    "filename_safe": Outcome.PASS,
    "size_limit": Outcome.PASS,
    "virus_scan": Outcome.NOT_RUN,
}


def test_a_real_pdf_passes_and_shows_its_first_page(tmp_path: Path) -> None:
    data = pdf_bytes()
    report = inspect(write(tmp_path, "report.pdf", data))

    assert [check.name for check in report.checks] == NAMES
    assert outcomes(report) == PASSED_USABILITY
    version = data[5:8].decode()  # reportlab writes %PDF-1.3
    assert report.format == f"PDF {version}"
    assert reason(report, "opens") == f"PDF {version}, 3 pages"
    assert (report.extension, report.pages, report.encrypted) == ("pdf", 3, False)
    assert report.title == TITLE  # from the document info
    assert report.text.splitlines()[:2] == [TITLE, META]  # top to bottom
    assert "第 1 页 共 3 页" in report.text
    assert "第 2 页" not in report.text  # only the first page is read
    assert report.cells == {}


def test_a_pdf_without_a_title_is_named_by_its_first_line(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "report.pdf", pdf_bytes(title="")))
    assert report.title == META


def test_a_truncated_pdf_does_not_open(tmp_path: Path) -> None:
    data = pdf_bytes()
    report = inspect(write(tmp_path, "report.pdf", data[: len(data) // 2]))

    assert outcomes(report)["format_identified"] == Outcome.PASS
    assert outcomes(report)["opens"] == Outcome.FAIL
    assert "truncated" in reason(report, "opens")
    assert outcomes(report)["not_encrypted"] == Outcome.NOT_RUN
    assert (report.pages, report.text, report.title) == (None, "", "")


def encrypted_pdf(tmp_path: Path, user_password: str) -> Path:
    writer = PdfWriter(clone_from=write(tmp_path, "plain.pdf", pdf_bytes()))
    writer.encrypt(user_password=user_password, owner_password="owner-secret")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    return path


def test_a_pdf_locked_with_a_password_is_encrypted_and_does_not_open(tmp_path: Path) -> None:
    report = inspect(encrypted_pdf(tmp_path, "secret"))

    assert outcomes(report)["opens"] == Outcome.FAIL
    assert "password" in reason(report, "opens")
    assert outcomes(report)["not_encrypted"] == Outcome.FAIL
    assert reason(report, "not_encrypted").startswith("encrypted")
    assert report.encrypted is True
    assert report.pages is None


def test_a_pdf_encrypted_without_a_user_password_opens_but_fails_not_encrypted(
    tmp_path: Path,
) -> None:
    report = inspect(encrypted_pdf(tmp_path, ""))

    assert outcomes(report)["opens"] == Outcome.PASS
    assert outcomes(report)["not_encrypted"] == Outcome.FAIL
    assert reason(report, "not_encrypted").startswith("encrypted")
    assert (report.pages, report.encrypted, report.title) == (3, True, TITLE)


def test_an_html_login_page_saved_as_pdf_is_caught(tmp_path: Path) -> None:
    page = b"\xef\xbb\xbf\n  <!DOCTYPE html><html><head><title>ERP login</title></head></html>"
    report = inspect(write(tmp_path, "report.pdf", page))

    assert report.format == "HTML"
    assert outcomes(report) == {
        **PASSED_USABILITY,
        "format_matches_extension": Outcome.FAIL,
        "opens": Outcome.NOT_RUN,
        "inspection_bounded": Outcome.NOT_RUN,
        "not_encrypted": Outcome.NOT_RUN,
    }
    assert reason(report, "format_matches_extension") == (
        "the bytes are an HTML page, the name says .pdf"
    )


def test_an_xlsx_shows_its_first_rows(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "balances.xlsx", xlsx_bytes(rows=50)))

    assert outcomes(report) == PASSED_USABILITY
    assert report.format == "XLSX"
    assert reason(report, "opens") == "XLSX, 1 sheet, first '科目余额表'"
    assert report.title == "2026年10月 科目余额表"
    assert report.cells["A1"] == "2026年10月 科目余额表"
    assert report.cells["B2"] == "科目名称"
    assert report.cells["C3"] == "1000.5"
    assert "A20" in report.cells and "A21" not in report.cells  # first 20 rows
    assert "beyond Z" not in report.cells.values()  # first 26 columns
    assert report.text.splitlines()[:2] == ["2026年10月 科目余额表", "科目编码 科目名称 期末余额"]
    assert report.pages is None


def test_a_truncated_xlsx_is_still_an_xlsx_but_does_not_open(tmp_path: Path) -> None:
    data = xlsx_bytes()
    report = inspect(write(tmp_path, "balances.xlsx", data[: len(data) // 2]))

    assert report.format == "XLSX"
    assert outcomes(report)["format_matches_extension"] == Outcome.PASS
    assert outcomes(report)["opens"] == Outcome.FAIL
    assert "does not open as a workbook" in reason(report, "opens")
    assert (report.cells, report.title) == ({}, "")


def test_a_zip_that_is_not_a_workbook_is_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "balances.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    report = inspect(path)

    assert report.format == "ZIP"
    assert outcomes(report)["format_identified"] == Outcome.PASS
    assert outcomes(report)["format_matches_extension"] == Outcome.FAIL
    assert "ZIP archive that is not an XLSX" in reason(report, "format_matches_extension")
    assert outcomes(report)["opens"] == Outcome.NOT_RUN


def test_an_ole2_package_named_xlsx_is_an_encrypted_workbook(tmp_path: Path) -> None:
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    report = inspect(write(tmp_path, "balances.xlsx", ole2))

    assert report.format == "OLE2"
    assert outcomes(report)["opens"] == Outcome.FAIL
    assert outcomes(report)["not_encrypted"] == Outcome.FAIL
    assert reason(report, "not_encrypted").startswith("encrypted")
    assert report.encrypted is True


def test_a_gbk_csv_read_as_utf8_fails_at_the_first_bad_byte(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "balances.csv", b"code,name\r\n" + gbk_csv()))

    assert report.format == "CSV"
    assert outcomes(report)["opens"] == Outcome.FAIL
    assert "not utf-8: byte 11 " in reason(report, "opens")
    assert "GBK" in reason(report, "opens")
    assert (report.text, report.title) == ("", "")


def test_a_gbk_csv_read_as_gbk_opens(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "balances.csv", gbk_csv()), csv_encoding="gbk")

    assert outcomes(report) == PASSED_USABILITY
    assert "decodes as gbk throughout" in reason(report, "opens")
    assert "31 lines" in reason(report, "opens")
    assert report.title == "科目编码"
    assert report.text.splitlines()[0] == "科目编码,科目名称,期末余额"
    assert len(report.text.splitlines()) == 20


def test_format_accepted_follows_the_recipe(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "balances.csv", b"a,b\n"), accept=("pdf",))

    assert outcomes(report)["format_accepted"] == Outcome.FAIL
    assert reason(report, "format_accepted") == ".csv is not accepted; accepted: pdf"


def test_a_hostile_name_was_cleaned_before_staging(tmp_path: Path) -> None:
    hostile = "../../etc/passwd"
    stored = safe_filename(hostile, "download")
    report = inspect(write(tmp_path, stored, b"root:x:0:0\n"), filename=hostile)

    assert outcomes(report)["filename_safe"] == Outcome.PASS
    assert reason(report, "filename_safe") == (
        f"cleaned: removed path traversal '../../etc/'; stored as {stored!r}"
    )
    assert report.extension == ""


def test_control_characters_in_the_name_are_reported(tmp_path: Path) -> None:
    hostile = "report\x1b[31m.pdf"
    path = write(tmp_path, safe_filename(hostile, "download"), pdf_bytes())
    report = inspect(path, filename=hostile)

    assert outcomes(report)["filename_safe"] == Outcome.PASS
    assert "control characters '\\x1b'" in reason(report, "filename_safe")
    assert report.extension == "pdf"


def test_invisible_format_characters_are_removed_and_named_by_code_point(tmp_path: Path) -> None:
    hostile = "invoice\u202excod.pdf\u200b"  # reads as "invoicefdp.docx"
    stored = safe_filename(hostile, "download")
    report = inspect(write(tmp_path, stored, pdf_bytes()), filename=hostile)

    assert stored == "invoicexcod.pdf"
    assert outcomes(report)["filename_safe"] == Outcome.PASS
    assert reason(report, "filename_safe") == (
        "cleaned: removed invisible format characters U+202E RIGHT-TO-LEFT OVERRIDE, "
        "U+200B ZERO WIDTH SPACE; stored as 'invoicexcod.pdf'"
    )
    assert report.extension == "pdf"  # as stored, not "pdf\u200b"
    assert outcomes(report)["format_accepted"] == Outcome.PASS


def test_a_stored_name_with_a_bidirectional_control_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "invoice\u202excod.pdf", pdf_bytes())
    report = inspect(path, filename="invoice.pdf")

    assert outcomes(report)["filename_safe"] == Outcome.FAIL
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in reason(report, "filename_safe")


def test_a_chinese_name_is_clean(tmp_path: Path) -> None:
    name = "２０２５年　资产负债表（合并）.pdf"
    report = inspect(write(tmp_path, safe_filename(name, "download"), pdf_bytes()), filename=name)
    assert reason(report, "filename_safe") == "name is clean"


def test_a_clean_name_says_so(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "report.pdf", pdf_bytes()))
    assert reason(report, "filename_safe") == "name is clean"


def test_an_unsafe_stored_name_fails(tmp_path: Path) -> None:
    path = write(tmp_path, "report\x07.pdf", pdf_bytes())
    report = inspect(path, filename="report.pdf")

    assert outcomes(report)["filename_safe"] == Outcome.FAIL
    assert "stored name" in reason(report, "filename_safe")


def test_a_file_over_the_limit_fails_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "report.pdf", pdf_bytes())
    report = inspect(path, max_bytes=1000)

    assert outcomes(report)["size_limit"] == Outcome.FAIL
    assert "over the limit of 1,000" in reason(report, "size_limit")


def test_an_empty_file_is_unknown_and_fails_size_limit(tmp_path: Path) -> None:
    report = inspect(write(tmp_path, "report.pdf", b""))

    assert report.format == "unknown"
    assert outcomes(report) == {
        "format_identified": Outcome.FAIL,
        "format_matches_extension": Outcome.NOT_RUN,
        "format_accepted": Outcome.PASS,
        "opens": Outcome.NOT_RUN,
        "inspection_bounded": Outcome.NOT_RUN,
        "not_encrypted": Outcome.NOT_RUN,
        "filename_safe": Outcome.PASS,
        "size_limit": Outcome.FAIL,
        "virus_scan": Outcome.NOT_RUN,
    }
    assert "empty" in reason(report, "format_identified")
    assert reason(report, "size_limit") == "empty file (0 bytes)"


def test_a_huge_file_of_unknown_type_is_sniffed_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    with open(path, "wb") as handle:
        handle.truncate(1024 * MB)  # sparse: 1 GiB of NUL bytes, no disk used
    tracemalloc.start()
    try:
        report = inspect(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.format == "unknown"
    assert outcomes(report)["format_identified"] == Outcome.FAIL
    assert "1,073,741,824 bytes, over the limit" in reason(report, "size_limit")
    assert peak < 4 * MB


def test_a_large_csv_is_decoded_as_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    line = "1001,库存现金,1000.50\n".encode()
    with open(path, "wb") as handle:
        for _ in range(32):
            handle.write(line * (MB // len(line)))
    tracemalloc.start()
    try:
        report = inspect(path, max_bytes=100 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert outcomes(report)["opens"] == Outcome.PASS
    assert len(report.text.splitlines()) == 20
    assert peak < 16 * MB  # the file is 32 MiB; one 1 MiB chunk at a time is decoded


def test_pdf_files_are_closed_after_inspection(tmp_path: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.exists():
        pytest.skip("needs /proc")
    data = pdf_bytes()
    good = write(tmp_path, "good.pdf", data)
    cut = write(tmp_path, "cut.pdf", data[: len(data) // 2])
    book = write(tmp_path, "book.xlsx", xlsx_bytes())
    before = len(os.listdir(fds))
    for _ in range(5):
        for path in (good, cut, book):
            inspect(path)
    assert len(os.listdir(fds)) == before


def test_virus_scan_says_not_run_without_a_scanner(tmp_path: Path) -> None:
    assert shutil.which("clamscan") is None  # PATH is an empty folder (fixture)
    check = virus_scan(write(tmp_path, "report.pdf", pdf_bytes()))

    assert check.outcome == Outcome.NOT_RUN
    assert check.reason == "no virus scanner installed (install Debian's clamav for clamscan)"


# --- with ClamAV: a signature database the test writes itself (offline) -----------------


def eicar_database(folder: Path) -> Path:
    """A ClamAV signature database of one signature: the EICAR test file's MD5 and size."""
    assert hashlib.md5(EICAR).hexdigest() == EICAR_HDB_LINE.split(":")[0]
    assert len(EICAR) == 68
    path = folder / "eicar.hdb"
    path.write_text(EICAR_HDB_LINE, encoding="ascii")
    return path


@pytest.fixture
def clamscan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The machine's clamscan, alone on PATH (no clamdscan, whatever else is installed)."""
    assert CLAMSCAN, "clamscan is not installed: scripts/setup.sh installs Debian's clamav"
    folder = tmp_path / "clamav-bin"
    folder.mkdir()
    (folder / "clamscan").symlink_to(CLAMSCAN)
    monkeypatch.setenv("PATH", str(folder))
    return CLAMSCAN


def test_clamscan_fails_the_eicar_file_by_its_signature_name(tmp_path: Path, clamscan: str) -> None:
    database = eicar_database(tmp_path)
    infected = write(tmp_path, "销售明细.csv", EICAR)

    check = virus_scan(infected, database)
    assert check.outcome == Outcome.FAIL
    assert check.reason.startswith(f"clamscan -d {database} found a virus: ")
    # ClamAV marks a signature from an unsigned database UNOFFICIAL: the name is its own.
    assert check.reason.endswith(f"{EICAR_SIGNATURE}.UNOFFICIAL"), check.reason
    # ... and through inspect_file, as the pipeline calls it: a failed security check.
    report = inspect_file(infected, filename="销售明细.csv", max_bytes=MB, virus_database=database)
    scan = next(c for c in report.checks if c.name == "virus_scan")
    assert (scan.outcome, scan.reason) == (check.outcome, check.reason)
    assert scan.property.value == "security"


def test_clamscan_passes_a_clean_file(tmp_path: Path, clamscan: str) -> None:
    database = eicar_database(tmp_path)
    for clean in (
        write(tmp_path, "report.pdf", pdf_bytes()),
        write(tmp_path, "book.xlsx", xlsx_bytes()),
        write(tmp_path, "almost.csv", EICAR[:-1]),  # one byte short is another file
    ):
        check = virus_scan(clean, database)
        assert check.outcome == Outcome.PASS, (clean.name, check.reason)
        assert check.reason == f"clamscan -d {database}: no virus found"


@pytest.mark.parametrize("database", ["missing", "empty folder", "empty file", "not a database"])
def test_clamscan_without_a_usable_database_does_not_run_and_says_why(
    tmp_path: Path, clamscan: str, database: str
) -> None:
    path = tmp_path / "signatures.hdb"
    if database == "empty folder":
        path = tmp_path / "signatures"
        path.mkdir()
    elif database == "empty file":
        path.write_bytes(b"")
    elif database == "not a database":
        path.write_text("no signatures here\n", encoding="ascii")
    infected = write(tmp_path, "report.csv", EICAR)

    check = virus_scan(infected, path)
    assert check.outcome == Outcome.NOT_RUN  # neither a pass nor a crash
    assert check.reason.startswith("virus scan did not run: "), check.reason
    if database == "missing":
        assert check.reason.endswith(f"{path} does not exist ($FLEET_CLAMAV_DATABASE)")
    else:
        assert f"clamscan -d {path} has no usable signature database (" in check.reason
        assert "LibClamAV Error" in check.reason  # ClamAV's own words


def test_clamscan_with_its_own_database_missing_does_not_run(tmp_path: Path, clamscan: str) -> None:
    """No database configured: ClamAV's own, which is empty until freshclam has run."""
    if any(Path("/var/lib/clamav").glob("*.c[vl]d")):
        pytest.skip("this machine has ClamAV's signatures (freshclam has run)")
    check = virus_scan(write(tmp_path, "report.pdf", pdf_bytes()))
    assert check.outcome == Outcome.NOT_RUN
    assert "clamscan has no usable signature database" in check.reason
    assert "FLEET_CLAMAV_DATABASE" in check.reason


def fake_scanner(folder: Path, script: str) -> None:
    """A clamscan on PATH that is a shell script (an exec'd one keeps no pipe open)."""
    folder.mkdir(exist_ok=True)
    scanner = folder / "clamscan"
    scanner.write_text(f"#!/bin/sh\n{script}\n", encoding="ascii")
    scanner.chmod(0o755)


def test_a_hung_scanner_is_stopped_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_scanner(tmp_path / "bin", f"exec {SLEEP} 30")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(inspect_module, "SCAN_TIMEOUT", 0.5)
    check = virus_scan(write(tmp_path, "report.csv", b"a,b\n"), eicar_database(tmp_path))
    assert check.outcome == Outcome.NOT_RUN
    assert "timed out after 0.5 s (SCAN_TIMEOUT)" in check.reason


@pytest.mark.parametrize(
    ("script", "outcome", "words"),
    [
        ("echo 'ERROR: Can not open file' >&2; exit 2", Outcome.NOT_RUN, "exited with 2"),
        ("kill -9 $$", Outcome.NOT_RUN, "exited with -9"),
        ("exit 1", Outcome.FAIL, "found a virus: (no signature name in its output"),
    ],
)
def test_scanner_exit_codes_other_than_clean_and_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, outcome: Outcome, words: str
) -> None:
    fake_scanner(tmp_path / "bin", script)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    check = virus_scan(write(tmp_path, "report.csv", b"a,b\n"), eicar_database(tmp_path))
    assert check.outcome == outcome
    assert words in check.reason, check.reason


def test_the_database_setting_comes_from_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env({}, logs_dir=tmp_path).clamav_database is None
    given = {"FLEET_CLAMAV_DATABASE": str(tmp_path / "eicar.hdb")}
    assert Settings.from_env(given, logs_dir=tmp_path).clamav_database == tmp_path / "eicar.hdb"


def test_inspecting_longer_than_its_time_fails_inspection_bounded_and_the_next_file_opens(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "report.pdf", pdf_bytes())
    started = time.monotonic()
    slow = inspect_file(path, filename="report.pdf", max_bytes=10 * MB, inspect_seconds=0.001)
    assert time.monotonic() - started < 5
    assert outcomes(slow)["inspection_bounded"] == Outcome.FAIL
    assert outcomes(slow)["opens"] == Outcome.NOT_RUN
    assert reason(slow, "inspection_bounded") == (
        "inspecting the file needed more than 512 MB / 0.001 s (time: still working after "
        "0.001 s): a decompression bomb or a damaged file"
    )
    assert slow.text == "" and slow.pages is None

    # The worker that overran was ended; the next file gets a fresh one.
    report = inspect(path)
    assert outcomes(report) == PASSED_USABILITY
    assert report.pages == 3


def test_a_pdf_flate_bomb_fails_inspection_bounded_within_the_limits(tmp_path: Path) -> None:
    path = write(tmp_path, "report.pdf", bombs.pdf_bomb())
    assert path.stat().st_size < 10_000  # a few KB that inflate to 768 MB
    started = time.monotonic()
    report = inspect(path)
    assert time.monotonic() - started < INSPECT_SECONDS + 5
    assert outcomes(report)["inspection_bounded"] == Outcome.FAIL
    assert "needed more than 512 MB / 30 s (memory" in reason(report, "inspection_bounded")
    assert sandbox.peak_mb() < INSPECT_MB
