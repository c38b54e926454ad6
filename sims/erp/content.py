"""What each kind of report contains: seeded figures laid out as the ERP would print them.

``render(report, seed)`` is the only entry point. Its randomness comes from a generator
seeded with the seed and the report id, never from global state, so a report's bytes are
the same in every process and do not depend on the order reports are rendered in.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random

from sims.erp import documents
from sims.erp.documents import PdfTable
from sims.erp.reports import (
    ANNUAL,
    FUND_DAILY,
    INVENTORY,
    MONTHLY,
    SALES,
    VOUCHER,
    Report,
)

COMPANY = "华北机电设备有限公司"
SYSTEM = "ERP V3.2"

_ACCOUNTS = [
    ("1001", "库存现金"),
    ("1002", "银行存款"),
    ("1122", "应收账款"),
    ("1221", "其他应收款"),
    ("1403", "原材料"),
    ("1405", "库存商品"),
    ("1601", "固定资产"),
    ("2202", "应付账款"),
    ("2211", "应付职工薪酬"),
    ("2221", "应交税费"),
    ("5001", "生产成本"),
    ("5101", "制造费用"),
    ("6001", "主营业务收入"),
    ("6401", "主营业务成本"),
    ("6601", "销售费用"),
    ("6602", "管理费用"),
    ("6603", "财务费用"),
]
_SUMMARIES = [
    "收到货款",
    "支付材料款",
    "报销差旅费",
    "计提工资",
    "发放工资",
    "结转成本",
    "购入办公用品",
    "支付电费",
    "收到投资款",
    "计提折旧",
    "支付运费",
    "缴纳增值税",
    "银行手续费",
    "预付货款",
]
_CUSTOMERS = [
    "北京华联商贸有限公司",
    "上海浦江电器有限公司",
    "广州粤海贸易公司",
    "天津津铁物资公司",
    "沈阳北方重工供销处",
    "武汉长江机电公司",
    "成都蜀都实业有限公司",
    "西安秦川机械厂",
    "济南泉城设备公司",
    "郑州中原五金交电公司",
]
_PRODUCTS = [
    ("三相异步电机", "Y132M-4", "台"),
    ("齿轮减速机", "ZQ-350", "台"),
    ("深沟球轴承", "6205-2RS", "套"),
    ("变频器", "ACS510-01", "台"),
    ("交流接触器", "CJX2-1810", "只"),
    ("电力电缆", "YJV-3x95", "米"),
    ("热轧钢板", "Q235 8mm", "吨"),
    ("圆钢", "45# D30", "吨"),
    ("液压油缸", "HSG-80", "件"),
    ("控制柜", "XL-21", "台"),
    ("离心水泵", "IS80-65", "台"),
    ("密封圈", "O型 50x3.1", "个"),
]
_SALESPEOPLE = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆"]
_BANKS = [
    "中国工商银行北京海淀支行",
    "中国建设银行北京分行营业部",
    "中国农业银行北京朝阳支行",
    "中国银行北京西城支行",
    "交通银行北京东城支行",
    "招商银行北京分行",
]
_WAREHOUSES = ["原料库", "一号库", "二号库", "成品库"]


def render(report: Report, seed: int) -> bytes:
    """The bytes of ``report``'s file, deterministic from ``seed`` and the report."""
    rng = random.Random(f"erp/file/{seed}/{report.id}")
    kind = report.kind
    if kind is MONTHLY:
        return _monthly_pdf(report, rng)
    if kind is VOUCHER:
        return _voucher_pdf(report, rng)
    if kind is ANNUAL:
        return _annual_pdf(report, rng)
    if kind is FUND_DAILY:
        return _fund_xlsx(report, rng)
    if kind is INVENTORY:
        return _inventory_xlsx(report, rng)
    if kind is SALES:
        return _sales_csv(report, rng)
    raise ValueError(f"no renderer for {kind!r}")


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _amount(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def _meta(report: Report) -> str:
    return (
        f"编制单位：{COMPANY}    部门：{report.kind.department}    "
        f"报表日期：{report.date.isoformat()}"
    )


def _ledger_page(rng: random.Random, heading: str, start: dt.date, end: dt.date) -> PdfTable:
    """A page of journal lines between ``start`` and ``end``: the bulk of long reports."""
    span = max(0, (end - start).days)
    lines = sorted(
        (
            start + dt.timedelta(days=rng.randint(0, span)),
            rng.choice(_ACCOUNTS),
            rng.choice(_SUMMARIES),
            rng.random() < 0.5,
            _amount(rng, 120, 380_000),
        )
        for _ in range(rng.randint(18, 38))
    )
    rows = [
        [
            day.isoformat(),
            code,
            name,
            summary,
            _money(amount) if debit else "",
            "" if debit else _money(amount),
        ]
        for day, (code, name), summary, debit, amount in lines
    ]
    return PdfTable(
        heading,
        ["日期", "科目代码", "科目名称", "摘要", "借方金额", "贷方金额"],
        rows,
        [1.3, 1.0, 1.6, 1.6, 1.5, 1.5],
    )


def _period_of_month_before(day: dt.date) -> tuple[dt.date, dt.date]:
    end = day.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def _monthly_pdf(report: Report, rng: random.Random) -> bytes:
    start, end = _period_of_month_before(report.date)
    revenue = _amount(rng, 3_000_000, 9_000_000)
    lines = [("营业收入", revenue)]
    cost = round(revenue * rng.uniform(0.62, 0.78), 2)
    lines.append(("营业成本", cost))
    expenses = [
        (name, round(revenue * rng.uniform(lo, hi), 2))
        for name, lo, hi in [
            ("税金及附加", 0.005, 0.012),
            ("销售费用", 0.03, 0.07),
            ("管理费用", 0.04, 0.08),
            ("财务费用", 0.002, 0.01),
        ]
    ]
    lines += expenses
    operating = round(revenue - cost - sum(v for _, v in expenses), 2)
    tax = round(max(operating, 0) * 0.25, 2)
    lines += [("营业利润", operating), ("所得税费用", tax), ("净利润", round(operating - tax, 2))]
    months = end.month
    rows = [
        [
            name,
            _money(v),
            _money(round(v * months * rng.uniform(0.9, 1.1), 2)),
            _money(round(v * rng.uniform(0.85, 1.15), 2)),
        ]
        for name, v in lines
    ]
    first = PdfTable(
        f"利润表（{start.isoformat()} 至 {end.isoformat()}）  单位：元",
        ["项目", "本月金额", "本年累计", "上年同期"],
        rows,
        [2.2, 1.6, 1.6, 1.6],
    )
    extra = [
        _ledger_page(rng, f"附表{n}：科目明细", start, end) for n in range(1, rng.randint(1, 6))
    ]
    return documents.pdf_bytes(
        title=report.title,
        meta_line=_meta(report),
        author=report.kind.department,
        pages=[first, *extra],
    )


def _voucher_pdf(report: Report, rng: random.Random) -> bytes:
    day = report.date.day
    first_day = 1 if day <= 10 else 11 if day <= 20 else 21
    start = report.date.replace(day=first_day)
    last = calendar.monthrange(start.year, start.month)[1]
    end = start.replace(day=first_day + 9 if first_day < 21 else last)
    accounts = rng.sample(_ACCOUNTS, rng.randint(8, 14))
    rows, total_debit, total_credit = [], 0.0, 0.0
    for code, name in sorted(accounts):
        debit, credit = _amount(rng, 0, 900_000), _amount(rng, 0, 900_000)
        total_debit, total_credit = total_debit + debit, total_credit + credit
        rows.append([code, name, _money(debit), _money(credit)])
    rows.append(["", "合计", _money(total_debit), _money(total_credit)])
    count = rng.randint(40, 260)
    first = PdfTable(
        f"凭证范围：记-0001 至 记-{count:04d}，共 {count} 张",
        ["科目代码", "科目名称", "借方发生额", "贷方发生额"],
        rows,
        [1.2, 2.0, 1.7, 1.7],
    )
    extra = [_ledger_page(rng, f"凭证清单（{n}）", start, end) for n in range(1, rng.randint(1, 6))]
    return documents.pdf_bytes(
        title=report.title,
        meta_line=_meta(report),
        author=report.kind.department,
        pages=[first, *extra],
    )


def _annual_pdf(report: Report, rng: random.Random) -> bytes:
    year = report.date.year - 1
    assets = [
        ("货币资金", 0.12),
        ("应收账款", 0.18),
        ("存货", 0.22),
        ("固定资产", 0.38),
        ("无形资产", 0.06),
        ("其他资产", 0.04),
    ]
    total = _amount(rng, 80_000_000, 240_000_000)
    rows = [
        [
            name,
            _money(round(total * share * rng.uniform(0.9, 1.1), 2)),
            _money(round(total * share * rng.uniform(0.8, 1.2), 2)),
        ]
        for name, share in assets
    ]
    first = PdfTable(
        f"资产负债表（{year}年12月31日）  单位：元",
        ["资产项目", "期末余额", "年初余额"],
        rows,
        [2.2, 1.8, 1.8],
    )
    extra = [
        _ledger_page(rng, f"附注{n}：重要科目明细", dt.date(year, 1, 1), dt.date(year, 12, 31))
        for n in range(1, rng.randint(3, 6))
    ]
    return documents.pdf_bytes(
        title=report.title,
        meta_line=_meta(report),
        author=report.kind.department,
        pages=[first, *extra],
    )


def _stamp(report: Report) -> dt.datetime:
    # The moment the night batch wrote the file; also the zip entries' dates.
    return dt.datetime.combine(report.date, dt.time(18, 30))


def _fund_xlsx(report: Report, rng: random.Random) -> bytes:
    rows: list[list[str | int | float]] = []
    for bank in rng.sample(_BANKS, rng.randint(3, len(_BANKS))):
        opening = _amount(rng, 50_000, 8_000_000)
        income, outgo = _amount(rng, 0, 1_500_000), _amount(rng, 0, 1_200_000)
        account = "".join(str(rng.randint(0, 9)) for _ in range(19))
        rows.append(
            [
                f"{COMPANY}基本户" if not rows else f"{COMPANY}一般户{len(rows)}",
                bank,
                account,
                opening,
                income,
                outgo,
                round(opening + income - outgo, 2),
            ]
        )
    totals = [round(sum(float(r[i]) for r in rows), 2) for i in range(3, 7)]
    rows.append(["合计", "", "", *totals])
    return documents.xlsx_bytes(
        sheet_title="资金日报",
        headers=["账户名称", "开户银行", "账号", "期初余额", "本日收入", "本日支出", "期末余额"],
        rows=rows,
        number_format="#,##0.00",
        creator=SYSTEM,
        stamp=_stamp(report),
    )


def _inventory_xlsx(report: Report, rng: random.Random) -> bytes:
    rows: list[list[str | int | float]] = []
    for n in range(rng.randint(20, 60)):
        name, spec, unit = rng.choice(_PRODUCTS)
        book = rng.randint(0, 900)
        counted = max(0, book + (rng.randint(-6, 6) if rng.random() < 0.25 else 0))
        rows.append(
            [
                f"M{10001 + n * 7}",
                name,
                spec,
                unit,
                rng.choice(_WAREHOUSES),
                book,
                counted,
                counted - book,
            ]
        )
    return documents.xlsx_bytes(
        sheet_title="库存盘点",
        headers=[
            "物料编码",
            "物料名称",
            "规格型号",
            "单位",
            "仓库",
            "账面数量",
            "实盘数量",
            "差异数量",
        ],
        rows=rows,
        number_format="0",
        creator=SYSTEM,
        stamp=_stamp(report),
    )


def _sales_csv(report: Report, rng: random.Random) -> bytes:
    monday = report.date - dt.timedelta(days=7 + report.date.weekday())
    lines = []
    for _ in range(rng.randint(15, 80)):
        day = monday + dt.timedelta(days=rng.randint(0, 6))
        name, spec, unit = rng.choice(_PRODUCTS)
        qty = rng.randint(1, 60)
        price = _amount(rng, 35, 28_000)
        lines.append((day, rng.choice(_CUSTOMERS), f"{name} {spec}", qty, price))
    lines.sort(key=lambda line: line[0])
    rows = [
        [
            day.isoformat(),
            f"XS{day:%Y%m%d}-{n:04d}",
            customer,
            product,
            qty,
            f"{price:.2f}",
            f"{qty * price:.2f}",
            rng.choice(_SALESPEOPLE),
        ]
        for n, (day, customer, product, qty, price) in enumerate(lines, start=1)
    ]
    return documents.csv_bytes(
        headers=["单据日期", "销售单号", "客户名称", "产品名称", "数量", "单价", "金额", "业务员"],
        rows=rows,
    )
