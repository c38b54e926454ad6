"""销售明细 CSV files of any requested size, for the robots' large- and empty-file tests.

``POST /_sim/publish {"size": N}`` publishes reports whose file is exactly ``N`` bytes: a
GBK header line, one line naming the report (so no two such files are equal), then a
fixed block of CSV lines repeated and cut to size. The last line is usually cut short;
where the cut would split a two-byte character, its lead byte becomes a space, so the
file always decodes as GBK.
The bytes are produced as a stream, never held whole in memory; the block is built once
per process, deterministically, so the digest means the same thing everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Iterator

HEADER = ("单据日期", "销售单号", "客户名称", "产品名称", "数量", "单价", "金额", "业务员")
BLOCK_TARGET = 1 << 20  # bytes per yielded chunk: large enough to stream and hash fast

_CUSTOMERS = ("北京华联商贸有限公司", "上海浦江电器有限公司", "广州粤海贸易公司", "西安秦川机械厂")
_PRODUCTS = ("三相异步电机 Y132M-4", "齿轮减速机 ZQ-350", "变频器 ACS510-01", "控制柜 XL-21")
_SALESPEOPLE = ("张伟", "王芳", "李娜", "刘洋")


def _line(cells: tuple[str, ...]) -> bytes:
    return (",".join(cells) + "\r\n").encode("gbk")


def head(report_id: str, date: str) -> bytes:
    """The header line and the line that makes this report's file its own."""
    first = (date, f"XS-{report_id}", "（大文件测试）", "", "0", "0.00", "0.00", "")
    return _line(HEADER) + _line(first)


@functools.cache
def block() -> bytes:
    """About a mebibyte of whole CSV lines, the same in every process."""
    rng = random.Random("erp/bulk")
    lines: list[bytes] = []
    total = n = 0
    while total < BLOCK_TARGET:
        n += 1
        qty = rng.randint(1, 60)
        price = rng.randint(3500, 2_800_000) / 100
        line = _line(
            (
                f"2025-01-{rng.randint(1, 28):02d}",
                f"XS20250100-{n:06d}",
                rng.choice(_CUSTOMERS),
                rng.choice(_PRODUCTS),
                str(qty),
                f"{price:.2f}",
                f"{qty * price:.2f}",
                rng.choice(_SALESPEOPLE),
            )
        )
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def _cut(data: bytes, n: int) -> bytes:
    """``data[:n]``, with a lead byte left alone at the end replaced by a space.

    ``data`` is whole GBK lines, and a line start is a character boundary, so decoding
    from the last line start finds whether the cut splits a character.
    """
    part = data[:n]
    try:
        part[part.rfind(b"\n") + 1 :].decode("gbk")
    except UnicodeDecodeError:
        return part[:-1] + b" "
    return part


def chunks(report_id: str, date: str, size: int) -> Iterator[bytes]:
    """The file's bytes, exactly ``size`` of them, in chunks of at most ~1 MiB."""
    top = head(report_id, date)
    if size <= len(top):
        if size:
            yield _cut(top, size)
        return
    yield top
    remaining = size - len(top)
    body = block()
    while remaining >= len(body):
        yield body  # the same object each time: no copying
        remaining -= len(body)
    if remaining:
        yield _cut(body, remaining)


def sha256(report_id: str, date: str, size: int) -> str:
    """Digest of :func:`chunks`, computed by streaming it (0.7 s per GiB measured)."""
    digest = hashlib.sha256()
    for chunk in chunks(report_id, date, size):
        digest.update(chunk)
    return digest.hexdigest()
