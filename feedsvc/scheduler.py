"""APScheduler wiring: call the refresh it is handed every REFRESH_SECONDS, in the serving process only."""
from __future__ import annotations

import logging
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


def start_refreshing(refresh: Callable[[], object], seconds: int) -> BackgroundScheduler:
    """Start a background scheduler that calls refresh every `seconds`; the caller shuts it down."""
    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": seconds})
    scheduler.add_job(refresh, "interval", seconds=seconds, id="refresh")
    scheduler.start()
    log.info("refreshing every %d s", seconds)
    return scheduler
