"""From the ledger, the listings and the archive's inventory to the workbook's sheets.

Pure pandas, column-wise: ``build`` takes DataFrames (read by ``sources``) and returns
the ``Sheets`` the workbook writes, plus the reconciliation rows themselves, so the
command line and the benchmark run the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..archival.metadata import FIELDS as DAT46_FIELDS
from ..archival.metadata import readable
from .classify import RESULT_ENGLISH, Result, batch_closes, classify, summary
from .columns import FIELD_PREFIX, YES
from .sources import InventoryRun
from .workbook import Sheets


@dataclass
class RecipeInputs:
    """One recipe's share of a reconciliation (the DataFrames of ``sources``)."""

    recipe: str
    ledger: pd.DataFrame  # sources.ledger_frame
    inventory: pd.DataFrame  # sources.inventory_frame
    inventory_run: InventoryRun | None
    sightings: pd.DataFrame  # sources.sightings_frame
    checks: pd.DataFrame  # sources.checks_frame
    reviews: pd.DataFrame  # sources.reviews_frame
    digest: str | None = None  # the recipe file's digest, when it was loaded
    source_system: str | None = None
    archive_system: str | None = None
    # The archive's own metadata fields (the recipe's profile), name -> label: catalogue
    # columns after the DA/T ones. Without the recipe file, such keys show by name.
    field_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchFacts:
    """What the batch sheet says about the reconciliation itself."""

    batch_id: str
    written_at: datetime
    bot: str  # "rpa-fleet 0.1.0 on host"
    since: datetime | None = None
    logs: str = ""  # the run logs' verification, in words
    # Archive ids held by ledger documents outside this reconciliation (other recipes,
    # or listed before ``since``): the archive holds them rightly; they are not extras.
    claimed_elsewhere: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Reconciliation:
    sheets: Sheets
    rows: pd.DataFrame  # the reconciliation sheet's rows (with recipe, closed)
    counts: dict[str, int]  # per result code
    closes: bool

    def line(self) -> str:
        """One line for the operator: the counts that are not zero, and the verdict."""
        shown = ", ".join(f"{n} {code}" for code, n in self.counts.items() if n)
        verdict = "the batch closes" if self.closes else "the batch does NOT close"
        return f"reconciled {len(self.rows)} rows: {shown or 'nothing to reconcile'}; {verdict}"


# Why a result comes about, and what clears it: the discrepancy register's words.
CAUSES: dict[Result, tuple[str, str]] = {
    Result.MISSING: (
        "captured, but the archive's list does not show it (lost since it was confirmed, "
        "or acknowledged under an id the archive never held)",
        "recapture (apply-review), after asking the archive's administrator why it went",
    ),
    Result.EXTRA: (
        "the archive holds an item no source listing had and that is no copy of a captured "
        "document (filed by hand, or by another producer)",
        "ignore with a note once its origin is known",
    ),
    # One source document, several archive items (一件多档): copies are recognised by the
    # same digest, else the same reference code, else the same title (and size where the
    # archive's list shows one); see classify._copies.
    Result.DUPLICATE: (
        "the archive holds more than one item for one captured document (copies: the same "
        "digest, else the same reference code, else the same title and size)",
        "have the archive's administrator remove the extra copies; ignore once done",
    ),
    Result.DIGEST_MISMATCH: (
        "the bytes the archive returns are not the bytes captured",
        "have the archive's administrator restore or remove the item; once removed it "
        "reads 缺失 and can be recaptured",
    ),
    Result.METADATA_MISMATCH: (
        "the archive shows another reference code or title than was sent, or holds the "
        "document under another archive id than the ledger's",
        "correct the record in the archive, or ignore with a note; a wrong archive id: "
        "runner.py retry looks the document up with `find`",
    ),
    Result.NOT_DOWNLOADED: (
        "listed by the source, never downloaded (still pending, or failing)",
        "see the run's errors; the next run retries it; recapture releases a held one",
    ),
    Result.REJECTED: (
        "failed its four-property checks and was kept out on purpose",
        "fix the data at the source or the recipe, then recapture; or ignore with a note",
    ),
}

CHECK_OUTCOMES = {"pass": "通过 pass", "fail": "未通过 fail", "not_run": "未检测 not run"}


