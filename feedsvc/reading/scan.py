"""Incremental reading of the articles folder: stat every file, parse only new or changed ones,
hold back a file that is still being written until it is complete (closed, or settled), and keep a published
article's last good version while its file reads as broken (Kept).
"""
from __future__ import annotations

import logging
import os
import time
from collections import abc
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from ..model import Article, names_site, reusing
from .articles import Broken, Options, Skipped, is_placed, placement
from ..config import not_a_folder
from .folder import Folder, Unreadable
from .pool import POOL_FROM, read_files

if TYPE_CHECKING:
    from .readahead import ReadAhead

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.3  # a file changed more recently than this may still be being written (when the kernel cannot say)
# A file open for writing but unchanged this long is read anyway: its writer never closes it. What a writer that pauses
# longer than this mid-file (a network copy stalled, a script waiting on input) gets published is its half: at 10 s a
# tester's 12 s pause published a truncated title to every feed and the hub.
BUSY_HOLD_SECONDS = 60.0
COMPLETE_EVENTS = frozenset({"closed", "moved"})  # what a watcher saw last of a file that is complete (scheduler.py)
RENAMED_EVENT = "renamed"  # what a watcher saw last of a file renamed to another article's name: gone for good
# Files to read in one scan from which they are first read for placement only (a cold start, a folder copied
# in): what decides where each goes and how it is dated, 4–5 times faster than a full parse. The publisher
# then reads the first pages' articles in full (complete()) and the rest in the background (adopt()).
PLACE_FROM = 1000
# Of a placement scan's files, this many of the newest (by mtime: the date of a file without a `date:`) are read in
# full at once, by the reading workers while this process places the rest: most articles of the first pages
# are among them, so complete() finds them read instead of reading them after the placement.
FIRST_GUESS = 1000


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: the articles read, skipped files, what moved, and when each article's file was modified.

    `came` and `went` say what changed since the scanner's previous result (scan() or complete()) as objects: the
    articles held now that it did not hold, and those it held that it holds no more (a changed file's old article
    went, its new one came). A caller that saw every result can follow the folder by them alone, without looking at
    every article; `articles`, the whole list, is made only when asked (before a later scan changes the articles)."""

    whole: Callable[[], tuple[Article, ...]] | tuple[Article, ...]  # the articles, or what makes them when asked
    skipped: tuple[Skipped, ...]
    changed: frozenset[str] = frozenset()  # sources added, changed or removed since the last scan
    pending: frozenset[str] = frozenset()  # sources still being written: looked at again shortly
    modified: Mapping[str, float] = field(default_factory=dict)  # source → its mtime (Unix seconds) when it was read
    came: tuple[Article, ...] = ()  # articles held now and not in the previous result, in path order
    went: tuple[Article, ...] = ()  # articles of the previous result not held now
    stored: int = 0  # of `changed`, files this process had not held, taken from the parse store as they were (a restart)

    @cached_property
    def articles(self) -> tuple[Article, ...]:
        """Every article read, in path order; an ID may repeat (see unique_ids)."""
        return self.whole if isinstance(self.whole, tuple) else self.whole()


@dataclass(frozen=True)
class Kept:
    """A file that reads as broken now (articles.Broken: empty, a front-matter typo…; or folder.Unreadable) whose article
    was published: the skip, reported as any other, and the article as last read good, which stays published as it was
    (no update, no tombstone, no ping) until the file reads as an article again, leaves publication or goes.

    A scan holds it as the file's result, and the parse store keeps it at the broken file's stat (pickled by this name,
    feedsvc.reading.scan.Kept), so a restart or a builder taking over keeps the article too (each asks
    `Scanner.published` again)."""

    skip: Skipped
    article: Article  # read in full (its page is rendered from it)
    stat: tuple[int, int]  # (size, mtime_ns) it was read at


@dataclass(slots=True)  # one a file: 100,000 at 100,000 articles
class _Entry:
    """A file's stat when it was read, packed in one int (_packed), and what it was read as."""

    packed: int  # size | mtime_ns << 64: one int of 44 bytes, not a tuple of two of 120 (8 MiB at 100,000 files)
    result: Article | Skipped | Kept
    walked: object = None  # the mark of the last full walk that found the file as it is (Scanner._unchanged)

    @property
    def stat(self) -> tuple[int, int]:
        """(size, mtime_ns) when it was read."""
        return self.packed & _SIZE_BITS, self.packed >> 64


