"""Look inside one captured file: what it really is, whether it opens, what it says.

A legacy system's "report.pdf" may be its login page, half a download, a workbook locked
with a password, or come with a name crafted to climb out of its folder. The archive must
not take such a file on trust, so each file gets the usability and security checks of
DA/T 70-2018 (format, opening, encryption; name, size, viruses), each recorded with what
was found. The first page or rows are read too, so that a person (and the metadata step)
can see what the document is without opening it.

Everything here is bounded: the type is sniffed from the first 8 KiB, text comes from the
first page, the first 20 rows or the first 64 KiB, and a CSV is decoded as a stream; a
1 GiB file costs time, never memory. What the readers do with a hostile file is bounded
too: opening runs in a child process (sandbox.py) with limits on its memory and time, and
a file that needs more (a decompression bomb, a damaged page tree) fails the
`inspection_bounded` check instead of taking the run down.
"""

from __future__ import annotations

import codecs
import csv
import re
import shutil
import subprocess
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..childenv import child_env
from ..files import invisible_characters, strip_invisible
from .checks import Check, Property
from .sandbox import Exceeded, run_bounded

USABILITY = Property.USABILITY
SECURITY = Property.SECURITY

SNIFF_BYTES = 8 * 1024
CHUNK = 1024 * 1024
TEXT_BYTES = 64 * 1024
TEXT_LINES = 20
SHEET_ROWS = 20
SHEET_COLUMNS = 26
# Opening one file (recipe limits.inspect_mb and limits.inspect_seconds by default)
INSPECT_MB = 512.0
INSPECT_SECONDS = 30.0
SCAN_TIMEOUT = 120  # seconds for one file: a hung scanner must not hold the run
# clamdscan asks the running daemon (fast); clamscan loads the signatures itself (slow, sure)
SCANNERS = ("clamdscan", "clamscan")
NO_SCANNER = "no virus scanner installed (install Debian's clamav for clamscan)"
DATABASE_ENV = "FLEET_CLAMAV_DATABASE"  # read by Settings.clamav_database; named in reasons
# What clamscan says when its signatures are missing, empty or broken (exit 2)
_DATABASE_PROBLEM = re.compile(r"database|cl_load|\.c[vl]d|\.hdb", re.IGNORECASE)

_PDF_HEADER = re.compile(rb"%PDF-(\d+\.\d+)")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOM = b"\xef\xbb\xbf"
_HTML_START = re.compile(
    rb"\s*<(!doctype\s+html|html|head|body|meta|title|form|script)\b", re.IGNORECASE
)
_XLSX_PARTS = frozenset({"[Content_Types].xml", "xl/workbook.xml"})
# A ZIP local file header is 30 bytes, its entry name right after: here, a part under xl/.
_XLSX_LOCAL_ENTRY = re.compile(rb"PK\x03\x04.{26}xl/", re.DOTALL)
# The legacy systems export UTF-8 or Windows Chinese (GBK, which GB18030 extends): text in
# either is recognised as text, so that a wrong csv_encoding fails "opens" with the offset
# instead of making the file "unknown".
_TEXT_ENCODINGS = ("utf-8", "gb18030")

# Which sniffed formats each extension may hold. Excel saves a workbook with a password
# as an OLE2 package and keeps the .xlsx name, so OLE2 is a (locked) .xlsx.
_EXPECTED: dict[str, tuple[str, ...]] = {
    "pdf": ("PDF",),
    "xlsx": ("XLSX", "OLE2"),
    "csv": ("CSV",),
    "txt": ("CSV",),
    "html": ("HTML",),
    "htm": ("HTML",),
    "zip": ("ZIP", "XLSX"),
}
_DESCRIPTIONS = {
    "PDF": "a PDF",
    "XLSX": "an XLSX workbook",
    "ZIP": "a ZIP archive that is not an XLSX workbook",
    "OLE2": "an OLE2 compound file (a password-protected workbook or an old .xls)",
    "HTML": "an HTML page",
    "CSV": "plain text",
}

# The formats whose readers run in the sandbox; the others need no reader to say so.
_READERS = frozenset({"PDF", "XLSX", "CSV"})

