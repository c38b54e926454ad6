"""Archive system simulator (档案管理系统): the target the bots ingest captured reports into.

Run it with ``python -m sims.archive --port 8302``; build it in-process with
:func:`sims.archive.app.create_app`.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
