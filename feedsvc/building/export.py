"""The static export: what the build store holds — every resource a request names without a key, each
feed's page for browsers and every feed's archive pages — as files that nginx serves at the same URLs,
with the .gz and .br of the hot ones beside them (precompress.py).

The export folder OUT holds a manifest (MANIFEST) naming the store it was written from, that store's build
version, and every file with its URL path, the resource's ETag and time. A build writes only the files
whose resource changed since then and removes those of resources gone; with no manifest, or one written
from another store, it writes everything. A file is written under a temporary name beside its own and
renamed over it, so nginx serves the old file or the new, never a part of one; its mtime is its
resource's Last-Modified. The manifest is written last, so a build that fails or is killed leaves every
file whole and the next build finishes the work.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import mmap
import os
import pickle
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..formats import FORMATS
from ..paging import page_count, page_date, page_items
from ..store import connect
from ..transactions import rows_for
from ..urls import EXPORT_PREVIEW, PREVIEW, archive_feed, archive_path, export_file, feed_path
from .archive import DATES, page_key, redated_head
from .exportpool import FROM_PAGES, ExportWorkers, Files, Job, Result, Task
from .exportfolder import (LEAVE_OUT, MANIFEST, STAGING, export_folder, left_alone, not_as_noted, own, remove_staging, ExportError, ExportWriteError, etag, folder_lock, mark_writing, mtime_ns,  # noqa: F401
                           FileTask, Written, put_file, read_manifest, refuse_foreign, remove_files, store_token, sync_folder,
                           take_over, unlink, write_file, write_files, write_manifest, writing)
from .precompress import SUFFIXES

log = logging.getLogger(__name__)

FORMAT = "feedsvc-export 2"  # 2: article and archive pages without coded forms
SHARE_FROM = 500  # files to write, from which the workers that made the archive pages ahead write a share (_share_stale)
REDATE_THREADS = 4  # archive pages redated at once: their reads, hashes and writes overlap

Pages = Callable[..., object]  # (listing key, format, page=N) → the archive page's Rendered, or None


@dataclass(frozen=True)
class ExportResult:
    """What a build did to the export folder."""

    version: int  # the store's build the folder now holds
    full: bool  # everything written: no manifest, or one from another store
    resources: int  # resources the folder holds
    written: int  # files written (bodies and their coded forms)
    unchanged: int  # resources whose files were left as they were
    removed: int  # files removed, of resources gone
    changed: tuple[str, ...]  # URL paths (store keys) whose files were written
    left_out: tuple[str, ...]


def export_store(store: str | Path, out: str | Path, pages: Pages, page_size: int, shape: str = "",
                 progress: Callable[[int, int], object] | None = None, job: Job | None = None,
                 early: "EarlyPages | None" = None) -> ExportResult:
    """Bring the export folder `out` up to the store's latest build; `pages` makes archive pages.

    shape names what archive pages are made from besides the store's rows (settings, code): another
    shape renders them all again.

    progress(done, total) is told of the files to write as they are written.

    job: archive pages are made from the store by worker processes (exportpool.py), one format each, while
    this process writes the other files (else by `pages`, here); only while nothing else commits to the store.
    early: the archive pages workers made while the build still committed (EarlyPages), taken where they are
    still the pages this build needs.
    """
    out = export_folder(out)
    if not out.is_symlink():
        refuse_foreign(out)  # a folder that is not an export is refused before a build writes anything in it
    with folder_lock(out):
        earlier = take_over(out)
        token = store_token(store)
        manifest = read_manifest(out)
        full = manifest is None or manifest.get("format") != FORMAT or manifest.get("store") != token
        had = {} if manifest is None else manifest.get("files", {})
        conn = connect(store, readonly=True)
        try:
            conn.execute("BEGIN")  # one build's rows throughout, whatever the builder commits meanwhile
            version = conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
            with writing(out) as interrupted:  # a build that failed or was killed: its leftovers swept, its names unknown
                # What it may have written, retimed or removed is not what the manifest says: no ETag (written again,
                # or removed if gone) and any coded form beside it (_beside). A revert to what the manifest names
                # would otherwise leave its bytes, or its absence, for good.
                if not full:  # and files removed, replaced or touched by hand since: written again as well
                    interrupted = {**not_as_noted(out, had), **interrupted}
                had = {**had, **{name: [path, "", "", "", [], ""] for name, path in interrupted.items()}}
                writer = _Writer(out, {} if full else had, conn, pages, page_size, shape)
                writer.empty = manifest is None
                # Only what changed since the manifest's build, unless the last build left a file out (something in its
                # way): then every resource is compared, so that one is written once it can be.
                if not full and not interrupted and isinstance(manifest.get("version"), int) and not manifest.get("left_out"):
                    writer.since = manifest["version"]
                if job is not None:
                    writer.job = dataclasses.replace(job, store=str(store), out=str(out))
                writer.ahead = early
                writer.plan()
                touched = writer.touched(had)
                if touched:
                    mark_writing(out, {**interrupted, **touched})
                removed = 0
                try:
                    writer.write(progress or (lambda done, total: None))
                    gone = {name: entry for name, entry in had.items() if name not in writer.files}
                    writer.removing = bool(gone)
                    removed = remove_files(out, gone)
                    left_out = sorted(writer.left_out)
                    if writer.files != had or manifest is None or full or left_out != manifest.get("left_out", []):
                        if writer.written or removed:
                            sync_folder(out)  # the files on disk before the manifest says so: one flush, not an fsync per file
                        write_manifest(out, {"format": FORMAT, "store": token, "version": version, "files": writer.files,
                                             **({"left_out": left_out} if left_out else {})})
                    else:  # nothing changed: the folder holds the build it names (the last that changed a file)
                        version = manifest["version"]
                except OSError as exc:
                    if manifest is None:  # the folder was empty or missing: left so (but for the build's own lock and staging, and a volume's lost+found)
                        for entry in out.iterdir():
                            if not left_alone(entry.name):
                                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                    # None written, retimed or removed: as it was (the CLI says which). Removals are counted as tried:
                    # one that failed midway removed some.
                    raise ExportWriteError(exc, partly=manifest is not None and bool(
                        writer.written or writer.changed or writer.shared or writer.removing)) from exc
            conn.execute("COMMIT")
        finally:
            conn.close()
        for folder in earlier:
            shutil.rmtree(folder, ignore_errors=True)
        for folder in out.glob(f"{STAGING}*"):  # a killed build's pages made ahead
            if early is None or folder != early.staging:
                remove_staging(folder)
    return ExportResult(version, full, len(writer.files), writer.written, len(writer.files) - len(writer.changed),
                        removed, tuple(writer.changed), tuple(writer.left_out))


class _Writer:
    """Decides which files a build writes (plan) and writes them (write).

    A manifest entry: [URL path, ETag, Last-Modified (ISO 8601), page key, [codings written]] and, for an
    archive page, the listing it was made from (archive.py).
    """

    def __init__(self, out: Path, had: dict, conn, pages: Pages, page_size: int, shape: str):
        self.out, self.had, self.conn, self.pages, self.page_size, self.shape = out, had, conn, pages, page_size, shape
        self.files: dict[str, list] = {}
        self.stale: list[tuple[str, str]] = []  # (name, store key) of resources to write
        self.retimed: list[tuple[str, str]] = []  # (name, store key) of resources with the same bytes and a new time
        self.archives: list[tuple] = []  # (listing key, format, page, page key, listing made, its date) to look at
        self.changed: list[str] = []
        self.left_out: list[str] = []
        self.written = 0
        self.job: Job | None = None
        self.since: int | None = None  # the store's build the folder holds, when its files are all as the manifest says
        self.redating: list[tuple] = []  # archive pages whose date alone moved, to redate (_redate_all)
        self.ahead: EarlyPages | None = None  # archive pages workers are making while the build commits
        self.early: dict[str, tuple] = {}  # file name → (task, page key, result, staged file) of EarlyPages
        self.empty = False  # the folder held nothing: no file to replace or remove
        self.folders: set[Path] = set()  # folders made so far
        self.shared = False  # workers that were handed files to write were ended by a failure (_end_shares)
        self.removing = False  # the files of resources gone are being removed

    def plan(self) -> None:
        self._plan_resources()
        self._plan_archives()

    def _plan_resources(self) -> None:
        changed = self._changed_since()
        if changed is None:
            rows = self.conn.execute("SELECT path, etag, media_type, last_modified FROM resources ORDER BY path")
        else:  # only the rows of the paths the store's builds changed since the folder's; the others kept as they are
            keys = sorted(changed)
            rows = list(rows_for(self.conn, "SELECT path, etag, media_type, last_modified FROM resources "
                                            "WHERE path IN ({marks}) ORDER BY path", keys))  # sorted keys: in path order
        self._plan_rows(rows)
        if changed is not None:
            for name, held in self.had.items():
                if len(held) > 5 or name in self.files:
                    continue  # an archive page (_plan_archives), or a resource planned from its row
                path = held[0]
                if path in changed or (path.endswith(EXPORT_PREVIEW) and PREVIEW + path[:-len(EXPORT_PREVIEW)] in changed):
                    continue  # changed and no longer in the store: its files are removed
                self.files[name] = held

    def _changed_since(self) -> set[str] | None:
        """The store keys of the resources changed (or gone) since the build the folder holds, or None when
        every row must be compared: no such build (a whole write), or the store no longer says what changed
        since (it keeps the changes of its last builds, store.KEEP_BUILDS)."""
        if self.since is None:
            return None
        oldest, latest = self.conn.execute("SELECT MIN(version), MAX(version) FROM builds").fetchone()
        if oldest is None or oldest > self.since + 1 or latest < self.since:
            return None
        return {path for (path,) in self.conn.execute("SELECT DISTINCT path FROM changes WHERE version > ?", (self.since,))
                if not path.startswith("#listing/")}

    def _plan_rows(self, rows) -> None:
        for key, tag, media, modified in rows:
            path = key[len(PREVIEW):] + EXPORT_PREVIEW if key.startswith(PREVIEW) else key
            name = self._claim(path, media)
            if name is None:
                continue
            entry = [path, tag, modified, "", []]
            held = self.had.get(name)
            if held is not None and held[:2] == entry[:2]:  # the same bytes: the same files, perhaps a new time
                self.files[name] = [*entry[:4], held[4]]
                if held[2] != modified:
                    self.retimed.append((name, key))
            else:
                self.files[name] = entry
                self.stale.append((name, key))

    def _plan_archives(self) -> None:
        by_feed: dict[str, list[str]] = {}
        for name, held in self.had.items():
            base = archive_feed(held[0])
            if base is not None:
                by_feed.setdefault(base, []).append(name)
        held_at = {held[0]: held for held in self.had.values()}  # URL path → its manifest entry
        latest = self.conn.execute("SELECT report FROM builds ORDER BY version DESC LIMIT 1").fetchone()
        made_by = json.loads(latest[0]).get("made_by", "") if latest else ""  # the code and settings of the store's rows
        pages: list[tuple] = []  # (listing key, page, page key, listing made, its date, its IDs or None: nothing to render)
        cuts: dict[str, tuple[int, ...]] = {}  # listing key → its frozen archive pages (paging.Listing.cuts)
        for key, head, made_from, size in self.conn.execute("SELECT key, head, made_from, size FROM listings ORDER BY key").fetchall():
            made = f"{made_from} {self.page_size} {self.shape} {made_by}"  # made_by: the rows' code and settings
            kept = {fmt: by_feed.get(feed_path(key, fmt), []) for fmt in FORMATS}
            if all(names and all(self.had[n][5] == made for n in names) for names in kept.values()):
                for names in kept.values():  # the listing as it was: its pages too
                    self.files.update((n, self.had[n]) for n in names)
                continue
            head = pickle.loads(head)
            cuts[key] = head.cuts
            # The head as a page shows it, but its date and the listing's cuts (a page's digest holds its own items).
            about = repr(dataclasses.replace(head, changed=None, cuts=()))
            count = page_count(size, self.page_size, head.cuts)
            stored = {page: (modified, digest) for page, modified, digest in self.conn.execute(
                "SELECT page, modified, digest FROM listing_pages WHERE listing = ?", (key,))}
            # Each page by the digest it was dated by (versions.py); one with none (never so far) is rendered.
            keys = {page: page_key(self.shape, about, made_by, self.page_size, stored[page][1]) if page in stored else ""
                    for page in range(2, count + 1)}
            ids = None
            for page, key_ in keys.items():
                when = datetime.fromisoformat(stored[page][0]) if page in stored else head.changed
                same = key_ and all((held := held_at.get(archive_path(key, fmt, page))) is not None and held[1]
                                    and held[3] == key_ and held[2] == when.isoformat() for fmt in FORMATS)
                if ids is None and not same:  # a page to render or redate: the listing's order, read once
                    ids = self._ids(key)
                pages.append((key, page, key_, made, when, None if same else ids))
        self.archives = [(key, fmt, page, page_key, made, when) for key, page, page_key, made, when, _ in self._in_turn(pages, cuts)
                         for fmt in FORMATS]

    def _in_turn(self, pages: list[tuple], cuts: dict[str, tuple[int, ...]]) -> list[tuple]:
        """Archive pages in the order that renders each item once: the site-wide feed's from the oldest, each
        category's page right after the site-wide page that holds its newest item, so that its items are
        still among the fragments the renderer keeps (formats/fragments.py) and it is only put together.
        Pages kept as they are (no IDs read) come first, in any order."""
        if all(ids is None for *_, ids in pages):
            return pages
        order = next((ids for key, *_, ids in pages if key == "" and ids is not None), None)  # read by the plan
        if order is None:
            order = self._ids("")
        place = {id_: len(order) - at for at, id_ in enumerate(order)}  # 1 = the oldest

        def ready(page: tuple) -> tuple:
            key, number, *_, ids = page
            if ids is None:
                return -1, False, key, number
            start, end, _ = page_items(len(ids), self.page_size, number, cuts.get(key, ()))
            return max((place.get(id_, 0) for id_ in ids[start:end]), default=0), key != "", key, number
        return sorted(pages, key=ready)

    def _ids(self, key: str) -> list[str]:
        """A listing's item IDs, newest first (store.py's listing_items)."""
        return [row[0] for row in self.conn.execute("SELECT id FROM listing_items WHERE listing = ? ORDER BY rank, id", (key,))]

    def touched(self, had: dict) -> dict[str, str]:
        """Every file the plan may write, retime, redate or remove (name → URL path): all but those it keeps as they are."""
        redone = {name for name, _ in self.stale} | {name for name, _ in self.retimed}
        archives = dict(self._archive_names())
        names = {**{name: entry[0] for name, entry in self.files.items()}, **archives}  # as names() gives them
        touched = {name: path for name, path in names.items() if name not in had or name in redone or name in archives}
        touched.update((name, entry[0]) for name, entry in had.items() if name not in names)  # to remove
        return touched

    def _archive_names(self) -> Iterator[tuple[str, str]]:
        """(file name, URL path) of each archive page the plan looks at (self.archives)."""
        for key, fmt, page, *_ in self.archives:
            path = archive_path(key, fmt, page)
            name = export_file(path, FORMATS[fmt].media_type)
            if name is not None:
                yield name, path

    def names(self) -> dict[str, str]:
        """Every file name the build will hold, with its URL path."""
        out = {name: entry[0] for name, entry in self.files.items()}
        out.update(self._archive_names())
        return out

    def write(self, progress: Callable[[int, int], object]) -> None:
        self.stale += [(name, key) for name, key in self.retimed if not self._retime(name)]
        total, done = len(self.stale) + len(self.archives), 0
        if self.ahead is not None:  # the other files first, while the workers still make the archive pages ahead
            theirs = self._share_stale([w for w, _ in self.ahead.handed if w is not None])
            try:
                done = self._write_stale(progress, done, total)
                self.stale, self.early = [], self.ahead.collect()
                done = self._written_there(theirs, progress, done, total)
            except BaseException:
                self._end_shares(theirs)
                raise
        renders = []  # (task, page key, listing made) of the archive pages to render
        for key, fmt, page, page_key, made, when in self.archives:
            task = self._archive(key, fmt, page, page_key, made, when)
            if task is not None and not self._staged(task, page_key, made):
                renders.append((task, page_key, made))
            else:
                done += 1
                progress(done, total)
        if self.redating:
            renders += self._redate_all()
        workers = ExportWorkers() if self.job is not None and len(renders) >= FROM_PAGES else None
        with workers or contextlib.nullcontext():
            self._write(progress, done, total, renders, workers)

    def _write(self, progress: Callable[[int, int], object], done: int, total: int, renders: list, workers) -> None:
        handed = []
        if workers is not None and workers.workers:  # rendered there while the other files are written here
            handed, renders = workers.start(self.job, [task for task, *_ in renders]), {r[0]: r for r in renders}
        done = self._write_stale(progress, done, total)
        if handed:
            for task, result in workers.collect(handed):
                self._rendered(*renders[task], result)
                done += 1
                progress(done, total)
        else:
            for render in renders:
                self._rendered(*render, None)
                done += 1
                progress(done, total)

    def _write_stale(self, progress: Callable[[int, int], object], done: int, total: int,
                     stale: list[tuple[str, str]] | None = None) -> int:
        """Write the resources' files (stale, default self.stale: (file name, URL path)) from their stored bytes and coded
        forms; how many files are done now."""
        return self._take(write_files(self.conn, self.out, self._tasks(self.stale if stale is None else stale), self.folders),
                          progress, done, total)

    def _tasks(self, stale: list[tuple[str, str]]) -> list[FileTask]:
        """(file name, URL path) → what writing each file from the store takes (exportfolder.write_files)."""
        return [(name, key, mtime_ns(self.files[name][2]), self._beside(name)) for name, key in stale]

    def _take(self, results: Iterable[Written], progress: Callable[[int, int], object], done: int, total: int) -> int:
        """Note the files written (here or by a worker; exportfolder.write_files's results); how many are done now."""
        for name, forms, written, left_out in results:
            if forms is not None or left_out is not None:  # neither: the store has no such resource
                self._wrote(name, forms, written, left_out)
                done += 1
                progress(done, total)
        return done

    def _share_stale(self, workers: list) -> tuple[list, threading.Thread | None]:
        """Hand a share of the files to write to each worker that made archive pages ahead (EarlyPages), to write after
        its pages: they were handed out while the build committed its article pages, and are made by now (at 10,000
        articles the workers sat idle while this process wrote every file, 0.8 s). This process keeps the first share.
        Not to workers handed pages now (_write): they would write theirs after seconds of pages, and this process
        wait. The shares go from a thread: a worker still making pages reads them only then. Returns what each worker
        has (_written_there) and that thread."""
        if not workers or self.job is None or len(self.stale) < SHARE_FROM:
            return [], None
        size = -(-len(self.stale) // (len(workers) + 1))
        mine, handed = self.stale[:size], []
        for n, worker in enumerate(workers, 1):
            share = self.stale[n * size:(n + 1) * size]
            if share:
                handed.append((worker, share, Files(self.job.store, str(self.out), self._tasks(share))))
        self.stale = mine

        def hand() -> None:
            for worker, share, files in handed:
                try:
                    pickle.dump(files, worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    worker.stdin.flush()
                except (OSError, ValueError):  # a worker that died, or was ended (an export that failed): collect finds
                    pass  # nothing from it, and its share is written here

        thread = threading.Thread(target=hand, name="export-share", daemon=True)
        thread.start()
        return [(worker, share) for worker, share, _ in handed], thread

    def _end_shares(self, theirs: tuple[list, threading.Thread | None]) -> None:
        """End the workers handed a share (_share_stale) of an export that failed, and the thread handing them out: before
        export_store says what the folder holds, empties one that was empty, and lets go of its lock, none may write
        into it. Killed, not asked to stop: a worker still writing its pages' results, which this process no longer
        reads, would read no message (and the thread, stuck handing it its share, would hold its input for ever)."""
        handed, thread = theirs
        for worker, _ in handed:
            worker.kill()
        for worker, _ in handed:
            worker.wait()
        if thread is not None:
            thread.join(timeout=10)  # its write to a worker that is gone fails at once (EPIPE)
        if handed:
            self.shared = True  # some of their files may be in the folder: it is not as it was (export_store)

    def _written_there(self, theirs: tuple[list, threading.Thread | None], progress: Callable[[int, int], object],
                       done: int, total: int) -> int:
        """Take in the files the workers wrote (_share_stale); write here the shares of a worker that failed."""
        handed, thread = theirs
        if thread is None:
            return done
        thread.join()
        results = list(ExportWorkers.collect(handed))
        done = self._take((result for _, result in results if result is not None), progress, done, total)
        failed = [file for file, result in results if result is None]
        return self._write_stale(progress, done, total, failed) if failed else done

    def _archive(self, key: str, fmt: str, page: int, page_key: str, made: str, when: datetime) -> Task | None:
        """An archive page: kept, given its new time or redated; or the task that renders it (None if done)."""
        path = archive_path(key, fmt, page)
        name = self._claim(path, FORMATS[fmt].media_type)
        if name is None:
            return None
        held, modified = self.had.get(name), when.isoformat()
        if held is not None and held[3] == page_key and held[1]:  # the same items: only the date may move
            if held[2] == modified:
                self.files[name] = [*held[:5], made]
                return None
            self.files[name] = [path, held[1], modified, page_key, held[4], made]
            if fmt not in DATES:  # no date in the bytes: the same file at a new time
                if self._retime(name):
                    return None
            elif not held[4]:  # redated (write: a few threads), or rendered if the file is not the one it names
                self.redating.append((key, fmt, page, page_key, made, when, name, held))
                return None
        return self._task(key, fmt, page, page_key, made, modified, name, path, held)

    def _task(self, key: str, fmt: str, page: int, page_key: str, made: str, modified: str, name: str, path: str,
              held: list | None) -> Task:
        self.files[name] = [path, "", modified, page_key, [], made]  # its place among the files, filled once made
        coded = not self.empty and (held is None or not held[1] or bool(held[4]))  # an older export's, a killed build's
        return key, fmt, page, name, held[1] if held is not None and not held[4] else "", coded

    def _redate(self, page: tuple) -> str | None:
        """(a thread) An archive page's file with its date moved, written whole; its ETag, or None when the file
        is not the one the manifest names (removed, or changed by anything but a build: its time is not the
        manifest's, as _retime trusts it too) or holds no such date: to be rendered.

        The old file is mapped, not read: of its ~300 KB only the head before the date is copied, the rest is
        hashed and written from the mapping (a one-file build redates hundreds of pages)."""
        _, fmt, _, _, _, when, name, held = page
        target = self.out / name
        try:
            source = open(target, "rb")
        except FileNotFoundError:
            return None
        with source:
            found = os.fstat(source.fileno())
            if found.st_mtime_ns != mtime_ns(held[2]) or found.st_size == 0:
                return None
            with mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as before, memoryview(before) as view:
                try:
                    head, rest = redated_head(fmt, before, datetime.fromisoformat(held[2]), when)
                except ValueError:
                    return None
                write_file(target, head, mtime_ns(when.isoformat()), view[rest:])
                return etag(head, view[rest:])

    def _redate_all(self) -> list[tuple]:
        """Redate the pages _archive left to it, a few at a time (reading, hashing and writing let go of the
        GIL; a one-file change redates hundreds); returns the render tasks of those that could not be."""
        renders = []
        with ThreadPoolExecutor(REDATE_THREADS) as pool:
            for page, tag in zip(self.redating, pool.map(self._redate, self.redating)):
                key, fmt, number, page_key, made, when, name, held = page
                if tag is None:
                    renders.append((self._task(key, fmt, number, page_key, made, when.isoformat(), name, self.files[name][0],
                                               held), page_key, made))
                else:
                    self.files[name][1] = tag
                    self.written += 1
                    self.changed.append(self.files[name][0])
        self.redating = []
        return renders

    def _staged(self, task: Task, page_key: str, made: str) -> bool:
        """Take the page EarlyPages made, if it is this page at this date: its file moved into place."""
        found = self.early.get(task[3])
        if found is None or found[:2] != (task, page_key) or found[2][2] != self.files[task[3]][2] or found[2][1] is None:
            return False
        result, staged = found[2], found[3]
        if result[3]:  # written there: moved here (renamed whole over the old one)
            target = self.out / task[3]
            try:
                if target.parent not in self.folders:
                    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                    self.folders.add(target.parent)
                for suffix in SUFFIXES.values() if task[5] else ():
                    unlink(target.with_name(target.name + suffix))
                os.replace(staged, target)
            except OSError as exc:
                if exc.errno not in LEAVE_OUT and exc.errno != errno.EXDEV and not isinstance(exc, FileNotFoundError):
                    raise
                return False  # rendered again, here or by a worker (EXDEV: a folder of the export on a file system of its own)
        self._rendered(task, page_key, made, result)
        return True

    def _rendered(self, task: Task, page_key: str, made: str, result: Result | None) -> None:
        """An archive page made by a worker (result) or to be made here (None): its entry, its file."""
        key, fmt, page, name, had, _ = task
        path, held = self.files[name][0], self.had.get(name)
        if result is None:
            res = self.pages(key, fmt, page=page)
            if res is None:
                del self.files[name]
                return
            self.files[name] = [path, res.etag, res.last_modified.isoformat(), page_key, [], made]
            if res.etag == had and (held[2] == self.files[name][2] or self._retime(name)):
                return
            self._put(name, res.body, {})
            return
        _, tag, modified, wrote = result
        if tag is None:  # no such page, or a name that cannot be a file
            del self.files[name]
            if modified != "no such page":
                log.warning("export: /%s left out (%s); the app still serves it", path, modified)
                self.left_out.append(path)
            return
        self.files[name] = [path, tag, modified, page_key, [], made]
        if wrote:
            self.written += 1
            self.changed.append(path)
        elif held[2] != modified and not self._retime(name):  # the same bytes, a new time, but the file is gone
            self._rendered(task, page_key, made, None)

    def _claim(self, path: str, media: str) -> str | None:
        """The file name for a path, or None (and the path left out) when it has none or another has it."""
        name = export_file(path, media)
        if name is None or name in self.files:
            log.warning("export: /%s left out (not a path a file can have); the app still serves it", path)
            self.left_out.append(path)
            return None
        return name

    def _retime(self, name: str) -> bool:
        """Give a file whose bytes are unchanged, and its coded forms, its resource's new time (no byte
        rewritten); False when one is missing (removed by hand), to be written again."""
        entry = self.files[name]
        target, mtime = self.out / name, mtime_ns(entry[2])
        try:
            for suffix in ("", *(SUFFIXES[c] for c in entry[4])):
                os.utime(target.with_name(target.name + suffix), ns=(mtime, mtime))
        except FileNotFoundError:
            return False
        self.changed.append(entry[0])
        return True

    def _put(self, name: str, body: bytes, forms: dict[str, bytes]) -> None:
        """Write a file and the coded forms given; remove forms it had that are not given."""
        self._wrote(*put_file(self.out, name, body, forms, self._beside(name), mtime_ns(self.files[name][2]), self.folders))

    def _beside(self, name: str) -> tuple[str, ...]:
        """The coded forms that may be beside a file now: none in a folder that was empty, those its entry names if it
        has one (a file of a killed build, or of another store's, may have any)."""
        held = self.had.get(name)
        return () if self.empty else tuple(held[4]) if held is not None and held[1] else tuple(SUFFIXES)

    def _wrote(self, name: str, forms: list[str] | None, written: int, left_out: str | None = None) -> None:
        """Note a file written here or by a worker, with the coded forms beside it, and how many files that was; or one
        left out, why (it cannot be a file: the app still serves it)."""
        entry = self.files[name]
        if left_out is not None:
            log.warning("export: /%s left out (%s); the app still serves it", entry[0], left_out)
            self.left_out.append(entry[0])
            del self.files[name]
            return
        self.written += written
        entry[4] = forms
        self.changed.append(entry[0])


class EarlyPages:
    """The archive pages of a build rendered by worker processes while the build still commits to the store
    (a whole build's article pages take seconds more, on one core): `feedsvc build` starts it once the build's
    listings and items are committed, and export_store takes the pages it would render from it.

    Each page is written into a staging folder beside the export folder (.OUT.staging-PID, never served) and
    renamed into the export only if it is the page the export needs: the same file name, page key, date and
    file it would replace. Whatever is left is removed with the staging folder (close), and a killed build's
    staging folder by the next build.
    """

    def __init__(self, store: str | Path, out: str | Path, job: Job, page_size: int, shape: str):
        out = export_folder(out)
        self.staging = out / f"{STAGING}{os.getpid()}"
        self.handed: list = []
        self.tasks: dict[str, tuple] = {}  # file name → (task, page key)
        self.workers: ExportWorkers | None = None
        for leftover in out.glob(f"{STAGING}*") if not out.is_symlink() else ():
            remove_staging(leftover)
        try:  # an export of the earlier layout (a link) is taken over as an empty folder
            manifest = None if out.is_symlink() else read_manifest(out)
        except ExportError:
            return  # not an export: export_store says so, and writes nothing
        empty = manifest is None
        if empty or manifest.get("format") != FORMAT or manifest.get("store") != store_token(store):
            manifest = None  # written whole
        had = {} if manifest is None else manifest.get("files", {})
        conn = connect(store, readonly=True)
        try:
            conn.execute("BEGIN")
            writer = _Writer(out, had, conn, lambda *a, **k: None, page_size, shape)
            writer._plan_archives()
            conn.execute("COMMIT")
        finally:
            conn.close()
        tasks = []
        for key, fmt, page, page_key, _, _ in writer.archives:
            path = archive_path(key, fmt, page)
            name = export_file(path, FORMATS[fmt].media_type)
            held = had.get(name)
            if name is None or name in self.tasks or (held is not None and held[3] == page_key and held[1]):
                continue  # not a file, or kept or redated by the export: nothing to render
            task = (key, fmt, page, name, held[1] if held is not None and not held[4] else "",
                    not empty and (held is None or not held[1] or bool(held[4])))  # as _Writer._archive makes it
            self.tasks[name] = (task, page_key)
            tasks.append(task)
        if len(tasks) >= FROM_PAGES:
            try:  # made here, a folder of its own: never one a link at its name leads to (outside the export)
                self.staging.mkdir(parents=True)
            except OSError as exc:
                log.warning("export: no pages made ahead (%s cannot be made: %s); the export makes them", self.staging, exc)
                return
            self.workers = ExportWorkers()  # none on one core: the export renders the pages itself
            self.handed = self.workers.start(dataclasses.replace(job, store=str(store), out=str(self.staging)), tasks)

    def collect(self) -> dict[str, tuple]:
        """File name → (task, page key, result, staged file) of each page made; waits for the workers."""
        found = {}
        try:
            for task, result in ExportWorkers.collect([(w, share) for w, share in self.handed if w is not None]):
                if result is not None:  # None: its worker failed; the export makes the page
                    found[task[3]] = (task, self.tasks[task[3]][1], result, self.staging / task[3])
        except OSError as exc:  # a full disk: the export renders them itself, and says so if it cannot
            log.warning("export: archive pages made ahead were lost (%s); made again", exc)
            found = {}
        self.handed = []
        return found

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()
        remove_staging(self.staging)


def archive_page(publisher) -> Pages:
    """Archive pages as the app serves them (serving/variants.py: the same Feed, bytes, date and headers),
    without compressing them: the export compresses only the pages whose bytes changed."""
    from ..paging import page_feed
    from ..resource import Rendered

    def make(key: str, fmt: str, page: int):
        listing = publisher.snapshot.listings.get(key)
        if listing is None:
            return None
        snapshot = publisher.snapshot
        options = {**publisher.public, "updated": page_date(snapshot.changed[key], snapshot.pages.get(key, ()), page)}
        feed = page_feed(listing, publisher.site, publisher.options.max_items, page, **options)
        if feed is None:
            return None
        feed = publisher.in_full(feed)  # a rebuild holds placements: the parse store has the rest
        renderer = publisher.renderer
        return Rendered(renderer.fragments.assemble(fmt, feed), FORMATS[fmt].media_type, feed.updated, precompress=False,
                        **renderer._feed_options(fmt, feed))
    return make


def archive_shape(site, public: dict) -> str:
    """What archive pages are made from besides the store's rows: the site, the public feeds' options and the
    code that renders them (store.code_version)."""
    from .. import model, paging, resource, urls
    from ..formats import atom, content, fragments, jsonfeed, ondemand, rss, templates
    from ..store import code_version, short_digest

    options = short_digest(repr((site, sorted(public.items()))))
    return f"{code_version(model, paging, resource, urls, atom, content, fragments, jsonfeed, ondemand, rss, templates)}-{options}"


