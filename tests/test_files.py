"""Staging: hostile names are tamed, files arrive whole or not at all."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bots.errors import BusinessError, TransientError
from bots.files import (
    StagedFile,
    StagingWriter,
    TooLarge,
    check_received,
    invisible_characters,
    key_folder,
    safe_filename,
    visible,
)


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("报表\x00名\x1b.pdf", "报表_名_.pdf"),
        ("a:b*c?.xlsx", "a_b_c_.xlsx"),
        ("..", "fallback"),
        ("", "fallback"),
        ("2025年3月月度财务报表.pdf", "2025年3月月度财务报表.pdf"),
        # Full-width spaces and brackets are ordinary Chinese, and stay.
        ("２０２５年　资产负债表（合并）·附表.xlsx", "２０２５年　资产负债表（合并）·附表.xlsx"),
        # A right-to-left override: shown as "invoicefdp.docx", it is a .pdf.
        ("invoice\u202excod.pdf", "invoicexcod.pdf"),
        ("\ufeff报\u200b表\u2066\u2069\u00ad.pdf\u200e", "报表.pdf"),
        ("\u202e\u200b", "fallback"),
        ("报表\x85\u2028.pdf", "报表__.pdf"),  # C1 controls and line separators
    ],
)
def test_safe_filename(hostile: str, expected: str) -> None:
    assert safe_filename(hostile, "fallback") == expected


def test_invisible_characters_are_named_by_code_point_once_each() -> None:
    assert invisible_characters("a\u202eb\u202ec\u200b\U000e0041.pdf") == [
        "U+202E RIGHT-TO-LEFT OVERRIDE",
        "U+200B ZERO WIDTH SPACE",
        "U+E0041 TAG LATIN CAPITAL LETTER A",
    ]
    assert invisible_characters("2025年3月　月度财务报表.pdf") == []


def test_visible_writes_out_what_would_hide_or_reorder_and_keeps_chinese() -> None:
    assert visible("invoice\u202excod.pdf") == "invoice\\u202excod.pdf"
    assert visible("报\x1b表\u2028\U000e0041") == "报\\x1b表\\u2028\\U000e0041"
    assert visible("行一\n行二\t", keep="\n") == "行一\n行二\\x09"
    chinese = "２０２５年　资产负债表（合并） 附表.xlsx"
    assert visible(chinese) == chinese


def test_safe_filename_bounds_length_and_keeps_extension() -> None:
    name = safe_filename("报" * 200 + ".pdf", "x")
    assert name.endswith(".pdf") and len(name.encode("utf-8")) <= 200


def test_staging_writer_hashes_and_renames(tmp_path: Path) -> None:
    writer = StagingWriter(tmp_path / "doc" / "a.pdf")
    writer.write(b"%PDF-1.4 ")
    assert writer.partial.exists() and not writer.final.exists()
    writer.write(b"body")
    staged = writer.commit()
    assert staged.path.read_bytes() == b"%PDF-1.4 body"
    assert staged.sha256 == hashlib.sha256(b"%PDF-1.4 body").hexdigest() and staged.size == 13
    assert not writer.partial.exists()


def test_aborted_write_leaves_nothing(tmp_path: Path) -> None:
    writer = StagingWriter(tmp_path / "a.pdf")
    writer.write(b"half")
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def staged(tmp_path: Path, name: str, data: bytes) -> StagedFile:
    path = tmp_path / name
    path.write_bytes(data)
    return StagedFile(path, name, len(data), hashlib.sha256(data).hexdigest())


def test_login_page_saved_as_pdf_is_worth_a_retry_and_is_not_kept(tmp_path: Path) -> None:
    page = "\n<!DOCTYPE html><html><body>会话已超时，请重新登录</body></html>".encode("gbk")
    received = staged(tmp_path, "r.pdf", page)
    with pytest.raises(TransientError, match="HTML page instead of 'r.pdf'"):
        check_received(received, 1024)
    assert not received.path.exists()


def test_empty_file_is_a_business_error(tmp_path: Path) -> None:
    with pytest.raises(BusinessError, match="empty file"):
        check_received(staged(tmp_path, "r.csv", b""), 1024)


def test_file_over_the_limit_is_refused_and_removed(tmp_path: Path) -> None:
    received = staged(tmp_path, "r.csv", b"x" * 2048)
    with pytest.raises(TooLarge, match="over the size limit"):
        check_received(received, 1024)
    assert not received.path.exists()


def test_real_files_pass(tmp_path: Path) -> None:
    check_received(staged(tmp_path, "r.pdf", b"%PDF-1.4\n..."), 1024)
    check_received(staged(tmp_path, "r.csv", "日期,金额\n".encode("gbk")), 1024)


def test_each_key_has_a_folder_of_its_own() -> None:
    # A safe key is its own folder: nothing changes for keys such as the ERP's.
    assert key_folder("R000001") == "R000001"
    # Keys that differ only in what is made safe never meet (two listings' INC/6, MIN/6).
    keys = ["INC/6", "MIN/6", "6", "A/1", "A_1", "A\\1", "../../etc/passwd", "报表/2025 1月"]
    folders = [key_folder(key) for key in keys]
    assert len(set(folders)) == len(keys), folders
    for folder in folders:
        assert "/" not in folder and "\\" not in folder and folder not in ("", ".", "..")
        assert folder == safe_filename(folder, "x")  # a name no shell or path misreads
    assert key_folder("INC/6").startswith("INC_6-")
    assert len(key_folder("x" * 500 + "/y").encode()) < 255