def build(parts: list[RecipeInputs], facts: BatchFacts) -> Reconciliation:
    # Each recipe's items are the others' rightful neighbours in a shared archive.
    held = {p.recipe: frozenset(p.ledger["archive_id"].dropna()) for p in parts}
    others = {
        p.recipe: facts.claimed_elsewhere.union(*(ids for r, ids in held.items() if r != p.recipe))
        for p in parts
    }
    rows = pd.concat([_reconcile(p, others[p.recipe]) for p in parts], ignore_index=True)
    # Recipes sharing one archive see the same stray items: each is listed once.
    extra = rows["result"].eq(Result.EXTRA.value)
    rows = rows.loc[~(extra & rows.duplicated(["archive_id", "result"]))].reset_index(drop=True)
    counts = summary(rows)
    closes = batch_closes(rows)
    receipt = _concat(
        [_receipt(p, others[p.recipe]) for p in parts], ["archive_id"]
    ).drop_duplicates("archive_id")
    sheets = Sheets(
        batch=_batch(parts, facts, rows, counts, closes, receipt),
        listing=_concat([_listing(p) for p in parts]),
        downloads=_concat([_downloads(p) for p in parts]),
        catalogue=_catalogue(parts),
        receipt=receipt,
        reconciliation=rows,
        checks=_concat([_checks(p) for p in parts]),
        discrepancies=_discrepancies(rows),
        closes=closes,
    )
    return Reconciliation(sheets, rows, counts, closes)


def _concat(frames: list[pd.DataFrame], columns: Iterable[str] = ()) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))


def _reconcile(part: RecipeInputs, claimed_elsewhere: frozenset[str]) -> pd.DataFrame:
    rows = classify(part.ledger, part.inventory, claimed_elsewhere)
    rows.insert(0, "recipe", part.recipe)
    # A decision stands for the finding it was made on: an ignored 缺失 that has since
    # become 摘要不符 is open again.
    latest = part.reviews.drop_duplicates("key", keep="last").set_index("key")
    review = latest.reindex(rows["key"]).reset_index(drop=True).astype("string")
    same = review["result"].eq(rows["result"]).fillna(False).astype(bool)
    rows["closed"] = same & review["action"].eq("ignore").fillna(False).astype(bool)
    when = pd.to_datetime(review["decided_at"]).dt.strftime("%Y-%m-%d").astype("string")
    said = review["action"] + " (" + review["owner"].fillna("") + " " + when + "): "
    rows["action"] = None
    rows["owner"] = review["owner"].where(same)
    rows["note"] = (said + review["note"].fillna("")).where(same)
    return rows


def _listing(part: RecipeInputs) -> pd.DataFrame:
    """Every sighting: which run saw which row, as it was shown then."""
    seen = part.sightings
    seen = seen.loc[seen["key"].isin(part.ledger["key"])]  # the batch's documents only
    if not len(seen):
        return pd.DataFrame()
    fields = pd.DataFrame.from_records(seen["listing"].tolist(), index=seen.index)
    fields = fields.drop(columns=[c for c in ("title",) if c in fields.columns])
    titles = seen["listing"].map(lambda row: row.get("title"))
    head = pd.DataFrame(
        {
            "recipe": part.recipe,
            "run_id": seen["run_id"],
            "source_id": seen["key"],
            "title": titles,
        }
    )
    return pd.concat([head, fields.add_prefix("listing_"), seen[["seen_at"]]], axis=1).rename(
        columns={"seen_at": "listed_at"}
    )


def _downloads(part: RecipeInputs) -> pd.DataFrame:
    got = part.ledger.loc[part.ledger["sha256"].notna()]
    return pd.DataFrame(
        {
            "recipe": part.recipe,
            "source_id": got["key"],
            "file_name": got["filename"],
            "bytes": got["size"],
            "sha256": got["sha256"],
            "format": got["file_format"],
            "downloaded_at": got["downloaded_at"],
        }
    )


CATALOGUE = {  # the catalogue's column -> the item metadata field (bots.archival.metadata)
    "reference_code": None,  # the archive's, from the ledger
    "document_number": "doc_number",
    "author": "author",
    "title": "title",
    "date": "date",
    "classification": "classification",
    "pages": "pages",
    "remarks": "remarks",
    "retention": "retention",
    "department": "department",
}