_SEPARATORS = re.compile(r"[/\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class FileReport:
    format: str  # "PDF 1.4", "XLSX", "CSV", "HTML", "ZIP", "OLE2" or "unknown"
    extension: str  # of the name the file came with, lower-case, without the dot
    pages: int | None  # PDF only, when it opened
    encrypted: bool
    text: str  # first page, first rows or first lines; "" when it did not open
    cells: dict[str, str]  # XLSX only: "A1" -> str(value), non-empty cells of the first rows
    title: str  # what the document calls itself; "" if nothing says
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class _Opened:
    """What opening the file found, or why it would not open."""

    problem: str | None  # None when it opened
    found: str = ""  # e.g. "3 pages"
    encrypted: bool | None = None  # None: could not tell
    encryption: str = ""  # the not_encrypted reason
    pages: int | None = None
    text: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    title: str = ""


def inspect_file(
    path: Path,
    *,
    filename: str,
    accept: Collection[str] = ("pdf", "xlsx", "csv"),
    csv_encoding: str = "utf-8",
    max_bytes: int,
    virus_database: Path | None = None,
    inspect_mb: float = INSPECT_MB,
    inspect_seconds: float = INSPECT_SECONDS,
) -> FileReport:
    """Check the file at ``path`` that arrived as ``filename``, and read its beginning.

    ``virus_database``: the ClamAV signatures ``virus_scan`` loads (None: ClamAV's own).
    Opening it runs in a child process with ``inspect_mb`` of address space and
    ``inspect_seconds`` of time; needing more fails ``inspection_bounded``."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    fmt, evidence = _sniff(path, head, csv_encoding)
    kind = fmt.split()[0]
    extension = _extension(filename)
    matches = kind in _EXPECTED.get(extension, ())

    skipped = None
    if kind == "unknown":
        skipped = "not tried: the format was not identified"
    elif not matches:
        skipped = "not tried: the format does not match the name"
    opened: _Opened | None = None
    exceeded: Exceeded | None = None
    if skipped is None:
        answer = (
            run_bounded(
                _open, path, kind, csv_encoding, memory_mb=inspect_mb, seconds=inspect_seconds
            )
            if kind in _READERS
            else _open(path, kind, csv_encoding)
        )
        if isinstance(answer, Exceeded):
            exceeded = answer
            skipped = (
                f"not finished: inspecting the file needed more than {inspect_mb:g} MB "
                f"or {inspect_seconds:g} s"
            )
        else:
            opened = answer
    if skipped is None and opened is None:
        skipped = f"not tried: no reader for {kind} here"

    checks = (
        _identified_check(fmt, evidence),
        _match_check(kind, extension, matches),
        _accepted_check(extension, accept),
        _opens_check(fmt, opened, skipped),
        _bounded_check(opened, exceeded, skipped, inspect_mb, inspect_seconds),
        _encryption_check(opened, skipped),
        _filename_check(filename, path.name),
        _size_check(size, max_bytes),
        virus_scan(path, virus_database),
    )
    found = opened or _Opened(problem=skipped)  # a file that did not open shows no text
    return FileReport(
        format=fmt,
        extension=extension,
        pages=found.pages,
        encrypted=bool(found.encrypted),
        text=found.text,
        cells=found.cells,
        title=found.title,
        checks=checks,
    )


# --- what the bytes are ----------------------------------------------------------------


def _sniff(path: Path, head: bytes, csv_encoding: str) -> tuple[str, str]:
    """The format the first bytes show, and the evidence in words."""
    if not head:
        return "unknown", "empty file (0 bytes)"
    if header := _PDF_HEADER.match(head):
        version = header.group(1).decode()
        return f"PDF {version}", f"starts with %PDF-{version}"
    if head.startswith(_ZIP_MAGIC):
        return _sniff_zip(path, head)
    if head.startswith(_OLE2_MAGIC):
        return "OLE2", "starts with the OLE2 signature D0 CF 11 E0"
    if _HTML_START.match(head.removeprefix(_BOM)):
        start = head.removeprefix(_BOM).lstrip()[:20].decode("ascii", "replace")
        return "HTML", f"starts with {start!r}"
    if _is_text(head, csv_encoding):
        return "CSV", "text without NUL bytes"
    return "unknown", f"not a known format; first bytes {head[:16]!r}"


def _sniff_zip(path: Path, head: bytes) -> tuple[str, str]:
    """XLSX if the ZIP holds a workbook's parts; ZIP otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        # A cut-short download loses the directory at the end; the entries at the start
        # still name their parts, and a workbook's parts live under xl/.
        if _XLSX_LOCAL_ENTRY.search(head):
            return "XLSX", f"a ZIP with parts under xl/, its directory unreadable ({error})"
        return "ZIP", f"a ZIP whose directory is unreadable ({error})"
    if _XLSX_PARTS.issubset(names):
        return "XLSX", "a ZIP holding [Content_Types].xml and xl/workbook.xml"
    return "ZIP", f"a ZIP of {len(names)} entries without xl/workbook.xml"


def _is_text(head: bytes, csv_encoding: str) -> bool:
    """No NUL bytes, and the start decodes in the expected encoding or a common one."""
    if b"\x00" in head:
        return False
    return any(_decodes(head, encoding) for encoding in (csv_encoding, *_TEXT_ENCODINGS))


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        # final=False: the 8 KiB may end inside a character
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _extension(filename: str) -> str:
    # As it is stored: "report.pdf\u200b" is a .pdf.
    last = _SEPARATORS.split(strip_invisible(filename))[-1]
    stem, dot, extension = last.rpartition(".")
    return extension.strip().lower() if dot and stem else ""


# --- opening, per format --------------------------------------------------------------


def _open(path: Path, kind: str, csv_encoding: str) -> _Opened | None:
    """Open the file with its format's reader; None when there is no reader for it."""
    if kind == "PDF":
        return _open_pdf(path)
    if kind == "XLSX":
        return _open_xlsx(path)
    if kind == "OLE2":
        return _Opened(
            problem="encrypted: openpyxl cannot open a password-protected workbook",
            encrypted=True,
            encryption="encrypted: an OLE2 package named .xlsx, as Excel saves a workbook "
            "with a password",
        )
    if kind == "CSV":
        return _open_csv(path, csv_encoding)
    return None


def _open_pdf(path: Path) -> _Opened:
    # A fresh PDF() per file: the library keeps each file it opened, with its handle, in
    # the instance until closed, and its "active document" is per instance too.
    # Imported here: RPA.PDF pulls in Robot Framework and pdfminer (about 0.5 s), which
    # commands that never open a PDF (check, credentials) should not pay for.
    from RPA.PDF import PDF

    pdf = PDF()
    source = str(path)
    encrypted: bool | None = None
    try:
        encrypted = bool(pdf.is_pdf_encrypted(source))
        pages = int(pdf.get_number_of_pages(source))
        if pages < 1:
            return _Opened(
                problem="the PDF has no pages",
                encrypted=encrypted,
                encryption=_pdf_encryption(encrypted, opened=True),
            )
        text = _first_page_text(pdf)
        title = _pdf_title(pdf) or _first_line(text)
    except MemoryError:
        raise  # the sandbox's limit: inspection_bounded says so, not "damaged"
    # A hostile or damaged file makes pypdf and pdfminer raise anything from PdfReadError
    # to KeyError; each is a finding about the file, not a crash of the run.
    except Exception as error:
        if encrypted:
            problem = f"encrypted: the pages cannot be read without the password ({_words(error)})"
        else:
            problem = f"damaged or truncated PDF ({_words(error)})"
        return _Opened(problem=problem, encrypted=encrypted, encryption=_pdf_encryption(encrypted))
    finally:
        pdf.close_all_pdfs()
    return _Opened(
        problem=None,
        found=_count(pages, "page"),
        encrypted=encrypted,
        encryption=_pdf_encryption(encrypted, opened=True),
        pages=pages,
        text=text,
        title=title,
    )


def _first_page_text(pdf: Any) -> str:
    """Page 1's text boxes, top to bottom and left to right."""
    # get_text_from_pdf(pages=[1]) lays out every page before returning the first; a
    # 500-page report would cost 500 pages. Converting page 1 alone costs one.
    pdf.convert(trim=True, pagenum=1)
    page = pdf.active_pdf_document.get_page(1)
    # pdfminer yields boxes in its own order (a centred title comes late); read as a person
    boxes = sorted(page.textboxes.values(), key=lambda box: (-box.top, box.left))
    return "\n".join(box.text for box in boxes if box.text)


def _pdf_title(pdf: Any) -> str:
    metadata = pdf.active_pdf_document.reader.metadata  # a pypdf reader
    title = metadata.title if metadata else None
    return str(title).strip() if title else ""


def _pdf_encryption(encrypted: bool | None, *, opened: bool = False) -> str:
    if encrypted is None:
        return "could not tell: the PDF did not open"
    if not encrypted:
        return "the PDF is not encrypted"
    if opened:
        return "encrypted PDF: opens without a password, but with restrictions"
    return "encrypted PDF: needs a password to open"


def _open_xlsx(path: Path) -> _Opened:
    # An XLSX is a ZIP package; Excel encrypts a workbook only as OLE2, never as a ZIP.
    encryption = "not encrypted: an XLSX is a ZIP package; Excel encrypts as OLE2"
    try:
        sheets, rows = _first_rows(path)
    except MemoryError:
        raise  # the sandbox's limit: inspection_bounded says so, not "damaged"
    # A damaged package makes zipfile, openpyxl or the XML parser raise many things.
    except Exception as error:
        return _Opened(
            problem=f"does not open as a workbook ({_words(error)})",
            encrypted=False,
            encryption=encryption,
        )
    if not sheets:
        return _Opened(problem="the workbook has no sheets", encrypted=False, encryption=encryption)
    cells = {coordinate: value for row in rows for coordinate, value in row}
    return _Opened(
        problem=None,
        found=f"{_count(len(sheets), 'sheet')}, first {sheets[0]!r}",
        encrypted=False,
        encryption=encryption,
        text="\n".join(" ".join(value for _, value in row) for row in rows if row),
        cells=cells,
        title=next(iter(cells.values()), ""),
    )


def _first_rows(path: Path) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Sheet names, and the non-empty cells of the first sheet's first rows."""
    # Imported here, like RPA.PDF: openpyxl pulls in numpy, which a run that opens no
    # workbook (or exits because its recipe is locked) should not pay for.
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    # read_only streams the sheet XML instead of building every cell; it keeps the file
    # open until close(). data_only: the values a person sees, not the formulas.
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if not workbook.worksheets:
            return [], []
        rows: list[list[tuple[str, str]]] = []
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(max_row=SHEET_ROWS, max_col=SHEET_COLUMNS, values_only=True)
        for number, row in enumerate(values, start=1):
            rows.append(
                [
                    (f"{get_column_letter(column)}{number}", str(value))
                    for column, value in enumerate(row, start=1)
                    if value is not None and str(value) != ""
                ]
            )
        return list(workbook.sheetnames), rows
    finally:
        workbook.close()


def _open_csv(path: Path, encoding: str) -> _Opened:
    plain = "plain text, not encrypted"
    problem, size, lines = _decode_all(path, encoding)
    if problem:
        return _Opened(problem=problem, encrypted=False, encryption=plain)
    text = _first_lines(path, encoding)
    first = next(csv.reader(text.splitlines()[:1]), [])
    return _Opened(
        problem=None,
        found=f"decodes as {encoding} throughout ({size:,} bytes, {_count(lines, 'line')})",
        encrypted=False,
        encryption=plain,
        text=text,
        title=next((cell.strip() for cell in first if cell.strip()), ""),
    )


def _decode_all(path: Path, encoding: str) -> tuple[str | None, int, int]:
    """Decode the whole file chunk by chunk: the first bad byte in words, size, lines."""
    decoder = codecs.getincrementaldecoder(encoding)()
    size = lines = 0
    last = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            # bytes of a character cut at the previous chunk's end wait in the decoder
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                offset = size - pending + error.start
                bad = error.object[error.start : error.end]
                return (
                    f"not {encoding}: byte {offset:,} ({bad!r}) does not decode; "
                    "the file may be in another encoding, such as GBK",
                    size,
                    lines,
                )
            if not chunk:
                break
            size += len(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last and last != b"\n":
        lines += 1  # a last line without a line break
    return None, size, lines


def _first_lines(path: Path, encoding: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(TEXT_BYTES)
    # final=False: a character cut at 64 KiB is left out rather than replaced
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    return "\n".join(text.removeprefix("\ufeff").splitlines()[:TEXT_LINES])


# --- the checks ---------------------------------------------------------------------


def _identified_check(fmt: str, evidence: str) -> Check:
    name = "format_identified"
    if fmt == "unknown":
        return Check.failed(USABILITY, name, f"unknown format: {evidence}")
    return Check.passed(USABILITY, name, f"{fmt}: {evidence}")


def _match_check(kind: str, extension: str, matches: bool) -> Check:
    name = "format_matches_extension"
    if kind == "unknown":
        return Check.not_run(USABILITY, name, "not compared: the format was not identified")
    if matches:
        return Check.passed(
            USABILITY, name, f"the bytes are {_DESCRIPTIONS[kind]}, as .{extension}"
        )
    says = f"the name says .{extension}" if extension else "the name has no extension"
    return Check.failed(USABILITY, name, f"the bytes are {_DESCRIPTIONS[kind]}, {says}")


def _accepted_check(extension: str, accept: Collection[str]) -> Check:
    name = "format_accepted"
    accepted = {item.lower().lstrip(".") for item in accept}
    listed = ", ".join(sorted(accepted))
    if not extension:
        return Check.failed(USABILITY, name, f"the name has no extension; accepted: {listed}")
    if extension in accepted:
        return Check.passed(USABILITY, name, f".{extension} is accepted ({listed})")
    return Check.failed(USABILITY, name, f".{extension} is not accepted; accepted: {listed}")


def _opens_check(fmt: str, opened: _Opened | None, skipped: str | None) -> Check:
    name = "opens"
    if opened is None:
        return Check.not_run(USABILITY, name, skipped or "not tried")
    if opened.problem:
        return Check.failed(USABILITY, name, opened.problem)
    return Check.passed(USABILITY, name, f"{fmt}, {opened.found}")


def _bounded_check(
    opened: _Opened | None,
    exceeded: Exceeded | None,
    skipped: str | None,
    memory_mb: float,
    seconds: float,
) -> Check:
    name = "inspection_bounded"
    limits = f"{memory_mb:g} MB / {seconds:g} s"
    if exceeded is not None:
        return Check.failed(
            USABILITY,
            name,
            f"inspecting the file needed more than {limits} ({exceeded.limit}: "
            f"{exceeded.detail}): a decompression bomb or a damaged file",
        )
    if opened is None:
        return Check.not_run(USABILITY, name, skipped or "not tried")
    return Check.passed(USABILITY, name, f"inspected within {limits}")


def _encryption_check(opened: _Opened | None, skipped: str | None) -> Check:
    name = "not_encrypted"
    if opened is None:
        return Check.not_run(USABILITY, name, skipped or "not tried")
    if opened.encrypted is None:
        return Check.not_run(USABILITY, name, opened.encryption)
    if opened.encrypted:
        return Check.failed(USABILITY, name, opened.encryption)
    return Check.passed(USABILITY, name, opened.encryption)


def _filename_check(filename: str, stored: str) -> Check:
    """The name it came with may be hostile; what matters is the name it is stored under."""
    name = "filename_safe"
    if unsafe := _name_problems(stored):
        return Check.failed(
            SECURITY, name, f"the stored name {stored!r} is unsafe: {', '.join(unsafe)}"
        )
    if not filename.strip():
        return Check.passed(SECURITY, name, f"cleaned: the name was empty; stored as {stored!r}")
    if cleaned := _name_problems(filename):
        return Check.passed(
            SECURITY, name, f"cleaned: removed {', '.join(cleaned)}; stored as {stored!r}"
        )
    if filename != stored:
        return Check.passed(SECURITY, name, f"name is clean; stored as {stored!r}")
    return Check.passed(SECURITY, name, "name is clean")


def _name_problems(name: str) -> list[str]:
    """What would let a name leave its folder or confuse a shell, in words."""
    problems = []
    if not name.strip():
        problems.append("an empty name")
    parts = _SEPARATORS.split(name)
    folder = name[: len(name) - len(parts[-1])]
    if ".." in parts:
        problems.append(f"path traversal {folder or name!r}")
    elif folder:
        problems.append(f"folder path {folder!r}")
    if controls := _CONTROL.findall(name):
        problems.append(f"control characters {''.join(controls)!r}")
    if hidden := invisible_characters(name):
        # By code point: the characters themselves would reorder or vanish in the reason.
        problems.append(f"invisible format characters {', '.join(hidden)}")
    return problems


def _size_check(size: int, max_bytes: int) -> Check:
    name = "size_limit"
    if size == 0:
        return Check.failed(SECURITY, name, "empty file (0 bytes)")
    if size > max_bytes:
        return Check.failed(SECURITY, name, f"{size:,} bytes, over the limit of {max_bytes:,}")
    return Check.passed(SECURITY, name, f"{size:,} bytes, within the limit of {max_bytes:,}")


def virus_scan(path: Path, database: Path | None = None) -> Check:
    """Scan with ClamAV when installed; when it is not, or cannot scan, say so: never pass
    silently.

    ``database`` is the signature database to load (``clamscan -d``: a file such as a
    ``.hdb``, or a folder); None: ClamAV's own (``/var/lib/clamav``, which freshclam fills).
    Only clamscan takes one: clamdscan asks a daemon that loaded its own. clamscan loads
    the signatures again for every file: milliseconds for a test database, seconds and
    about a gigabyte of memory for ClamAV's full one (a running clamd avoids that).
    """
    commands = ("clamscan",) if database is not None else SCANNERS
    scanners = [found for command in commands if (found := shutil.which(command))]
    if not scanners:
        return Check.not_run(SECURITY, "virus_scan", NO_SCANNER)
    if database is not None and not database.exists():
        return Check.not_run(
            SECURITY,
            "virus_scan",
            f"virus scan did not run: the signature database {database} does not exist "
            f"(${DATABASE_ENV})",
        )
    errors = []
    for scanner in scanners:  # clamdscan fails when no daemon runs: then try clamscan
        result = _scan_with(scanner, path, database)
        if isinstance(result, Check):
            return result
        errors.append(result)
    return Check.not_run(SECURITY, "virus_scan", "virus scan did not run: " + "; ".join(errors))


def _scan_with(scanner: str, path: Path, database: Path | None = None) -> Check | str:
    """A pass or fail from one scanner, or why it gave neither.

    ClamAV's exit codes: 0 nothing found, 1 a virus found, 2 an error (no usable signature
    database, an unreadable file); anything else (a signal) is an error too.
    """
    command = Path(scanner).name
    # clamd runs as its own user and may not read our files: hand it the open file instead
    extra = ["--fdpass"] if command == "clamdscan" else []
    if database is not None:
        extra = ["-d", str(database)]
        command = f"{command} -d {database}"
    # an absolute path cannot be mistaken for an option
    args = [scanner, "--no-summary", "--stdout", *extra, str(path.resolve())]
    try:
        run = subprocess.run(
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SCAN_TIMEOUT,
            env=child_env(),  # never the keyring's master key
        )
    except subprocess.TimeoutExpired:
        return f"{command} timed out after {SCAN_TIMEOUT} s (SCAN_TIMEOUT)"
    except OSError as error:
        return f"{command} did not start ({error})"
    if run.returncode == 0:
        return Check.passed(SECURITY, "virus_scan", f"{command}: no virus found")
    if run.returncode == 1:
        found = [line for line in run.stdout.splitlines() if line.endswith(" FOUND")]
        signature = (
            found[0].rpartition(": ")[2].removesuffix(" FOUND")
            if found
            else f"(no signature name in its output: {run.stdout.strip()[:200]!r})"
        )
        return Check.failed(SECURITY, "virus_scan", f"{command} found a virus: {signature}")
    # clamscan writes libclamav's cause to stderr and a bare "ERROR: ..." to stdout
    output = " / ".join(
        line.strip() for line in (run.stderr + run.stdout).splitlines() if line.strip()
    )[:300]
    if run.returncode == 2 and _DATABASE_PROBLEM.search(output):
        return (
            f"{command} has no usable signature database ({output}); "
            f"point ${DATABASE_ENV} at one, or run freshclam"
        )
    return f"{command} exited with {run.returncode}, an error ({output or 'no output'})"


# --- words --------------------------------------------------------------------------


def _words(error: BaseException) -> str:
    """An exception as a reason: its class, and its message when it has one."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
