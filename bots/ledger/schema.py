"""The ledger's tables, as SQLAlchemy Core declares them (the schema migrations create).

One row per document in ``documents``; the rest are records that only grow: ``runs``,
``checks``, ``events``, ``inventory``, ``sightings``, ``reviews``, ``schedule_events``;
``schedule_state`` holds one row per scheduled recipe; ``leases`` and ``session_slots``
are the fleet's claims with an expiry (``bots.ledger.leases``, ``bots.ledger.slots``). Times are
``DateTime(timezone=True)``: an instant on PostgreSQL, the clock's wall time on SQLite
(which drops the offset; see ``Ledger.wall_time``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("title", Text),
    Column("listing", Text, nullable=False),  # the listing row as seen, JSON
    Column("filename", Text),
    Column("staged_path", Text),
    Column("sha256", String(64)),
    Column("size", BigInteger),  # bytes: PostgreSQL's INTEGER would stop at 2 GiB
    Column("item_metadata", Text),  # JSON, as sent to the archive
    Column("archive_id", String(128)),
    Column("reference_code", String(128)),
    # The archive that gave the archive id and reference code (the recipe's archive
    # `system` name): a reference code is unique within the archive that assigned it.
    Column("archive_system", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("failure_kind", String(16)),
    Column("failed_stage", String(16)),  # the state it failed from
    Column("failed_recipe_digest", String(64)),  # which recipe version refused it
    Column("source_filename", Text),  # the name the source sent, before it was made safe
    Column("file_format", String(32)),  # sniffed from the bytes: "PDF 1.4", "XLSX", "CSV"
    # Which of the recipe's `listings` the document came from (NULL: the `list` form):
    # a later run (a resume, a retry, a recapture no longer listed) takes that listing's
    # detail and download steps. A column, not a field hidden in ``listing``: that is the
    # row as the source showed it, and reconciliation reads it as such.
    Column("listing_name", String(64)),
    # What the detail steps read (JSON), recorded with the download, so that every later
    # stage, in this run or a resumed one, renders the same row.
    Column("detail", Text),
    Column("last_run_id", String(64)),
    # A reviewer asked for it to be captured again (runner.py apply-review): the next run
    # takes it even when its source no longer lists it. Cleared when it is confirmed.
    Column("recapture_requested_at", DateTime(timezone=True)),
    Column("listed_at", DateTime(timezone=True), nullable=False),
    Column("downloaded_at", DateTime(timezone=True)),
    Column("uploaded_at", DateTime(timezone=True)),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("recipe", "source_key", name="uq_documents_recipe_key"),
    # Who else holds a code, within one archive (checks.reference). Not unique: a code
    # the archive gave twice must still be recorded, on the document it holds back.
    Index("ix_documents_archive_reference", "archive_system", "reference_code"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("recipe", String(64), nullable=False),
    Column("recipe_digest", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("user", String(255), nullable=False),
    Column("bot_version", String(32), nullable=False),
    Column("log_path", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("outcome", String(32)),
    Column("counts", Text),  # JSON
    Column("action", String(16)),  # "capture" or "inventory" (NULL: capture, older ledgers)
    # The run log as it closed (what its index line on its machine says too): its lines,
    # the first record's prev, the closing line's SHA-256. The ledger shared by the fleet
    # is so the one index across machines (``logs verify``, ``--fleet``). NULL: not
    # closed (killed, going on, its log given up), or closed before ledger version 9.
    Column("log_lines", Integer),
    Column("log_first_prev", String(64)),
    Column("log_last_hash", String(64)),
)

# The four-property checks, one row per document, run and check (bots.archival.checks).
checks = Table(
    "checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("property", String(16), nullable=False),
    Column("name", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

# PREMIS-style events (capture, message digest calculation, ...), one row per event.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("agent", Text, nullable=False),  # "rpa-fleet 0.1.0 on host"
    Column("evidence_path", Text),  # a screenshot under logs/evidence
    Column("evidence_sha256", String(64)),
)

# What the archive said it held, per inventory run (bots.capture, action "inventory").
inventory = Table(
    "inventory",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),  # the inventory run: one snapshot
    Column("recipe", String(64), nullable=False),
    Column("archive_id", String(128), nullable=False),
    Column("reference_code", String(128)),
    Column("title", Text),
    Column("size", BigInteger),
    Column("sha256", String(64)),  # read back with --fixity; NULL when not read
    Column("ingested_at", Text),  # as the archive shows it
    Column("taken_at", DateTime(timezone=True), nullable=False),
)


# What each run's listing showed, one row per run and key: the ledger's documents keep
# only the first sighting, and reconciliation's source listing is "what each run saw".
sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("listing", Text, nullable=False),  # the row as this run saw it, JSON
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

# A reviewer's decision on one reconciliation row (runner.py apply-review), applied or not.
reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(64), nullable=False),  # one apply-review: its run log's id
    Column("recipe", String(64), nullable=False),
    Column("source_key", String(255), nullable=False),
    Column("archive_id", String(128)),  # as the workbook row showed it
    Column("result", String(16), nullable=False),  # the row's result code (缺失, ...)
    Column("action", String(16), nullable=False),  # recapture / ignore
    Column("owner", Text),  # the reviewer, as typed in the owner column
    Column("note", Text),
    Column("outcome", String(16), nullable=False),  # applied / refused / unchanged
    Column("reason", Text, nullable=False),
    Column("workbook", Text, nullable=False),
    Column("workbook_sha256", String(64), nullable=False),
    Column("decided_by", Text, nullable=False),  # user@host who applied the workbook
    Column("decided_at", DateTime(timezone=True), nullable=False),
)


# Each scheduled recipe's standing (bots.scheduling): the last due time dealt with, the
# failed runs in a row, and a pause once there were too many. One row per recipe.
schedule_state = Table(
    "schedule_state",
    metadata,
    Column("recipe", String(64), primary_key=True),
    Column("last_due_at", DateTime(timezone=True)),  # the latest due time run or skipped
    Column("failures_in_row", Integer, nullable=False),
    Column("paused_at", DateTime(timezone=True)),
    Column("paused_reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Every decision a scheduler took (run, missed, skipped, paused, failed, ...), with why:
# what an operator reads after a night the machine was off. Only grows.
schedule_events = Table(
    "schedule_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipe", String(64), nullable=False, index=True),
    Column("due_at", DateTime(timezone=True)),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("decision", String(24), nullable=False),
    Column("detail", Text, nullable=False),
    Column("exit_code", Integer),
    Column("scheduler", String(255), nullable=False),  # "serve on host" / "cron on host"
)


# Named leases held by one worker at a time (``recipe:demo``: one listing of a recipe across
# the fleet), until released or expired (``bots.ledger.leases``). No row: free.
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(255), nullable=False),  # the worker's id, unique per process
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Logged-in sessions on each legacy system across the fleet, one row per slot held
# (``bots.ledger.slots``): the cap a system tolerates holds whatever the number of workers.
session_slots = Table(
    "session_slots",
    metadata,
    Column("system", String(255), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),  # 0 .. cap-1
    Column("cap", Integer, nullable=False),  # the cap its holder asked under
    Column("holder", String(255), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


TABLES = (
    documents,
    runs,
    checks,
    events,
    inventory,
    sightings,
    reviews,
    schedule_state,
    schedule_events,
    leases,
    session_slots,
)