def _catalogue(parts: list[RecipeInputs]) -> pd.DataFrame:
    """归档文件目录 (DA/T 22): the register of what we archived (confirmed), in reference-code
    order; the reconciliation sheet says whether the archive still holds each item."""
    confirmed = _concat(
        [p.ledger.loc[p.ledger["state"].eq("confirmed")].assign(recipe=p.recipe) for p in parts]
    )
    if not len(confirmed):
        return pd.DataFrame(columns=["seq", *CATALOGUE])
    meta = pd.DataFrame.from_records(
        confirmed["item_metadata"].map(lambda m: m or {}).tolist(), index=confirmed.index
    )
    out = pd.DataFrame(
        {
            column: confirmed["reference_code"]
            if field is None
            else meta.get(field, pd.Series(None, index=confirmed.index))
            for column, field in CATALOGUE.items()
        }
    )
    out["pages"] = pd.to_numeric(out["pages"], errors="coerce").astype("Int64")
    for column, values in _custom_columns(parts, confirmed, meta).items():
        out[column] = values
    out = out.sort_values("reference_code", kind="stable").reset_index(drop=True)
    out.insert(0, "seq", range(1, len(out) + 1))
    return out


def _custom_columns(
    parts: list[RecipeInputs], confirmed: pd.DataFrame, meta: pd.DataFrame
) -> dict[str, pd.Series]:
    """The archive's own fields, one column per label (lists as "a; b"), each recipe's
    in the order its profile declares them. Without a recipe file, the keys that are no
    DA/T field show by name."""
    columns: dict[str, pd.Series] = {}
    for part in parts:
        mine = confirmed["recipe"].eq(part.recipe)
        labels = part.field_labels or {
            name: name
            for name in meta.columns
            if name not in DAT46_FIELDS and meta.loc[mine, name].notna().any()
        }
        for name, label in labels.items():
            if name not in meta.columns:
                continue
            shown = meta[name].where(mine).map(readable, na_action="ignore")
            column = FIELD_PREFIX + label
            columns[column] = shown.combine_first(columns[column]) if column in columns else shown
    return columns


def _receipt(part: RecipeInputs, claimed_elsewhere: frozenset[str]) -> pd.DataFrame:
    """What the archive says it holds of this batch: every item but those other ledger
    documents account for."""
    inv = part.inventory
    ours = inv.loc[
        ~inv["archive_id"].isin(claimed_elsewhere)
        | inv["archive_id"].isin(part.ledger["archive_id"])
    ]
    ingested = pd.to_datetime(ours["ingested_at"], errors="coerce", format="mixed")
    return pd.DataFrame(
        {
            "recipe": part.recipe,
            "archive_id": ours["archive_id"],
            "reference_code": ours["reference_code"],
            "title": ours["title"],
            "bytes": ours["size"],
            "archive_sha256": ours["sha256"],
            # As the archive shows it, when it is not a time pandas can read.
            "ingested_at": ingested if ingested.notna().all() else ours["ingested_at"],
        }
    )


def _checks(part: RecipeInputs) -> pd.DataFrame:
    """Item x check: the latest outcome of each check, and the reasons of the failures."""
    checks = part.checks
    checks = checks.loc[checks["key"].isin(part.ledger["key"])]  # the batch's documents only
    if not len(checks):
        return pd.DataFrame()
    latest = checks.drop_duplicates(["key", "name"], keep="last")
    grid = latest.pivot(index="key", columns="name", values="outcome")
    order = list(dict.fromkeys(latest.sort_values("property", kind="stable")["name"]))
    # The check "reference_code" would take the name of the reference code's column.
    grid = grid.loc[:, order].apply(lambda c: c.map(CHECK_OUTCOMES))
    grid = grid.rename(columns={"reference_code": "reference_code_check"})
    failed = latest.loc[latest["outcome"].eq("fail")]
    reasons = (failed["name"] + ": " + failed["reason"]).groupby(failed["key"]).agg("; ".join)
    codes = part.ledger.set_index("key")["reference_code"]
    keys = grid.index.to_series()
    head = pd.DataFrame(
        {"recipe": part.recipe, "key": keys, "reference_code": keys.map(codes)}, index=grid.index
    )
    out = pd.concat([head, grid], axis=1)
    out["failed"] = keys.map(reasons)
    # The ledger's order, so the sheet reads like the listing.
    position = pd.Series(range(len(part.ledger)), index=part.ledger["key"])
    return out.iloc[keys.map(position).fillna(len(position)).argsort(kind="stable")].reset_index(
        drop=True
    )


