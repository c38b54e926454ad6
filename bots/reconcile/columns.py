"""The reconciliation workbook's vocabulary: its columns, sheets, headers and values.

Every column a sheet may carry, with its Chinese and English header; the sheets in order,
by the ``Sheets`` attribute that feeds each; what a reviewer may type in the action column;
how yes and no are written. ``workbook`` writes with these, ``review`` reads a signed-off
workbook back by them and ``report`` fills the sheets in their terms. Plain data: no
pandas, no openpyxl.
"""

from __future__ import annotations

# column -> (中文, English). Every column the sheets use; anything else is shown by its name.
COLUMNS: dict[str, tuple[str, str]] = {
    # 批次 Batch
    "measure": ("项目", "Measure"),
    "value": ("值", "Value"),
    # 源清单 Source listing
    "source_id": ("源编号", "Source id"),
    "title": ("题名", "Title"),
    "period": ("期间", "Period"),
    "url": ("来源地址", "URL"),
    "listed_at": ("列出时间", "Listed at"),
    # 下载登记 Download register
    "file_name": ("文件名", "File name"),
    "bytes": ("字节数", "Bytes"),
    "sha256": ("SHA-256 摘要", "SHA-256"),
    "downloaded_at": ("下载时间", "Downloaded at"),
    "http_status": ("HTTP 状态", "HTTP status"),
    "format": ("格式", "Format"),
    # 归档文件目录 Catalogue (DA/T 22-2015) + retention, department
    "seq": ("序号", "Seq."),
    "reference_code": ("档号", "Reference code"),
    "document_number": ("文号", "Document no."),
    "author": ("责任者", "Author"),
    "date": ("日期", "Date"),
    "classification": ("密级", "Classification"),
    "pages": ("页数", "Pages"),
    "remarks": ("备注", "Remarks"),
    "retention": ("保管期限", "Retention"),
    "department": ("机构", "Department"),
    # 入库回执 Archive receipt
    "archive_id": ("档案系统编号", "Archive id"),
    "archive_sha256": ("档案系统摘要", "Digest reported by archive"),
    "ingested_at": ("入库时间", "Ingested at"),
    # 核对 Reconciliation (classify() output + review columns)
    "key": ("编号", "Key"),
    "listed": ("已列出", "Listed"),
    "downloaded": ("已下载", "Downloaded"),
    "archived": ("已归档", "Archived"),
    "digest_match": ("摘要一致", "Digest match"),
    "metadata_match": ("元数据一致", "Metadata match"),
    "result": ("核对结果", "Result"),
    "result_en": ("结果说明", "Result (English)"),
    "detail": ("详情", "Detail"),
    "action": ("处理", "Action"),
    "owner": ("负责人", "Owner"),
    "note": ("备注", "Note"),
    "closed": ("已关闭", "Closed"),  # a reviewer closed the row (classify.batch_closes)
    # 四性检测 Checks
    "property": ("检测属性", "Property"),
    "check": ("检测项", "Check"),
    "outcome": ("检测结果", "Outcome"),
    "reason": ("原因", "Reason"),
    # ... one column per check (reconcile.report._checks), then the failures' reasons
    "digest_unchanged": ("摘要未变", "digest_unchanged"),
    "retention_schedule": ("保管期限表", "retention_schedule"),
    "metadata_valid": ("元数据合规", "metadata_valid"),
    "retention_not_shorter": ("期限不短于规定", "retention_not_shorter"),
    "pages_match_file": ("页数相符", "pages_match_file"),
    "reference_code_check": ("档号规则", "reference_code"),
    "fixity_read_back": ("回读摘要一致", "fixity_read_back"),
    "size_matches_listing": ("大小与清单相符", "size_matches_listing"),
    "size_matches_declared": ("传输完整", "size_matches_declared"),
    "mandatory_fields": ("必填项齐全", "mandatory_fields"),
    "format_identified": ("格式已识别", "format_identified"),
    "format_matches_extension": ("格式与扩展名相符", "format_matches_extension"),
    "format_accepted": ("格式可接收", "format_accepted"),
    "opens": ("可打开", "opens"),
    "not_encrypted": ("未加密", "not_encrypted"),
    "filename_safe": ("文件名安全", "filename_safe"),
    "size_limit": ("大小限制", "size_limit"),
    "virus_scan": ("病毒检测", "virus_scan"),
    "failed": ("未通过项及原因", "Failed checks and reasons"),
    # Several sheets
    "recipe": ("采集方案", "Recipe"),
    "run_id": ("运行编号", "Run id"),
    # 差异台账 Discrepancies
    "issue": ("差异", "Issue"),
    "items": ("涉及件数", "Items"),
    "keys": ("涉及条目", "Keys"),
    "cause": ("原因", "Cause"),
    "resolution": ("处理结果", "Resolution"),
}

# (attribute of Sheets, sheet name): summary first, then the order of ARCHIVAL.md.
SHEET_NAMES: tuple[tuple[str, str], ...] = (
    ("batch", "批次 Batch"),
    ("listing", "源清单 Listing"),
    ("downloads", "下载登记 Downloads"),
    ("catalogue", "归档文件目录 Catalogue"),
    ("receipt", "入库回执 Receipt"),
    ("reconciliation", "核对 Reconciliation"),
    ("checks", "四性检测 Checks"),
    ("discrepancies", "差异台账 Discrepancies"),
)

ACTIONS = ("recapture", "ignore")  # what a reviewer may put in the action column
REVIEW_COLUMNS = ("action", "owner", "note")  # added empty to the reconciliation sheet
YES, NO = "是 Y", "否 N"

LISTING_PREFIX = "listing_"  # the source listing's own fields, as the recipe names them
# The archive's own metadata fields (a recipe's metadata_profile) in the catalogue, by label.
FIELD_PREFIX = "field:"


def headers(column: str) -> tuple[str, str]:
    """(中文, English) header for a column; unknown columns are shown by their name."""
    if column.startswith(LISTING_PREFIX):
        name = column.removeprefix(LISTING_PREFIX)
        return f"清单·{name}", f"Listing: {name}"
    if column.startswith(FIELD_PREFIX):
        label = column.removeprefix(FIELD_PREFIX)
        return label, label
    return COLUMNS.get(column, (column, column))
