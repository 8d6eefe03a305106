"""Keeping feeds fresh in a serving process: a periodic refresh (APScheduler), an exact-time wake-up
for the next embargo or settling file, and a file watcher (watchdog) for instant publishing.

It is handed two callables and knows nothing of the pipeline behind them.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping

from watchdog.events import (
    DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent, FileClosedEvent, FileCreatedEvent, FileDeletedEvent,
    FileModifiedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler,
)
from watchdog.observers import Observer

from ..reading.folder import name_rule
from ..reading.scan import RENAMED_EVENT

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.1  # events within this window after the first become one refresh
# How often the watched folder's identity is looked at (a stat): a folder deleted and made again, swapped by a rename or
# a link pointed elsewhere (a deploy's atomic switch) raises no event in the folder watched, so only a look finds it.
FOLDER_CHECK_SECONDS = 1.0
# What the watcher saw last of a path, handed to refresh() as {path: seen}: CLOSED (closed after writing,
# inotify IN_CLOSE_WRITE) and MOVED (renamed into place) say the file is complete; CHANGED may be mid-write.
CLOSED, MOVED, CHANGED = "closed", "moved", "changed"
# RENAMED: renamed to another article's name (ren1.txt → ren2.txt), so gone for good, not the first half of a tool's
# delete-and-write (an editor renames a file to its backup name, foo.txt~, and writes it anew: CHANGED).
RENAMED = RENAMED_EVENT
_AT_ONCE = (CLOSED, MOVED, RENAMED)  # what says a refresh need not wait for a writer to settle
# run() lets one call refresh at a time and hands the others' work to it, so its jobs may overlap
# without APScheduler dropping one as a "maximum number of running instances" (a lost change).
_RUNS = 8
# The events asked of the kernel (watchdog turns them into the inotify mask): not IN_OPEN / IN_CLOSE_NOWRITE, which
# every read of the folder raises — a cold start's own 10,000 reads would be 20,000 events for this process to handle.
WATCHED = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent,
           DirCreatedEvent, DirModifiedEvent, DirMovedEvent, DirDeletedEvent]


class Refresher:
    """Calls refresh() every `seconds`, at next_wakeup(), and shortly after files change."""

    def __init__(self, refresh: Callable[..., object], next_wakeup: Callable[[], datetime | None], seconds: int,
                 watch: Path | None = None, debounce: float = DEBOUNCE_SECONDS):
        self.refresh = refresh
        self.next_wakeup = next_wakeup
        self.seconds = seconds
        self.watch = watch
        self.debounce = debounce
        self._scheduler = None  # APScheduler's, made when first needed (the scheduler property)
        self._scheduler_lock = threading.Lock()  # the watcher's thread and a run() may both be first
        self._stopped = False  # stop() was called: a scheduler made after it is never started
        self.observer: Observer | None = None
        self._seen: dict[str, str] = {}  # paths the watcher reported since the last refresh → what it saw last
        self._seen_lock = threading.Lock()
        self._running = False  # a run() is refreshing: it runs again for what arrives meanwhile
        self._again = False  # run() was asked for while running (a wake-up, a poke)
        self._watched: tuple[int, int] | None = None  # the watched folder's (device, inode), as the watch was set
        self._rewatch_lock = threading.Lock()  # the folder check's thread and a tick may both find it replaced
        self._watch_pending = False  # start(watch_after_run=True): the watcher starts as the first run() ends

    def start(self, watch_after_run: bool = False) -> "Refresher":
        """Start the watcher; the schedule starts when first needed, at the latest as the first run() ends by planning
        the next wake-up. A builder's first build so comes before APScheduler's import (0.05-0.1 s, most of it looking
        up its plug-ins' entry points), off a cold start's way to its first feeds; nothing is lost meanwhile, since a
        path the watcher reports while run() refreshes is taken up by it.

        watch_after_run: the watcher starts as the first run() ends, before it plans the next refresh. For a first
        scan walked ahead (readahead.ReadAhead), whose next scan walks the whole folder again at once (Scanner.rewalk) and
        finds whatever was saved before the watch: the watch's own walk (watchdog lists every entry of the folder to
        watch its subfolders, 0.3 s at 100,000 files) then comes after a cold start's first feeds, not beside them."""
        self._watch_pending = self.watch is not None and watch_after_run
        if self.watch is not None and not watch_after_run:
            self._start_watching()
        log.info("refreshing every %d s%s", self.seconds, f", watching {self.watch}" if self.watch else "")
        return self

    def _start_watching(self) -> None:
        observer = Observer()
        observer.daemon = True
        try:
            self._watch(observer)
            observer.start()
            self.observer = observer
            threading.Thread(target=self._check_folder, name="folder-check", daemon=True).start()
        except OSError as exc:  # e.g. the inotify watch limit: keep serving, by the schedule alone
            fix = ("set ARTICLES_DIR to the articles folder, or create it" if not os.path.isdir(self.watch)
                   else "raise fs.inotify.max_user_watches or set WATCH=false")
            log.error("cannot watch %s (%s); refreshing every %d s only — %s", self.watch, exc, self.seconds, fix)

    @property
    def scheduler(self):
        """APScheduler's background scheduler, made and started with the periodic tick when first asked for; after
        stop(), made but not started (a run() that ends after it plans a wake-up that never comes)."""
        with self._scheduler_lock:
            if self._scheduler is None:
                from apscheduler.schedulers.background import BackgroundScheduler

                scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
                scheduler.add_job(self.tick, "interval", seconds=self.seconds, id="tick")
                if not self._stopped:
                    scheduler.start()
                self._scheduler = scheduler
            return self._scheduler

    def _watch(self, observer: Observer) -> None:
        """Watch the folder the path names now, and note which it is (_rewatch)."""
        self._watched = _folder_identity(self.watch)
        # The folder itself, not a link to it: inotify is asked not to follow links (IN_DONT_FOLLOW), so a watch on the
        # link saw nothing saved at the folder's top (Folder.source_of takes paths under either).
        observer.schedule(_Poke(self.saw), os.path.realpath(self.watch), recursive=True, event_filter=WATCHED)

    def _rewatch(self) -> bool:
        """Watch the folder anew when the path names another one now (deleted and made again, moved aside, a link
        pointed elsewhere): inotify follows the folder it was given, and saves went unseen until the next tick, for good.
        True when it did."""
        with self._rewatch_lock:
            if self.observer is None or self._watched is None or self._stopped:  # (a stopped observer takes no watch)
                return False
            now = _folder_identity(self.watch)
            if now is None or now == self._watched:
                return False
            try:
                self.observer.unschedule_all()
                self._watch(self.observer)
                log.warning("the articles folder %s is another folder now (replaced, or a link moved): watching it anew",
                            self.watch)
                return True
            except OSError as exc:
                log.error("cannot watch %s anew (%s); refreshing every %d s only", self.watch, exc, self.seconds)
                return False

    def _check_folder(self) -> None:
        """Every FOLDER_CHECK_SECONDS: a folder replaced is watched anew and walked at once (its files raised no event
        here), not at the next tick, up to REFRESH_SECONDS later."""
        while not self._stopped:
            time.sleep(FOLDER_CHECK_SECONDS)
            if not self._stopped and self._rewatch():
                self.scheduler.add_job(self.tick, "date", run_date=datetime.now(timezone.utc), id="rewalk",
                                       replace_existing=True)

    def stop(self) -> None:
        """Stop watching and scheduling; a refresh under way finishes on its own."""
        with self._rewatch_lock:  # the folder check watches nothing anew from now on
            self._stopped = True
        if self.observer is not None:
            self.observer.stop()
        with self._scheduler_lock:
            self._stopped = True
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=False)

    def tick(self) -> None:
        """The periodic refresh: a full look at the folder, the safety net for anything a watcher missed."""
        self._rewatch()
        with self._seen_lock:
            self._seen.clear()
        try:
            self.refresh()
        finally:
            self.plan()

    def run(self) -> None:
        """Refresh until nothing new arrived meanwhile, then plan the next exact-time wake-up.

        With a watcher, only the paths it reported are looked at; without one, the whole folder.
        A path reported, or a wake-up due, while a refresh runs is taken up by another refresh right
        after it: APScheduler would skip a second run of the job ("maximum number of running
        instances reached"), and the change would wait for the next full walk.
        """
        with self._seen_lock:
            if self._running:
                self._again = True  # the run under way goes round once more
                return
            self._running = True
            self._again = True
        failed = False
        try:
            first = True
            while True:
                with self._seen_lock:
                    if failed or not (self._again or self._seen):
                        self._running = False
                        break
                with self._seen_lock:
                    complete = bool(self._seen) and all(seen in _AT_ONCE for seen in self._seen.values())
                if not first and not complete:
                    # Like a poke: a file still being written is looked at again only once it may have
                    # settled (the scanner takes a file unchanged between two looks as complete).
                    time.sleep(self.debounce)
                with self._seen_lock:
                    self._again, first = False, False
                    seen, self._seen = self._seen, {}
                done = self.refresh(seen) if self.observer is not None else self.refresh()
                if done is False and seen:
                    # A failed refresh (a state file that cannot be written, say) took none of what the watcher saw:
                    # the paths go back for the next planned refresh, not a walk an interval later; and no retry at
                    # once, which a lasting failure would turn into a loop.
                    failed = True
                    with self._seen_lock:
                        self._seen = {**seen, **self._seen}
        finally:
            with self._seen_lock:
                left = self._running and bool(self._seen)  # only when refresh() raised
                self._running = False
                watch, self._watch_pending = self._watch_pending, False
            if watch:  # before the next refresh is planned: the walk that refresh makes finds what came before it
                self._start_watching()
            self.plan()
            if left:
                self.poke()

    def saw(self, paths: Iterable[str] | Mapping[str, str], seen: str = CHANGED) -> None:
        """The watcher saw these paths change: remember them and refresh soon (or right after the refresh under way).

        seen: CLOSED (closed after writing) or MOVED (renamed into place) says a file is complete, and it is
        refreshed at once, with no debounce; the last event for a path wins (a write after a close reopens it).
        paths may be a mapping of each path to what was seen of it (a rename's two names, taken together).
        """
        found = dict(paths) if isinstance(paths, Mapping) else dict.fromkeys(paths, seen)
        with self._seen_lock:
            self._seen.update(found)
            if self._running:
                return
        self.poke(0 if all(kind in _AT_ONCE for kind in found.values()) else None)

    def plan(self) -> None:
        """Move the one wake-up job to next_wakeup(), or drop it when nothing is due."""
        from apscheduler.jobstores.base import JobLookupError

        when = self.next_wakeup()
        if when is None:
            try:
                self.scheduler.remove_job("wakeup")
            except JobLookupError:
                pass
            return
        self.scheduler.add_job(self.run, "date", run_date=when, id="wakeup", replace_existing=True, max_instances=_RUNS)

    def poke(self, delay: float | None = None) -> None:
        """A file changed: refresh soon; a burst of changes inside the window becomes one refresh.

        delay: seconds until the refresh, the debounce by default; a completed file asks for 0, which
        brings forward a refresh already due later.
        """
        from apscheduler.jobstores.base import ConflictingIdError, JobLookupError

        when = datetime.now(timezone.utc) + timedelta(seconds=self.debounce if delay is None else delay)
        try:
            self.scheduler.add_job(self.run, "date", run_date=when, id="poke", max_instances=_RUNS)
        except ConflictingIdError:
            if delay is not None and delay < self.debounce:
                try:
                    self.scheduler.modify_job("poke", next_run_time=when)
                except JobLookupError:  # it ran meanwhile: run() takes up what was seen
                    pass


class _Poke(FileSystemEventHandler):
    """Hands what the watcher saw to saw(): each path with CLOSED, CHANGED, or for a rename its old name (RENAMED or
    CHANGED) with its new one (MOVED)."""

    def __init__(self, saw: Callable[..., None]):
        self._saw = saw

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind == "modified" and event.is_directory:
            # A folder's entries changed (a file created or deleted in it: each has an event of its own) or its attributes:
            # not a folder moved or made, whose files come with no event. Taken as one, every save in a sub-folder walked
            # the whole articles folder (0.5 s at 100,000 files), as the top folder's never did. A folder made readable
            # again is found by the scheduled walk.
            return
        if kind == "closed":  # inotify IN_CLOSE_WRITE: the writer is done
            self._saw([os.fsdecode(event.src_path)], CLOSED)
            return
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if not dest:
            self._saw([os.fsdecode(event.src_path)], CHANGED)
            return
        # Moved: the old name is gone, the new one complete; both in one call, so that no refresh takes the one alone.
        renamed = not event.is_directory and name_rule(os.path.basename(dest)) is None
        self._saw({os.fsdecode(event.src_path): RENAMED if renamed else CHANGED, dest: MOVED})


def _folder_identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the folder a path names now (through links); None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