def _discrepancies(rows: pd.DataFrame) -> pd.DataFrame:
    """差异台账: one line per kind of difference, with its items, cause and way out."""
    open_rows = rows.loc[rows["result"].ne(Result.MATCH.value)]
    lines = []
    for result in Result:
        if result is Result.MATCH:
            continue
        of_kind = open_rows.loc[open_rows["result"].eq(result.value)]
        if not len(of_kind):
            continue
        closed = int(of_kind["closed"].sum())
        cause, way_out = CAUSES[result]
        keys = of_kind["recipe"] + "/" + of_kind["key"].astype(str)
        lines.append(
            {
                "issue": f"{result.value} {RESULT_ENGLISH[result]}",
                "items": len(of_kind),
                "keys": ", ".join(keys.head(200)) + (" …" if len(keys) > 200 else ""),
                "cause": cause,
                "resolution": (f"{closed} closed by review; " if closed else "")
                + f"{len(of_kind) - closed} open: {way_out}",
            }
        )
    return pd.DataFrame(lines, columns=["issue", "items", "keys", "cause", "resolution"])


def _batch(
    parts: list[RecipeInputs],
    facts: BatchFacts,
    rows: pd.DataFrame,
    counts: dict[str, int],
    closes: bool,
    receipt: pd.DataFrame,
) -> pd.DataFrame:
    ledgers = _concat([p.ledger for p in parts], ["key", "sha256", "size", "state"])
    downloaded = ledgers.loc[ledgers["sha256"].notna()]
    confirmed = ledgers.loc[ledgers["state"].eq("confirmed")]
    measures: list[tuple[str, object]] = [
        ("批次编号 Batch id", facts.batch_id),
        ("采集范围 Window", f"listed since {facts.since:%Y-%m-%d %H:%M}" if facts.since else "all"),
    ]
    for p in parts:
        version = f" (recipe sha256 {p.digest[:12]})" if p.digest else ""
        systems = " → ".join(s for s in (p.source_system, p.archive_system) if s)
        measures.append(
            ("采集方案 Recipe", f"{p.recipe}{version}{': ' if systems else ''}{systems}")
        )
        run = p.inventory_run
        measures.append(
            (
                "档案盘点 Archive inventory",
                f"{p.recipe}: run {run.run_id} at {run.started_at:%Y-%m-%d %H:%M:%S}, "
                + (
                    f"{run.read_back} of {len(p.inventory)} files read back and hashed"
                    if run.read_back
                    else "files not read back: digests not checked"
                )
                if run
                else f"{p.recipe}: no inventory: nothing can be confirmed as held",
            )
        )
    measures += [
        ("程序 Bot", facts.bot),
        ("源清单件数 Listed (items)", len(ledgers)),
        ("已下载件数 Downloaded (items)", len(downloaded)),
        ("已下载字节 Downloaded (bytes)", int(downloaded["size"].sum())),
        ("已确认归档件数 Confirmed archived (items)", len(confirmed)),
        ("已确认归档字节 Confirmed archived (bytes)", int(confirmed["size"].sum())),
        ("档案系统回执件数 Archive receipt (items)", len(receipt)),
        ("档案系统回执字节 Archive receipt (bytes)", int(pd.to_numeric(receipt["bytes"]).sum()))
        if "bytes" in receipt
        else ("档案系统回执字节 Archive receipt (bytes)", 0),
    ]
    measures += [(f"{code} {RESULT_ENGLISH[Result(code)]}", n) for code, n in counts.items()]
    measures += [
        ("经审核关闭 Closed by review", int(rows["closed"].sum())),
        ("批次是否闭合 Batch closes", YES if closes else "否 N"),
        ("下载清单摘要 Manifest digest (SHA-256)", manifest_digest(downloaded)),
        ("运行日志 Run logs", facts.logs),
        ("生成时间 Written at", facts.written_at),
    ]
    return pd.DataFrame(measures, columns=["measure", "value"])


def manifest_digest(downloaded: pd.DataFrame) -> str:
    """SHA-256 of the sorted "key<TAB>sha256" lines: one value that names this set of files
    (recomputable from the download register with any tool)."""
    lines = (downloaded["key"].astype(str) + "\t" + downloaded["sha256"].astype(str)).sort_values()
    return hashlib.sha256("".join(line + "\n" for line in lines).encode("utf-8")).hexdigest()
