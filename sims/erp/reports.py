"""The ERP's report catalogue: which reports exist, their titles, dates and file bytes.

Everything here is deterministic from the seed. The start-up catalogue is dated in 2025
and drawn from the reports such a company would really publish that year (one monthly
statement per month, one fund report per working day, ...), so titles never collide.
Reports published later through ``/_sim/publish`` are dated "today" and derived from the
seed and their sequence number. File bytes are rendered lazily and cached, because the
list page needs exact sizes but start-up must stay fast.

A published report may also be *bulk* (a 销售明细 CSV of a requested size, streamed, see
:mod:`sims.erp.bulk`), carry a file name given verbatim by the test that published it, or
be *infected*: its file is the EICAR anti-virus test string (``/_sim/state`` says so).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sims.erp import bulk

CATALOGUE_YEAR = 2025

# The EICAR anti-virus test file: 68 harmless bytes every scanner reports as a virus
# (ClamAV: Eicar-Test-Signature). In two parts, so that this source file is not one.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=GBK",
}


@dataclass(frozen=True)
class Kind:
    """A kind of report: its Chinese name (the 类别 column), owner and file format."""

    code: str
    name: str
    department: str
    ext: str
    needs_generate: bool  # the ERP builds this one only when a clerk presses 生成


MONTHLY = Kind("monthly", "月度财务报表", "财务部", "pdf", False)
FUND_DAILY = Kind("fund_daily", "资金日报表", "财务部", "xlsx", False)
SALES = Kind("sales", "销售明细", "销售部", "csv", False)
INVENTORY = Kind("inventory", "库存盘点表", "仓储部", "xlsx", False)
VOUCHER = Kind("voucher", "凭证汇总表", "财务部", "pdf", True)
ANNUAL = Kind("annual", "年度财务决算报告", "财务部", "pdf", False)
KINDS = (MONTHLY, FUND_DAILY, SALES, INVENTORY, VOUCHER, ANNUAL)
KIND_BY_NAME = {k.name: k for k in KINDS}

# Share of each kind among published reports; 凭证汇总表 is about one in seven.
_PUBLISH_WEIGHTS = {MONTHLY: 16, FUND_DAILY: 34, SALES: 20, INVENTORY: 13, VOUCHER: 14, ANNUAL: 3}


@dataclass(frozen=True)
class Report:
    """One published report. ``date`` is its 报表日期, the day the ERP published it."""

    id: str
    kind: Kind
    title: str
    date: dt.date
    bulk_size: int | None = None  # a bulk CSV of exactly this many bytes (streamed)
    given_filename: str | None = None  # the file name as a test gave it, used verbatim
    raw_gbk_filename: bool = False  # Content-Disposition: raw GBK bytes, no filename*
    infected: bool = False  # its file is EICAR, the anti-virus test string

    @property
    def filename(self) -> str:
        if self.given_filename is not None:
            return self.given_filename
        return f"{self.title}.{self.kind.ext}"

    @property
    def ascii_filename(self) -> str:
        """Fallback name for clients that ignore ``filename*`` (RFC 6266)."""
        return f"{self.id}.{self.kind.ext}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind.ext]


_PAGE_OBJECT = re.compile(rb"/Type /Page[^s]")


def report_id(seq: int) -> str:
    return f"R{seq:06d}"


def _xun(day: int) -> str:
    """The ten-day period (旬) a day of the month falls in."""
    return "上" if day <= 10 else "中" if day <= 20 else "下"


def title_for(kind: Kind, published: dt.date) -> str:
    """The title of a ``kind`` report published on ``published`` (its period precedes it)."""
    if kind is MONTHLY:
        prev = published.replace(day=1) - dt.timedelta(days=1)
        return f"{prev.year}年{prev.month}月月度财务报表"
    if kind is FUND_DAILY:
        return f"{published.year}年{published.month}月{published.day}日资金日报表"
    if kind is SALES:
        year, week, _ = (published - dt.timedelta(days=7)).isocalendar()
        return f"{year}年第{week}周销售明细"
    if kind is INVENTORY:
        return f"{published.year}年{published.month}月库存盘点表"
    if kind is VOUCHER:
        return f"{published.year}年{published.month}月{_xun(published.day)}旬凭证汇总表"
    if kind is ANNUAL:
        return f"{published.year - 1}年度财务决算报告"
    raise ValueError(f"unknown kind {kind!r}")


def _publication_days(kind: Kind, year: int, rng: random.Random) -> list[dt.date]:
    """Every day in ``year`` on which the ERP would publish a ``kind`` report."""
    months = range(1, 13)
    if kind is MONTHLY:  # the previous month's statement, in the first working week
        return [dt.date(year, m, rng.randint(3, 8)) for m in months]
    if kind is FUND_DAILY:  # every working day
        day, days = dt.date(year, 1, 1), []
        while day.year == year:
            if day.weekday() < 5:
                days.append(day)
            day += dt.timedelta(days=1)
        return days
    if kind is SALES:  # last week's sales, each Monday
        first = dt.date.fromisocalendar(year, 1, 1)
        mondays = [first + dt.timedelta(weeks=w) for w in range(54)]
        return [d for d in mondays if d.year == year]
    if kind is INVENTORY:  # the stock-take, on the month's last day
        return [dt.date(year, m, calendar.monthrange(year, m)[1]) for m in months]
    if kind is VOUCHER:  # at the end of each ten-day period
        return [
            dt.date(year, m, d) for m in months for d in (10, 20, calendar.monthrange(year, m)[1])
        ]
    if kind is ANNUAL:  # last year's accounts, before the end of March
        return [dt.date(year, 3, rng.randint(20, 31))]
    raise ValueError(f"unknown kind {kind!r}")


def _quotas(count: int) -> dict[Kind, int]:
    """How many of each kind the start-up catalogue holds; fixed shares, not luck."""
    quotas = {
        VOUCHER: round(count * 2 / 15),  # one in seven or eight
        ANNUAL: 1 if count >= 8 else 0,  # rare: at most one a year
        MONTHLY: min(12, round(count * 0.18)),
        INVENTORY: min(12, round(count * 0.13)),
        SALES: round(count * 0.2),
    }
    quotas[FUND_DAILY] = max(0, count - sum(quotas.values()))
    return quotas


def seeded_catalogue(seed: int, count: int, year: int = CATALOGUE_YEAR) -> list[Report]:
    """The ``count`` reports the ERP holds at start-up, ids in publication order."""
    rng = random.Random(f"erp/catalogue/{seed}")
    pools = {kind: _publication_days(kind, year, rng) for kind in KINDS}
    chosen: list[tuple[dt.date, int, Kind]] = []
    leftovers: list[tuple[dt.date, int, Kind]] = []
    quotas = _quotas(count)
    for order, kind in enumerate(KINDS):
        pool = [(day, order, kind) for day in pools[kind]]
        take = min(quotas[kind], len(pool))
        picked = set(rng.sample(range(len(pool)), take))
        chosen += [p for i, p in enumerate(pool) if i in picked]
        leftovers += [p for i, p in enumerate(pool) if i not in picked]
    if len(chosen) < count:  # more reports asked than the quotas' pools hold
        if count > len(chosen) + len(leftovers):
            raise ValueError(f"at most {len(chosen) + len(leftovers)} reports fit in {year}")
        chosen += rng.sample(leftovers, count - len(chosen))
    chosen.sort(key=lambda p: (p[0], p[1]))
    return [
        Report(report_id(seq), kind, title_for(kind, day), day)
        for seq, (day, _, kind) in enumerate(chosen, start=1)
    ]


Renderer = Callable[[Report, int], bytes]


class Catalogue:
    """The live, thread-safe catalogue: start-up reports plus those published since."""

    def __init__(self, seed: int, count: int, render: Renderer) -> None:
        self.seed = seed
        self._render = render
        self._lock = threading.Lock()
        self._reports = seeded_catalogue(seed, count)
        self._by_id = {r.id: r for r in self._reports}
        self._content: dict[str, bytes] = {}
        self._bulk_sha256: dict[str, str] = {}  # computed once, when published
        self._publish_lock = threading.Lock()  # one publication at a time

    def all(self) -> list[Report]:
        """A snapshot, in publication (id) order."""
        with self._lock:
            return list(self._reports)

    def get(self, rid: str) -> Report | None:
        with self._lock:
            return self._by_id.get(rid)

    def content(self, report: Report) -> bytes:
        """The report's file bytes, rendered on first use and then cached (not for bulk)."""
        if report.bulk_size is not None:
            raise ValueError(f"{report.id} is a bulk report: stream it with chunks()")
        with self._lock:
            cached = self._content.get(report.id)
        if cached is None and report.infected:
            return EICAR
        if cached is None:
            # render outside the lock (tens of ms); a duplicate render yields equal bytes
            cached = self._render(report, self.seed)
            with self._lock:
                cached = self._content.setdefault(report.id, cached)
        return cached

    def size(self, report: Report) -> int:
        if report.bulk_size is not None:
            return report.bulk_size
        return len(self.content(report))

    def sha256(self, report: Report) -> str:
        if report.bulk_size is not None:
            with self._lock:
                return self._bulk_sha256[report.id]
        return hashlib.sha256(self.content(report)).hexdigest()

    def pages(self, report: Report) -> int | None:
        """Ground truth for a PDF's page count: its page objects, counted in the raw bytes
        (reportlab writes them uncompressed), independent of any PDF library."""
        if report.kind.ext != "pdf" or report.bulk_size is not None:
            return None
        return len(_PAGE_OBJECT.findall(self.content(report)))

    def chunks(self, report: Report) -> Iterator[bytes]:
        """The report's file bytes as a stream (bulk files are never held in memory)."""
        if report.bulk_size is not None:
            return bulk.chunks(report.id, report.date.isoformat(), report.bulk_size)
        return iter((self.content(report),))

    def publish(
        self,
        count: int,
        today: dt.date,
        *,
        kind: Kind | None = None,
        bulk_size: int | None = None,
        filename: str | None = None,
        raw_gbk_filename: bool = False,
        infected: bool = False,
    ) -> list[Report]:
        """Add ``count`` reports dated ``today``; kind from seed and sequence number.

        ``kind`` fixes the kind instead; ``bulk_size`` makes each a bulk 销售明细 CSV of
        that many bytes, whose digest is computed here, before the report is listed.
        ``infected`` makes each one's file the EICAR test string (a 销售明细 CSV unless
        ``kind`` says otherwise).
        """
        if bulk_size is not None or (infected and kind is None):
            kind = SALES
        with self._publish_lock:  # the plan below stays valid: only publish adds reports
            planned: list[Report] = []
            with self._lock:
                titles = {r.title for r in self._reports}
                first_seq = len(self._reports) + 1
            for seq in range(first_seq, first_seq + count):
                rng = random.Random(f"erp/publish/{self.seed}/{seq}")
                kinds = list(_PUBLISH_WEIGHTS)
                drawn = rng.choices(kinds, weights=[_PUBLISH_WEIGHTS[k] for k in kinds])[0]
                this_kind = drawn if kind is None else kind
                title, n = title_for(this_kind, today), 2
                while title in titles:  # a second one today: the ERP numbers the reissue
                    title, n = f"{title_for(this_kind, today)}（{n}）", n + 1
                titles.add(title)
                planned.append(
                    Report(
                        report_id(seq),
                        this_kind,
                        title,
                        today,
                        bulk_size=bulk_size,
                        given_filename=filename,
                        raw_gbk_filename=raw_gbk_filename,
                        infected=infected,
                    )
                )
            digests = {
                r.id: bulk.sha256(r.id, r.date.isoformat(), bulk_size)
                for r in planned
                if bulk_size is not None
            }
            with self._lock:
                self._bulk_sha256.update(digests)
                for report in planned:
                    self._reports.append(report)
                    self._by_id[report.id] = report
        return planned
