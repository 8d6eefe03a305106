"""The static export: what the build store holds — every resource a request names without a key, each
feed's page for browsers and every feed's archive pages — as files that nginx serves at the same URLs,
with the .gz and .br that pay beside them (precompress.py).

The export folder OUT holds a manifest (MANIFEST) naming the store it was written from, that store's build
version, and every file with its URL path, the resource's ETag and time. A build writes only the files
whose resource changed since then and removes those of resources gone; with no manifest, or one written
from another store, it writes everything. A file is written under a temporary name beside its own and
renamed over it, so nginx serves the old file or the new, never a part of one; its mtime is its
resource's Last-Modified. The manifest is written last, so a build that fails or is killed leaves every
file whole and the next build finishes the work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from ..formats import FORMATS
from ..paging import page_count
from ..store import connect
from ..urls import EXPORT_PREVIEW, PREVIEW, export_file, feed_path
from .archive import DATES, date_end, gzip_respliced, gzip_split, page_items, page_keys, redated
from .exportfolder import (LEAVE_OUT, MANIFEST, ExportError, etag, folder_lock, mark_adding, mtime_ns,  # noqa: F401
                           read_manifest, remove_files, store_token, take_over, unlink, write_file, write_manifest,
                           writing)
from .precompress import SUFFIXES, chosen, coded_forms

log = logging.getLogger(__name__)

FORMAT = "feedsvc-export 1"
_CHUNK = 200  # resources whose bytes are read from the store at once

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
                 progress: Callable[[int, int], object] | None = None) -> ExportResult:
    """Bring the export folder `out` up to the store's latest build; `pages` makes archive pages.

    shape names what archive pages are made from besides the store's rows (settings, code): another
    shape renders them all again.

    progress(done, total) is told of the files to write as they are written.
    """
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out.parent / f".{out.name}.lock"):
        earlier = take_over(out)
        token = store_token(store)
        manifest = read_manifest(out)
        full = manifest is None or manifest.get("format") != FORMAT or manifest.get("store") != token
        had = {} if manifest is None else manifest.get("files", {})
        conn = connect(store, readonly=True)
        try:
            conn.execute("BEGIN")  # one build's rows throughout, whatever the builder commits meanwhile
            version = conn.execute("SELECT MAX(version) FROM builds").fetchone()[0] or 0
            with writing(out) as interrupted:  # a build killed before: its leftovers are swept, its new names ours
                had = {**{name: [path, "", "", "", [], "", [0, 0]] for name, path in interrupted.items()}, **had}
                writer = _Writer(out, {} if full else had, conn, pages, page_size, shape)
                writer.plan()
                if writer.stale or writer.retimed or writer.archives or set(had) - set(writer.files):
                    mark_adding(out, {**interrupted, **{n: p for n, p in writer.names().items() if n not in had}})
                try:
                    writer.write(progress or (lambda done, total: None))
                except OSError as exc:
                    if manifest is None:  # the folder was empty or missing: left so
                        for entry in out.iterdir():
                            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                    exc.files_written = 0 if manifest is None else writer.written  # none: as it was (the CLI says which)
                    raise
                removed = remove_files(out, {name: entry for name, entry in had.items() if name not in writer.files})
                if writer.files != had or manifest is None or full:
                    if writer.written or removed:
                        os.sync()  # the files on disk before the manifest says so: one flush, not an fsync per file
                    write_manifest(out, {"format": FORMAT, "store": token, "version": version, "files": writer.files})
                else:  # nothing changed: the folder holds the build it names (the last that changed a file)
                    version = manifest["version"]
            conn.execute("COMMIT")
        finally:
            conn.close()
        for folder in earlier:
            shutil.rmtree(folder, ignore_errors=True)
    return ExportResult(version, full, len(writer.files), writer.written, len(writer.files) - len(writer.changed),
                        removed, tuple(writer.changed), tuple(writer.left_out))


class _Writer:
    """Decides which files a build writes (plan) and writes them (write).

    A manifest entry: [URL path, ETag, Last-Modified (ISO 8601), page key, [codings written]] and, for an
    archive page, [listing made from, [date end in the body, rest start in the .gz]] (archive.py).
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

    def plan(self) -> None:
        for key, tag, media, modified in self.conn.execute(
                "SELECT path, etag, media_type, last_modified FROM resources ORDER BY path"):
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
        by_feed: dict[str, list[str]] = {}
        for name, held in self.had.items():
            base, _, page = held[0].partition("?page=")
            if page:
                by_feed.setdefault(base, []).append(name)
        made_by: dict[str, str] | None = None
        pages: list[tuple] = []  # (listing key, page, page key, listing made, its date, its IDs)
        for key, head, made_from in self.conn.execute("SELECT key, head, made_from FROM listings ORDER BY key").fetchall():
            made = f"{made_from} {self.page_size} {self.shape}"
            kept = {fmt: by_feed.get(feed_path(key, fmt), []) for fmt in FORMATS}
            if all(names and all(self.had[n][5] == made for n in names) for names in kept.values()):
                for names in kept.values():  # the listing as it was: its pages too
                    self.files.update((n, self.had[n]) for n in names)
                continue
            if made_by is None:
                made_by = dict(self.conn.execute("SELECT id, made_from FROM items"))
            head = pickle.loads(head)
            ids = self._ids(key)
            about = repr(dataclasses.replace(head, changed=None))  # the head as a page shows it, but its date
            keys = page_keys(self.shape, about, ids, made_by, self.page_size, page_count(len(ids), self.page_size))
            pages += [(key, page, page_key, made, head.changed, ids) for page, page_key in keys.items()]
        self.archives = [(key, fmt, page, page_key, made, when) for key, page, page_key, made, when, _ in self._in_turn(pages)
                         for fmt in FORMATS]

    def _in_turn(self, pages: list[tuple]) -> list[tuple]:
        """Archive pages in the order that renders each item once: the site-wide feed's from the oldest, each
        category's page right after the site-wide page that holds its newest item, so that its items are
        still among the fragments the renderer keeps (formats/fragments.py) and it is only put together."""
        if not pages:
            return pages
        order = self._ids("")
        place = {id_: len(order) - at for at, id_ in enumerate(order)}  # 1 = the oldest

        def ready(page: tuple) -> tuple:
            key, number, *_, ids = page
            start, end, _ = page_items(len(ids), self.page_size, number)
            return max((place.get(id_, 0) for id_ in ids[start:end]), default=0), key != "", key, number
        return sorted(pages, key=ready)

    def _ids(self, key: str) -> list[str]:
        """A listing's item IDs, newest first (store.py's listing_items)."""
        return [row[0] for row in self.conn.execute("SELECT id FROM listing_items WHERE listing = ? ORDER BY rank, id", (key,))]

    def names(self) -> dict[str, str]:
        """Every file name the build will hold, with its URL path."""
        out = {name: entry[0] for name, entry in self.files.items()}
        for key, fmt, page, *_ in self.archives:
            path = f"{feed_path(key, fmt)}?page={page}"
            name = export_file(path, FORMATS[fmt].media_type)
            if name is not None:
                out[name] = path
        return out

    def write(self, progress: Callable[[int, int], object]) -> None:
        self.stale += [(name, key) for name, key in self.retimed if not self._retime(name)]
        total, done = len(self.stale) + len(self.archives), 0
        for start in range(0, len(self.stale), _CHUNK):
            chunk = dict((key, name) for name, key in self.stale[start:start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            for key, body, gz, br in self.conn.execute(f"SELECT path, body, gzip, br FROM resources WHERE path IN ({marks})",
                                                       list(chunk)):
                self._put(chunk[key], bytes(body), coded_forms(bytes(body), {"gzip": gz, "br": br}))
                done += 1
                progress(done, total)
        for page in self.archives:
            self._archive(*page)
            done += 1
            progress(done, total)

    def _archive(self, key: str, fmt: str, page: int, page_key: str, made: str, when: datetime) -> None:
        """An archive page: kept, given its new time, redated and spliced, or rendered and written."""
        path = f"{feed_path(key, fmt)}?page={page}"
        name = self._claim(path, FORMATS[fmt].media_type)
        if name is None:
            return
        held, modified = self.had.get(name), when.isoformat()
        if held is not None and held[3] == page_key and held[1]:  # the same items: only the date may move
            if held[2] == modified:
                self.files[name] = [*held[:5], made, held[6]]
                return
            if fmt not in DATES:  # no date in the bytes: the same files at a new time
                self.files[name] = [path, held[1], modified, page_key, held[4], made, held[6]]
                if self._retime(name):
                    return
            else:
                target = self.out / name
                try:
                    before = target.read_bytes()
                    coded = target.with_name(target.name + ".gz").read_bytes() if "gzip" in held[4] else None
                except FileNotFoundError:
                    before = None
                if before is not None and etag(before) == held[1]:
                    body = redated(fmt, before, datetime.fromisoformat(held[2]), when)
                    split = date_end(fmt, body)
                    if coded is not None and held[6][0] == date_end(fmt, before):
                        gz, rest_at = gzip_respliced(coded, held[6][1], body, split)
                    else:
                        gz, rest_at = gzip_split(body, split)
                    self.files[name] = [path, etag(body), modified, page_key, [], made, [split, rest_at]]
                    self._put(name, body, chosen(len(body), {"gzip": gz}))
                    return
        res = self.pages(key, fmt, page=page)
        if res is None:
            return
        entry = [path, res.etag, res.last_modified.isoformat(), page_key, [], made, [0, 0]]
        if held is not None and held[1] == res.etag and len(held) > 6:
            self.files[name] = [*entry[:4], held[4], made, held[6]]
            if held[2] == entry[2] or self._retime(name):
                return
        split = date_end(fmt, res.body)
        gz, rest_at = gzip_split(res.body, split)
        entry[6] = [split, rest_at]
        self.files[name] = entry
        self._put(name, res.body, chosen(len(res.body), {"gzip": gz}))

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
        entry = self.files[name]
        target, mtime = self.out / name, mtime_ns(entry[2])
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            for coding, suffix in SUFFIXES.items():
                if coding in forms:
                    write_file(target.with_name(target.name + suffix), forms[coding], mtime)
                    self.written += 1
                else:
                    unlink(target.with_name(target.name + suffix))
            write_file(target, body, mtime)
            self.written += 1
        except OSError as exc:
            if exc.errno not in LEAVE_OUT:
                raise
            log.warning("export: /%s left out (%s); the app still serves it", entry[0], exc.strerror or exc)
            self.left_out.append(entry[0])
            del self.files[name]
            return
        entry[4] = sorted(forms)
        self.changed.append(entry[0])


def archive_page(publisher) -> Pages:
    """Archive pages as the app serves them (Publisher.variant: the same Feed, bytes, date and headers),
    without compressing them: the export compresses only the pages whose bytes changed."""
    from ..paging import page_feed
    from ..resource import Rendered

    def make(key: str, fmt: str, page: int):
        listing = publisher.snapshot.listings.get(key)
        if listing is None:
            return None
        options = {**publisher.public, "updated": publisher.snapshot.changed[key]}
        feed = page_feed(listing, publisher.site, publisher.options.max_items, page, **options)
        if feed is None:
            return None
        renderer = publisher.renderer
        return Rendered(renderer.fragments.assemble(fmt, feed), FORMATS[fmt].media_type, feed.updated, precompress=False,
                        **renderer._feed_options(fmt, feed))
    return make


def archive_shape(site, public: dict) -> str:
    """What archive pages are made from besides the store's rows: the site, the public feeds' options and the
    code that renders them (store.code_version)."""
    from .. import model, paging, resource, urls
    from ..formats import atom, content, fragments, jsonfeed, ondemand, rss
    from ..store import code_version

    options = hashlib.sha256(repr((site, sorted(public.items()))).encode()).hexdigest()[:16]
    return f"{code_version(model, paging, resource, urls, atom, content, fragments, jsonfeed, ondemand, rss)}-{options}"


