"""TEMPORARY (the fleetplumb branch brings the real one)."""

from __future__ import annotations

import asyncio
from typing import Any


async def sweep_forever(app: Any, fleet_settings: Any, on_retried: Any, on_given_up: Any) -> None:
    while True:
        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=20)
        for job in stalled:
            if job.attempts >= 3:
                continue
            try:
                await app.job_manager.retry_job(job)
            except Exception:  # noqa: BLE001
                continue
            on_retried(job)
        await asyncio.sleep(5)