_SIZE_BITS = (1 << 64) - 1


def _packed(size: int, mtime_ns: int) -> int:
    """A file's stat as _Entry keeps it: an mtime before 1970 (negative) too, as >> 64 rounds down."""
    return size | mtime_ns << 64


def _entry(stat: tuple[int, int], result: Article | Skipped | Kept) -> _Entry:
    """The entry of a file read at this stat; one that could not be read this time (Unreadable) matches no stat, so
    the next look reads it again (a file made readable by chmod keeps its size and mtime)."""
    return _Entry(_AGAIN if isinstance(_skip(result), Unreadable) else _packed(*stat), result)


_AGAIN = -1  # no file's packed stat: its size would be 2**64 - 1


# Seconds a published file the watcher saw go stays published, looked at again after them (by the wake-up a file held
# back brings: Publisher.next_wakeup): a tool that deletes and writes files anew (git checkout) is done by then.
GONE_AFTER = 0.25


@dataclass
class Scanner:
    """Remembers every file's stat and parse result between scans of one folder."""

    root: Path
    options: Options
    settle: float = SETTLE_SECONDS
    clock: Callable[[], float] = time.time
    pool_from: int = POOL_FROM  # files to read in one scan from which worker processes read them
    place_from: int = PLACE_FROM  # files to read in one scan from which they are read for placement first
    # Stored results to take in one scan (a restart) from which only their placements are held (slim): also when every
    # file read is read in full (`feedsvc build`: place_from infinite), as each refresh renders from full articles.
    slim_from: int = field(default_factory=lambda: PLACE_FROM)  # PLACE_FROM as it is when made (tests lower it)
    parsed: Any = None  # a store of parse results by (source, stat): get(source, stat) / put(source, stat, result)
    # The first full walk, when one was made ahead (`feedsvc build`: children.Ahead; a server's cold start:
    # ReadAhead.walk, 0.1 s at 10,000 files and 1 s at 100,000 not walked again beside the reading workers): called
    # with the Folder, its walk, or None (then it is made here).
    ahead: Callable[[Folder], tuple[list, dict] | None] | None = None
    # The first scan's files read ahead (a server's cold start: readahead.py), taken by the scan that reads them.
    read_ahead: "ReadAhead | None" = None
    # Whether an article as last read good is published now (the publisher's last build, or before its first the state
    # store's record of what the feeds carried): a file that reads as broken keeps it published (Kept). None: never.
    published: Callable[[Article], bool] | None = None
    # The last full walk was made ahead, before the watcher was set: the next scan walks the folder again, even one the
    # watcher hints (a file saved between that walk and the watch), and Publisher.next_wakeup asks for it now.
    rewalk: bool = False
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _passed: tuple[Skipped, ...] = ()
    _passed_by_source: dict[str, Skipped] = field(default_factory=dict)
    # Files held back: their stat and since when it is so; a stat of None: a published file the watcher saw go (_vanishing).
    _looks: dict[str, tuple[tuple[int, int] | None, float]] = field(default_factory=dict)
    _last: tuple | None = None  # (skipped,) of the last scan, reused when nothing changed; None before the first
    # Source → the article its entry held at the last result (None: no article), for the entries changed since.
    _before: dict[str, Article | None] = field(default_factory=dict)
    _skips: dict[str, Skipped] = field(default_factory=dict)  # source → its entry's result, for the entries skipped
    _memo: tuple | None = None  # (generation, articles): the whole list, made once per result when asked
    _generation: int = 0  # changes to the articles held, counted at each result
    _placed: set[str] = field(default_factory=set)  # sources whose entry is a placement (is_placed), not yet read in full
    # Sources read in full once (their result is in the parse store, `parsed`) whose entry keeps only the placement:
    # the builder holds no article text but the first pages' (full() brings it back when needed).
    _slim: set[str] = field(default_factory=set)
    _adopted: set[str] = field(default_factory=set)  # sources read in full by adopt() since the last scan
    # Links to files inside, source → the sources on its way (Folder.links): one the watcher names brings the link.
    _links: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def scan(self, hints: Iterable[str] | None = None) -> ScanResult:
        """Look at the folder; read only files whose size or mtime changed and that have settled.

        hints: absolute paths a file watcher saw change since the last scan. Then only those (and files
        still settling) are looked at, instead of a walk of the whole folder; a folder among them, or
        no earlier scan, means a full walk. A mapping of path → what the watcher saw last may say a file
        is complete: "closed" (closed after writing, inotify IN_CLOSE_WRITE) or "moved" (renamed into
        place); such a file is read at once, with no settle wait (see _ready for the rest).
        """
        rewalk, self.rewalk = self.rewalk, False  # asked for once: a scan that fails does not ask for itself again at once
        if not self.root.is_dir():
            raise FileNotFoundError(f"articles folder {self.root} {not_a_folder(self.root)}; set ARTICLES_DIR or create it")
        folder = Folder(self.root)  # its real path, resolved once per scan
        targets = None if hints is None or self._last is None or rewalk else self._targets(folder, hints)
        finished = self._finished(folder, hints)
        vanishing: set[str] = set()  # published files a watcher saw go a moment ago: kept until GONE_AFTER has passed
        if targets is None:
            made, self.ahead = (self.ahead(folder) if self.ahead is not None else None), None
            self.rewalk = made is not None  # a walk made ahead is older than the watcher: the next scan walks again
            mark = object()  # what each entry found as it is is marked with: the rest changed or are gone
            files, passed = made if made is not None else folder.walk(self._unchanged(mark))
            if made is None:  # a walk made ahead, elsewhere, found no links here: the next scan walks again (rewalk)
                self._links = {link: target for link, target in folder.links.items() if target is not None}
            listing = {source: (size, mtime_ns) for source, size, mtime_ns in files}
            # A folder that could not be listed this time (Unreadable: its permissions, an I/O error) keeps its files as
            # they were last read, as a file that cannot be read does: not gone, nor announced deleted.
            unlisted = tuple(key for key, skipped in passed.items() if key.endswith("/") and isinstance(skipped, Unreadable))
            gone = [s for s, entry in self._entries.items() if entry.walked is not mark and s not in listing
                    and not s.startswith(unlisted) and not isinstance(passed.get(s), Unreadable)]
            # A file the watcher saw go is kept GONE_AFTER when a folder among the hints makes this a walk too (`git
            # checkout` makes folders as it deletes and writes files anew), as when it is looked at alone (below); not one
            # renamed to another article's name, which leaves in the refresh that publishes its new name, nor the files of
            # a folder moved out, which go at once (no event names them: those of a folder deleted each have their own).
            seen_go = {folder.source_of(path) for path, seen in hints.items() if seen != RENAMED_EVENT} if isinstance(hints, Mapping) else set()
            vanishing.update(s for s in gone if s in seen_go and self._vanishing(s))
            gone = [s for s in gone if s not in vanishing]
            # The walk leaves out what it found as held; a file among them the watcher saw rewritten (below) is listed.
            listing.update((source, entry.stat) for source in finished
                           if source not in listing and (entry := self._entries.get(source)) is not None and entry.walked is mark)
            noted = self._note_passed(passed)
        else:
            listing, gone, noted = {}, [], dict(self._passed_by_source)
            # Renamed to another article's name: withdrawn in the refresh that publishes the new name, not a moment
            # after it (both were published meanwhile: a duplicate item for an RSS reader polling then, for good).
            renamed = {folder.source_of(path) for path, seen in hints.items() if seen == RENAMED_EVENT} if isinstance(hints, Mapping) else set()
            for source in targets | set(self._looks):
                looked = folder.look(source)  # the walk's rule, for one file
                noted.pop(source, None), noted.pop(source + "/", None)
                if isinstance(looked, tuple):
                    listing[source] = looked
                    continue
                if isinstance(looked, Skipped):
                    noted[source + "/" if looked.source.endswith("/") else source] = looked
                if isinstance(looked, Unreadable):
                    continue  # cannot be looked at for now (a folder on its way unsearchable): held as last read
                if source in self._entries:
                    if looked is None and source not in renamed and self._vanishing(source):
                        vanishing.add(source)
                        continue
                    gone.append(source)
            noted = self._note_passed(noted)
            for link, target in folder.links.items():  # looked at: a link to a file inside now, or no more
                if target is None:
                    self._links.pop(link, None)
                else:
                    self._links[link] = target
        now = self.clock()
        changed: set[str] = set(gone) | noted | self._adopted
        self._adopted = set()
        pending: set[str] = set(vanishing)
        batch: list[tuple[str, tuple[int, int], bool]] = []  # (source, stat, whether an open writer holds it back)
        read: list[tuple[str, tuple[int, int], Article | Skipped]] = []  # results taken, stored or read now
        stored: set[str] = set()  # those taken from the parse store
        # A file the watcher saw written and closed (or moved into place) with the stat it had: rewritten with the same
        # size and mtime (a tool that dates each file by its article, a correction of the same length). Read again,
        # not taken from the parse store, whose result for that stat is the old text.
        rewritten = {source for source in finished if source in listing
                     and (entry := self._entries.get(source)) is not None and entry.packed == _packed(*listing[source])}
        unknown = [(source, stat) for source, stat in listing.items()
                   if (entry := self._entries.get(source)) is None or entry.packed != _packed(*stat) or source in rewritten]
        # A restart of a big folder holds placements only, as a cold start: the parse store's, never its text.
        slim = self.parsed is not None and len(unknown) >= self.slim_from
        placements = self.parsed.placed(unknown) if slim else {}
        stored_result = None if self.parsed is None or slim else self.parsed.get
        # Every file read in full (`feedsvc build`, which exports every article's page now): one a server's builder
        # only placed (its background reading cut short) is read, not taken as a placement no refresh would read.
        unread = placements.unread if slim and self.place_from == float("inf") else ()
        for source, stat in unknown:
            # Parsed before with this very stat (a restart): the stored result, without reading the file.
            known = None if source in rewritten else placements.get(source) if stored_result is None else stored_result(source, stat)
            if known is not None and source not in unread:
                read.append((source, stat, known))
                stored.add(source)
                continue
            if not self._ready(folder, source, stat, now, source in finished):
                pending.add(source)  # keep serving the previous version, if any, until it is complete
                self._previous(source, read, stored)
                continue
            batch.append((source, stat, self.settle > 0 and not self._held_too_long(source, stat, now)))
        full = len(batch) < self.place_from
        guessed = None if full or self.read_ahead is None else self.read_ahead.first_of(batch)
        first = frozenset() if full else guessed if guessed is not None else first_guess((s, stat) for s, stat, _ in batch)
        for source, stat, result in self._read(folder, batch, full, first):
            if result is None:  # still open for writing, or not as listed (changed since, or while read: pool.read_one)
                self._look(source, stat, now)
                pending.add(source)
                self._previous(source, read, stored)
                continue
            if isinstance(result, (Broken, Unreadable)):
                result = self._kept(source, result) or result  # a published article's last good version stays
            if isinstance(_skip(result), Unreadable):
                pass  # read again at the next look, never stored as what this stat reads as
            elif self.parsed is not None and (full or source in first or not isinstance(result, Article)):
                self._keep(source, stat, result)
            elif self.parsed is not None:  # a placement: a restart before the background reads it places it from the store
                self.parsed.put_placement(source, stat, result, names_site(source, result))
            read.append((source, stat, result))
        for source, stat, result in read:
            if isinstance(result, Article) and result.source == source:
                source = result.source  # one string for the file's key and its article's field, not two
            if isinstance(result, Kept) and source in stored and not self._still_published(result):
                result = result.skip  # kept by another process, whose article is not published now
            if isinstance(_skip(result), Unreadable) and (held := self._entries.get(source)) is not None and held.result == result:
                continue  # unreadable as it was at the last look: nothing changed, and it was said then
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
            elif isinstance(result, Kept):
                log.warning("skipped %s; the article's last good version stays published until the file is fixed or deleted",
                            result.skip)
            self._placed.discard(source), self._slim.discard(source)
            if slim and source in stored and isinstance(result, Article) and source not in placements.unread:
                self._slim.add(source)  # the parse store's placement: full() brings the rest back
            elif isinstance(result, Article) and is_placed(result):
                self._placed.add(source)
            self._put(source, _entry(stat, result))
            changed.add(source)
        self._looks = {s: st for s, st in self._looks.items() if s in pending}
        for source in gone:
            self._drop(source)
        if changed or self._last is None or targets is None:
            self._collect()
        return self._result(frozenset(changed), frozenset(pending), len(stored))

    def _kept(self, source: str, skip: Skipped) -> Kept | None:
        """A file that read as broken now (Broken, Unreadable): its last good article, kept published, when there is one and
        it is published (Scanner.published); else None, and the file is skipped as any other.

        The last good article is the one this process holds for the file, else (a restart, a builder taken over) the one
        the parse store holds: its last result (an Article, or a Kept). It must be whole (a placement's text is wherever
        its stat's full result is: a placement never read in full has none, and is skipped). A file that has never read
        as a published article, or that left publication before (a draft, deleted: no feed carries it), keeps nothing."""
        if self.published is None:
            return None
        held = self._entries.get(source)
        if held is not None:
            found, stat = held.result, held.stat
        elif self.parsed is None or (previous := self.parsed.previous(source)) is None:
            return None
        else:
            stat, found = previous
        if isinstance(found, Kept):
            found, stat = found.article, found.stat
        if not isinstance(found, Article):
            return None
        if is_placed(found):
            whole = None if self.parsed is None or source not in self._slim else self.parsed.get(source, stat)
            if not isinstance(whole, Article) or whole.content_hash != found.content_hash:
                return None
            found = whole
        kept = Kept(skip, found, stat)
        return kept if self._still_published(kept) else None

    def _still_published(self, kept: Kept) -> bool:
        """Whether a kept article is published now (Scanner.published)."""
        return self.published is not None and self.published(kept.article)

    def _previous(self, source: str, read: list, stored: set[str]) -> None:
        """For a file held back that this process holds no version of (a restart, a builder taken over while it is being
        written), the version read and stored before, at the stat it had (read anew once complete): it left every feed."""
        if source not in self._entries and self.parsed is not None and (held := self.parsed.previous(source)) is not None:
            read.append((source, *held))
            stored.add(source)

    def _unchanged(self, mark: object) -> Callable[[str, int, int], bool]:
        """Folder.walk's test of a file: True (left out of the walk) when held with this stat, its entry marked.

        A full walk of 100,000 files held as they are (the scheduled refresh, during a cold start's background
        reading) made a triple and a listing entry of each: 20-30 MB at once on top of the builder's peak."""
        entries = self._entries

        def unchanged(source: str, size: int, mtime_ns: int) -> bool:
            entry = entries.get(source)
            if entry is None or entry.packed != _packed(size, mtime_ns):
                return False
            entry.walked = mark
            return True
        return unchanged

    @property
    def placed(self) -> Mapping[str, tuple[int, int]]:
        """Sources read for placement only so far, with the stat they were read at: a live view, asked of on every
        refresh (whether any are left, whether one is) and copied only to be read (a dict of 100,000 took 0.7 s)."""
        return _Placed(self._placed, self._entries)

    def unread(self, source: str) -> bool:
        """Whether a file is held as a placement not read in full yet (the background after a cold start)."""
        return source in self._placed

    def complete(self, sources: Iterable[str]) -> ScanResult:
        """Hold these placed files' articles in full now (those on first pages): from the parse store when it
        has them, else read; the scan's result with them."""
        done = {}
        batch = []
        held = sorted(set(sources) & (self._placed | self._slim))
        stored = {} if self.parsed is None else self.parsed.get_all(
            (source, self._entries[source].stat) for source in held if source in self._slim)
        for source in held:
            entry = self._entries[source]
            known = stored.get(source)
            if known is not None:
                done[source] = (entry.stat, known)
                continue
            batch.append((source, entry.stat))
        stats = dict(batch)
        # One written to since it was placed is held back as a scan holds back a file being written, and published once
        # it is complete (a later scan reads it): its text as placed was never read in full, so nothing of it can be
        # shown meanwhile. Held, it announces no deletion (Tombstones.update: pending).
        found, written = self.read_placed(stats, Folder(self.root), self.pool_from)
        done.update(found)
        self._take(done, slim=False, stored={source for source in done if source not in stats})
        now = self.clock()
        for source in written:
            self._drop(source)
            if (stat := _stat(self.root, source)) is not None:
                self._look(source, stat, now)
        self._collect()
        return self._result(frozenset(done) | frozenset(written), frozenset(self._looks))

    def read_placed(self, stats: Mapping[str, tuple[int, int]], folder: Folder, pool_from: int
                    ) -> tuple[dict[str, tuple[tuple[int, int], Article | Skipped]], list[str]]:
        """Read placed files in full, each as it was placed (stats: source → the stat it was placed at) or not at all:
        (source → (stat, result)) of those read, and the sources no longer as placed (being written: truncated, half
        saved). Read as they are now, a half-saved file's text would be published."""
        found, changed = {}, []
        for source, result in read_files(self.root, self.options, [(s, False, st) for s, st in stats.items()], folder,
                                         pool_from):
            if result is None:
                changed.append(source)
            else:
                found[source] = (stats[source], result)
        return found, changed

    def adopt(self, results: Mapping[str, tuple[tuple[int, int], Article | Skipped]]) -> None:
        """Full results read outside the scan (the background after a cold start): (stat, result) by source.
        Each replaces a placement still held at that stat, and is kept as its placement too (slim: the parse
        store has the rest, for full()); the next scan reports them changed."""
        taken = {source: found for source, found in results.items()
                 if source in self._placed and self._entries[source].stat == found[0]}
        self._take(taken, slim=True)
        self._adopted |= taken.keys()

    def full(self, source: str) -> Article | Skipped | None:
        """The full result of a file whose entry is a placement, at the stat it was read at: from the parse
        store (or what waits to be committed to it), else read now; None for a file not (or no longer) held."""
        entry = self._entries.get(source)
        if entry is None:
            return None
        if isinstance(entry.result, Kept):
            return entry.result.article  # whole, and its file reads as broken now
        known = None if self.parsed is None else self.parsed.get(source, entry.stat)
        if known is None:
            folder = Folder(self.root)
            known = next(read_files(self.root, self.options, [(source, False, entry.stat)], folder, self.pool_from))[1]
            if known is None:
                return None  # changed since it was listed: the next scan reads it
        return known

    def _take(self, results: Mapping[str, tuple[tuple[int, int], Article | Skipped | None]], slim: bool,
              stored: set[str] = frozenset()) -> None:
        """Hold results read (or, for the sources in `stored`, taken from the parse store) in the entries."""
        for source, (stat, result) in results.items():
            if result is None:
                continue
            if isinstance(result, Skipped):
                log.warning("skipped %s", result)
            elif self.parsed is not None and source not in stored:
                self._keep(source, stat, result)
            self._placed.discard(source), self._slim.discard(source)
            if slim and self.parsed is not None and isinstance(result, Article):
                result = placement(result)
                self._slim.add(source)
            held = self._entries.get(source)
            if isinstance(result, Article) and held is not None and isinstance(held.result, Article):
                result = reusing(result, held.result)  # the placement's strings, not a second copy of each
            self._put(source, _entry(stat, result))

    def _keep(self, source: str, stat: tuple[int, int], result: Article | Skipped | Kept) -> None:
        """Note a full result in the parse store, with its placement (what a restart loads of it)."""
        self.parsed.put(source, stat, result, placement(result) if isinstance(result, Article) else None,
                        names_site(source, result.article if isinstance(result, Kept) else result))

    def _collect(self) -> None:
        """The skipped files of the entries and those passed over, after a scan that changed any (or a walk)."""
        self._last = (tuple(sorted(self._passed + tuple(self._skips.values()), key=lambda s: s.source)),)

    def _drop(self, source: str) -> None:
        """Hold no entry for a file any more (gone, or held back as it is being written)."""
        self._put(source, None)
        self._placed.discard(source), self._slim.discard(source)

    def _put(self, source: str, entry: _Entry | None) -> None:
        """Hold a file's entry (None: the file went), keeping the skipped ones apart (no look at every entry), and
        what it held at the last result, for the next one's came and went."""
        if source not in self._before:
            self._before[source] = _article(self._entries.get(source))
        if entry is None:
            del self._entries[source]
        else:
            self._entries[source] = entry
        if entry is not None and (skip := _skip(entry.result)) is not None:
            self._skips[source] = skip  # a kept file's too: skipped, as any other
        else:
            self._skips.pop(source, None)

    def _result(self, changed: frozenset[str], pending: frozenset[str], stored: int = 0) -> ScanResult:
        """The result of a scan: what came and went since the previous result, by the sources touched since (not
        every entry), and the whole list of articles made only if asked."""
        came, went = [], []
        befores = self._before
        for source in sorted(befores):  # by the sources alone: a fresh process's first scan sorts 10,000
            before, now = befores[source], _article(self._entries.get(source))
            if now is before:
                continue
            if before is not None:
                went.append(before)
            if now is not None:
                came.append(now)
        self._before = {}
        if came or went:  # a result from before names other articles now: it cannot make its list any more
            self._generation += 1
            self._memo = None  # nor can its list be asked again: the articles it holds (a cold start's placements) go
        # When each article's file was modified, from the stat its entry was read with (no second stat, and no map of its
        # own: a copy of one at each refresh was 1-8 ms at 10,000 articles, and a builder held two of 100,000 at times).
        modified = _Modified(self, self._generation)
        return ScanResult(partial(self._articles, self._generation), self._last[0], changed, pending,
                          modified, tuple(came), tuple(went), stored)

    def _check(self, generation: int) -> None:
        """Raise when a result of `generation` is asked after a later scan changed the articles."""
        if generation != self._generation:
            raise RuntimeError("a ScanResult was asked after a later scan changed the articles; ask it before")

    def _articles(self, generation: int) -> tuple[Article, ...]:
        """Every article read, in path order, IDs repeated as they are: who owns a repeated ID is the state store's to
        say (its first owner), so the publisher applies unique_ids(). As of the results of `generation` (those since
        the last change)."""
        self._check(generation)
        if self._memo is None or self._memo[0] != generation:
            entries = self._entries
            self._memo = (generation, tuple(filter(None, map(_article, map(entries.__getitem__, sorted(entries))))))
        return self._memo[1]

    def _targets(self, folder: Folder, hints: Iterable[str]) -> set[str] | None:
        """Sources among the hinted paths; None when a folder changed (walk everything)."""
        targets = set()
        for hint in hints:
            source = folder.source_of(hint)
            if source == Folder.FULL_WALK:
                return None
            if source is not None:
                targets.add(source)
        # A path gone that held files is a folder moved out or deleted (source_of cannot tell a folder that is gone):
        # its files are gone too, at once, not at the next full walk.
        gone = {source + "/" for source in targets if source not in self._entries and not folder.exists(source)}
        if gone and any(held.startswith(tuple(gone)) for held in self._entries):
            return None
        if self._links:  # a file saved or gone: the links that lead to it are the same article files (README)
            targets |= {link for link, chain in self._links.items() if not targets.isdisjoint(chain)}
        return targets

    def _finished(self, folder: Folder, hints: Iterable[str] | None) -> set[str]:
        """Sources the watcher saw closed after writing or moved into place: complete, unless reopened since."""
        if not isinstance(hints, Mapping):
            return set()
        sources = {folder.source_of(path) for path, seen in hints.items() if seen in COMPLETE_EVENTS}
        return {s for s in sources if s is not None and s != Folder.FULL_WALK}

    def _ready(self, folder: Folder, source: str, stat: tuple[int, int], now: float, finished: bool) -> bool:
        """Whether a new or changed file is complete enough to read now.

        Complete: the watcher saw it closed after writing (or moved into place); no process has it open
        for writing (the kernel says so: folder.writing); or, where the kernel cannot say, it is older than
        the settle time or unchanged since the previous look (also for clocks that disagree). A file
        read is still checked for an open writer (read_or_skip's busy) and for a change while it was read.
        """
        if self.settle <= 0 or finished:
            return True
        look = self._looks.get(source)
        if settled(self.settle, stat, now) or (look is not None and look[0] == stat):
            return True
        if folder.writing(source) is False:
            return True
        self._look(source, stat, now)
        return False

    def _vanishing(self, source: str) -> bool:
        """Whether a published file the watcher found gone is kept a moment longer (GONE_AFTER): `git checkout` and
        other tools replace a file by deleting it and writing it anew, and a refresh that came between (another file's
        close) withdrew the article and announced a tombstone for it, taken back a moment later (found in review)."""
        look = self._looks.get(source)
        now = self.clock()
        if look is None or look[0] is not None:
            look = self._looks[source] = (None, now)  # None: gone, since now
        return now - look[1] < GONE_AFTER

    def _look(self, source: str, stat: tuple[int, int], now: float) -> None:
        """Remember a file held back, and since when it has had this stat."""
        if self._looks.get(source, (None,))[0] != stat:
            self._looks[source] = (stat, now)

    def _held_too_long(self, source: str, stat: tuple[int, int], now: float) -> bool:
        """A file open for writing but unchanged for BUSY_HOLD_SECONDS: a writer that never closes it."""
        look = self._looks.get(source)
        return look is not None and look[0] == stat and now - look[1] >= BUSY_HOLD_SECONDS

    def _read(self, folder: Folder, batch: list[tuple[str, tuple[int, int], bool]], full: bool = True,
              first: frozenset[str] = frozenset()) -> Iterator[tuple[str, tuple[int, int], Article | Skipped | None]]:
        """Read a batch of files (in worker processes when it is big: feedsvc/reading/pool.py): (source, stat, result),
        the result None for a file another process still has open for writing, or that is not as listed (stat)."""
        ahead, self.read_ahead = self.read_ahead, None
        if ahead is not None:
            batch = yield from ahead.take(self.options, folder, batch, full, first)
        stats = {source: stat for source, stat, _ in batch}
        for source, result in read_files(self.root, self.options, [(s, busy, stat) for s, stat, busy in batch], folder,
                                         self.pool_from, full, first):
            yield source, stats[source], result

    def _note_passed(self, passed: dict[str, Skipped]) -> set[str]:
        """Keep what was passed over (logging the new ones); the sources whose verdict changed."""
        before = self._passed_by_source
        noted = {s for s in passed.keys() | before.keys() if passed.get(s) != before.get(s)}
        for source in sorted(noted):
            if source in passed:
                log.info("not an article: %s", passed[source])
        self._passed_by_source = passed
        self._passed = tuple(passed.values())
        return noted


