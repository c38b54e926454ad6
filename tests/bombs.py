"""Decompression bombs for the inspection limits: small files that open into gigabytes.

Built at test time (a few seconds each), never stored: a PDF whose one content stream is
deflated twice (a few KB on disk, 768 MB of spaces for pdfminer), and an XLSX whose
shared-string table (read whole when the workbook opens) expands about 400-fold.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from openpyxl import Workbook

MB = 1024 * 1024


def flate_twice(expanded_mb: int) -> bytes:
    """``expanded_mb`` MiB of spaces, deflated twice."""
    deflate = zlib.compressobj(9)
    spaces = b" " * MB
    inner = b"".join(deflate.compress(spaces) for _ in range(expanded_mb)) + deflate.flush()
    return zlib.compress(inner, 9)


def pdf_bomb(expanded_mb: int = 768) -> bytes:
    """A well-formed one-page PDF whose page content inflates to ``expanded_mb`` MiB."""
    body = flate_twice(expanded_mb)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter [/FlateDecode /FlateDecode] >>\nstream\n" % len(body)
        + body
        + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def xlsx_bomb(strings: int = 640_000) -> bytes:
    """A real workbook whose shared-string table holds ``strings`` strings of 1,000 'a'."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "2026年10月 科目余额表"
    plain = io.BytesIO()
    workbook.save(plain)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for info in source.infolist():
            if info.filename == "xl/sharedStrings.xml":
                continue
            data = source.read(info)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                    b"</Types>",
                )
            bomb.writestr(info, data)
        with bomb.open("xl/sharedStrings.xml", "w") as part:
            part.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main">'
            )
            block = (b"<si><t>" + b"a" * 1000 + b"</t></si>") * 1000
            for _ in range(strings // 1000):
                part.write(block)
            part.write(b"</sst>")
    return out.getvalue()
