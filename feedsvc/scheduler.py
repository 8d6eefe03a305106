"""Keeping feeds fresh in a serving process: a periodic refresh (APScheduler), an exact-time wake-up
for the next embargo or settling file, and a file watcher (watchdog) for instant publishing.

It is handed two callables and knows nothing of the pipeline behind them.
"""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.1  # events within this window after the first become one refresh


class Refresher:
    """Calls refresh() every `seconds`, at next_wakeup(), and shortly after files change."""

    def __init__(self, refresh: Callable[..., object], next_wakeup: Callable[[], datetime | None], seconds: int,
                 watch: Path | None = None, debounce: float = DEBOUNCE_SECONDS):
        self.refresh = refresh
        self.next_wakeup = next_wakeup
        self.seconds = seconds
        self.watch = watch
        self.debounce = debounce
        self.scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.observer: Observer | None = None
        self._seen: set[str] = set()  # paths the watcher reported since the last refresh
        self._seen_lock = threading.Lock()

    def start(self) -> "Refresher":
        """Start the schedule (and the watcher), then plan the first wake-up."""
        self.scheduler.add_job(self.tick, "interval", seconds=self.seconds, id="tick")
        self.scheduler.start()
        if self.watch is not None:
            observer = Observer()
            observer.daemon = True
            try:
                observer.schedule(_Poke(self.saw), str(self.watch), recursive=True)
                observer.start()
                self.observer = observer
            except OSError as exc:  # e.g. the inotify watch limit: keep serving, by the schedule alone
                log.error("cannot watch %s (%s); refreshing every %d s only — raise fs.inotify.max_user_watches "
                          "or set WATCH=false", self.watch, exc, self.seconds)
        self.plan()
        log.info("refreshing every %d s%s", self.seconds, f", watching {self.watch}" if self.watch else "")
        return self

    def stop(self) -> None:
        """Stop watching and scheduling; a refresh under way finishes on its own."""
        if self.observer is not None:
            self.observer.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def tick(self) -> None:
        """The periodic refresh: a full look at the folder, the safety net for anything a watcher missed."""
        with self._seen_lock:
            self._seen.clear()
        try:
            self.refresh()
        finally:
            self.plan()

    def run(self) -> None:
        """One refresh, then the next exact-time wake-up (an embargo ending, a file settling).

        With a watcher, only the paths it reported are looked at; without one, the whole folder.
        """
        with self._seen_lock:
            seen, self._seen = self._seen, set()
        try:
            self.refresh(seen) if self.observer is not None else self.refresh()
        finally:
            self.plan()

    def saw(self, paths: Iterable[str]) -> None:
        """The watcher saw these paths change: remember them and refresh soon."""
        with self._seen_lock:
            self._seen.update(paths)
        self.poke()

    def plan(self) -> None:
        """Move the one wake-up job to next_wakeup(), or drop it when nothing is due."""
        when = self.next_wakeup()
        if when is None:
            try:
                self.scheduler.remove_job("wakeup")
            except JobLookupError:
                pass
            return
        self.scheduler.add_job(self.run, "date", run_date=when, id="wakeup", replace_existing=True)

    def poke(self) -> None:
        """A file changed: refresh soon; a burst of changes inside the window becomes one refresh."""
        when = datetime.now(timezone.utc) + timedelta(seconds=self.debounce)
        try:
            self.scheduler.add_job(self.run, "date", run_date=when, id="poke")
        except ConflictingIdError:
            pass  # one is already due


class _Poke(FileSystemEventHandler):
    def __init__(self, saw: Callable[[Iterable[str]], None]):
        self._saw = saw

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
            self._saw([os.fsdecode(p) for p in paths])