def settled(settle: float, stat: tuple[int, int], now: float) -> bool:
    """Whether a file of this (size, mtime_ns) has not changed for `settle` seconds, by its mtime (a negative settle:
    never so; a file the watcher saw closed, or the kernel says no one writes, is ready all the same: Scanner._ready)."""
    return 0 <= settle <= now - stat[1] / 1e9


def first_guess(stats: Iterable[tuple[str, tuple[int, int]]]) -> frozenset[str]:
    """Of a placement batch's (source, stat), the FIRST_GUESS newest files by mtime: read in full at once."""
    return frozenset(source for source, _ in sorted(stats, key=lambda item: item[1][1], reverse=True)[:FIRST_GUESS])


class _Placed(abc.Mapping):
    """Scanner.placed: the placed sources and their stats, looked up in the scanner's entries when asked."""

    def __init__(self, sources: set[str], entries: dict[str, _Entry]):
        self._sources, self._entries = sources, entries

    def __getitem__(self, source: str) -> tuple[int, int]:
        if source not in self._sources:
            raise KeyError(source)
        return self._entries[source].stat

    def __contains__(self, source: object) -> bool:
        return source in self._sources

    @property
    def sources(self) -> abc.Set[str]:
        """The placed sources themselves, for a caller that asks of thousands at once (live: asked of, never iterated)."""
        return self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._sources))

    def __len__(self) -> int:
        return len(self._sources)


class _Modified(abc.Mapping):
    """ScanResult.modified: source → when each article's file was modified (Unix seconds), from the stat its entry
    was read with, looked up in the scanner's entries when asked; valid until a later scan changes the articles."""

    def __init__(self, scanner: Scanner, generation: int):
        self._scanner, self._generation = scanner, generation

    def get(self, source: str, default: float | None = None) -> float | None:
        """Its mtime; default for a file that holds no article (a dict's get: a cold start asks it of every file)."""
        if self._scanner._generation != self._generation:
            self._scanner._check(self._generation)
        entry = self._scanner._entries.get(source)
        if entry is not None and isinstance(entry.result, Kept):  # when its last good version's file was
            return entry.result.stat[1] / 1e9
        return default if entry is None or not isinstance(entry.result, Article) else (entry.packed >> 64) / 1e9

    def __getitem__(self, source: str) -> float:
        if (found := self.get(source)) is None:
            raise KeyError(source)
        return found

    def __iter__(self) -> Iterator[str]:
        self._scanner._check(self._generation)
        return iter([source for source, entry in self._scanner._entries.items() if isinstance(entry.result, (Article, Kept))])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _article(entry: _Entry | None) -> Article | None:
    """The article an entry holds (a kept file's last good one); None for none, or a skipped file."""
    if entry is None:
        return None
    result = entry.result
    return result if isinstance(result, Article) else result.article if isinstance(result, Kept) else None


def _skip(result: Article | Skipped | Kept | None) -> Skipped | None:
    """The skip a result reports (a kept file's too); None for an article."""
    return result if isinstance(result, Skipped) else result.skip if isinstance(result, Kept) else None


def _stat(root: Path, source: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file in the folder; os.path, not pathlib: a cold start asks it of every file."""
    try:
        st = os.stat(os.path.join(root, source))
    except OSError:  # removed between listing and stat
        return None
    return st.st_size, st.st_mtime_ns
