"""A cold start reads every file for placement only, the first pages' articles in full, and the rest in the
background while the site answers (feedsvc/reading/scan.py, pool.py, building/site.py; issue 10.3)."""
from __future__ import annotations

import gc
import os
import pathlib
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

import feedsvc.building.background
import feedsvc.building.builder
import feedsvc.building.committer
import feedsvc.reading.scan
from feedsvc import create_app, for_building
from feedsvc.building.committer import LAND_WITHIN_S
from feedsvc.building.site import Publisher
from feedsvc.model import Article
from feedsvc.reading import articles, markup, pool, text
from feedsvc.reading.articles import ArticleError, Options, is_placed, parse_article
from feedsvc.building.parsed import ParsedCache
from feedsvc.building.storewriter import Build, StoreWriter
from tests.conftest import variant, write

CASES = Path(__file__).parent / "cases"
OPTIONS = Options(site_url="http://127.0.0.1:8000")
CATEGORIES = ("economy", "sport", "tech", "culture")
PLACED_FIELDS = ("id", "guid", "source", "title", "categories", "content_hash", "published", "updated", "draft", "tags", "author", "image")


def many(folder: Path, n: int) -> Path:
    for i in range(n):
        if i % 3 == 0:
            body = f"{CATEGORIES[i % 4]}\nStory number {i}\nParagraph of story {i}, with some words.\n\nAnd a second one.\n"
        elif i % 3 == 1:
            body = f"---\ntitle: Story {i}\ncategory: {CATEGORIES[i % 4]}\n---\nA *Markdown* story, number {i}.\n"
        else:
            body = f"{CATEGORIES[i % 4]}\nخبر رقم {i}\nفقرة عن الخبر رقم {i} في المدينة.\n"
        path = write(folder, f"{i:04d}-story.{'md' if i % 3 == 1 else 'txt'}", body)
        os.utime(path, (1_700_000_000 + 3600 * i,) * 2)  # 2023: dated by their files, out of the News sitemap's two days
    return folder


def settings(folder: Path, state: Path, **more) -> dict:
    return {"ARTICLES_DIR": str(folder), "STATE_PATH": str(state), "SETTLE_MS": 0, "FEED_MAX_ITEMS": 5, **more}


def rows(state: Path) -> dict:
    with sqlite3.connect(state) as conn:
        return {row[0]: row[1:] for row in conn.execute(
            "SELECT path, etag, media_type, max_age, headers, body, gzip, br, made_from FROM resources")}


def stored_ids(state: Path, table: str = "items") -> set[str]:
    with sqlite3.connect(state) as conn:
        return {row[0] for row in conn.execute(f"SELECT {'id' if table == 'items' else 'source'} FROM {table}")}


def full_results(state: Path) -> set[str]:
    """The files the parse store holds a full result of (not a placement only)."""
    with sqlite3.connect(state) as conn:
        return {row[0] for row in conn.execute("SELECT source FROM parsed WHERE length(result) > 0")}


def undated(body: bytes) -> bytes:
    """A feed's or OPML's bytes without its own date (RSS lastBuildDate, Atom's first updated, OPML dateModified),
    a sitemap's without its lastmods (a page's is when this deployment first recorded its bytes: two builds a
    second apart differ there)."""
    body = re.sub(rb"<(lastBuildDate|dateModified|lastmod)>[^<]*</\1>", b"", body)
    return re.sub(rb"<updated>[^<]*</updated>", b"", body, count=1)


def committer(app):
    return next(o for o in app.extensions["feedsvc"].observers if isinstance(o, feedsvc.building.committer.Committer))


def finished(app) -> None:
    """The background reading, its article pages and the search index it feeds, all done."""
    assert app.extensions["feedsvc"].wait_reading(30) and committer(app).wait(30)
    assert app.extensions["feedsvc.indexer"].wait(30)


@pytest.fixture
def whole(tmp_path, monkeypatch):
    """The same folder built with every file read in full at once: the bytes a cold start must end with."""
    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 60)
    app = create_app(settings(folder, tmp_path / "whole.sqlite3"))
    finished(app)
    return app


# --- the placement pass ------------------------------------------------------------------------

CASE_FILES = sorted(p for p in CASES.iterdir() if p.suffix in (".txt", ".md"))
LONG_TAIL = "\n".join(f"Paragraph {i} about the council's budget, and the vote that followed it." for i in range(60))


@pytest.mark.parametrize("long", [False, True], ids=["as-is", "long"])
@pytest.mark.parametrize("case", CASE_FILES, ids=lambda p: p.name)
def test_a_placement_says_what_the_full_parse_says_of_where_an_article_goes_and_when(case, long):
    """long: the case with a long text after it, so the placement decodes only the file's head."""
    data = case.read_bytes() + (("\n" + LONG_TAIL + "\n").encode() if long else b"")
    assert not long or len(data) > articles.PLACEMENT_HEAD
    try:
        full = parse_article(data, case.name, OPTIONS)
    except ArticleError as exc:
        full = exc
    try:
        placed = parse_article(data, case.name, OPTIONS, full=False)
    except ArticleError as exc:
        assert isinstance(full, ArticleError), f"placement refused what the full parse reads: {exc}"
        assert (exc.reason, exc.fix) == (full.reason, full.fix)
        return
    assert is_placed(placed)
    if isinstance(full, Article):  # the full parse may refuse more (its Markdown, say): then it is skipped later
        assert not is_placed(full)
        assert {f: getattr(placed, f) for f in PLACED_FIELDS} == {f: getattr(full, f) for f in PLACED_FIELDS}


def test_a_placement_decodes_only_the_head_of_a_long_file(monkeypatch):
    decoded = []
    clean = articles.clean_text
    monkeypatch.setattr(articles, "clean_text", lambda text: decoded.append(len(text)) or clean(text))
    long_body = "\n".join(f"الفقرة {i} من خبر طويل عن ميزانية المجلس." for i in range(3000))
    for source, data in (("a.txt", f"سياسة\nخبر طويل\n{long_body}\n"), ("b.md", f"---\ntitle: B\ncategory: News\n---\n{long_body}\n")):
        decoded.clear()
        placed = parse_article(data.encode(), source, OPTIONS, full=False)
        assert is_placed(placed) and decoded and max(decoded) <= articles.PLACEMENT_HEADS[0]
        assert placed.content_hash == parse_article(data.encode(), source, OPTIONS).content_hash


def test_front_matter_longer_than_the_first_head_is_read_from_the_second(monkeypatch):
    decoded = []
    front = "".join(f"note{i}: {'x' * 60}\n" for i in range(12))  # ~850 bytes of front matter before the title
    data = f"---\n{front}title: Long front\ncategory: News\n---\n{LONG_TAIL}\n{LONG_TAIL}\n".encode()
    clean = articles.clean_text
    monkeypatch.setattr(articles, "clean_text", lambda text: decoded.append(len(text)) or clean(text))
    placed = parse_article(data, "long-front.md", OPTIONS, full=False)
    assert (placed.title, placed.categories) == ("Long front", ("News",))
    assert len(data) > articles.PLACEMENT_HEAD and articles.PLACEMENT_HEADS[0] < max(decoded) <= articles.PLACEMENT_HEAD


def test_a_head_that_does_not_hold_the_title_means_the_whole_text():
    blank_lines = "\n" * (articles.PLACEMENT_HEAD + 10)  # the title line past the head
    data = f"News{blank_lines}The title, far down\nBody.\n".encode()
    placed = parse_article(data, "far.txt", OPTIONS, full=False)
    assert (placed.categories, placed.title) == (("News",), "The title, far down")


def test_the_content_hash_is_of_the_bytes_with_crlf_and_a_byte_order_mark_set_aside():
    lf = "News\nTitle\nBody.\n".encode()
    crlf, bom = lf.replace(b"\n", b"\r\n"), b"\xef\xbb\xbf" + lf
    hashes = {parse_article(data, "a.txt", OPTIONS).content_hash for data in (lf, crlf, bom)}
    assert len(hashes) == 1 and hashes != {parse_article(lf + b"More.\n", "a.txt", OPTIONS).content_hash}


def test_a_placement_parses_no_body_and_loads_no_language_model(monkeypatch):
    def refused(*args, **kwargs):
        raise AssertionError("a placement reads only what placement needs")

    monkeypatch.setattr(text, "_identifier", refused)
    monkeypatch.setattr(articles, "detect_language", refused)
    monkeypatch.setattr(articles, "strip_chrome", refused)
    monkeypatch.setattr(markup, "markdown_to_html", refused)
    monkeypatch.setattr(markup, "paragraphs_to_html", refused)
    long_body = "\n\n".join(f"Paragraph {i} of a long story about the budget and the council." for i in range(2000))
    for source, data in (("a.txt", f"News\nA long story\n{long_body}\n"), ("b.md", f"---\ntitle: B\ncategory: News\n---\n{long_body}\n")):
        placed = parse_article(data.encode(), source, OPTIONS, full=False)
        assert is_placed(placed) and placed.categories == ("News",) and placed.body_html == placed.body_text == ""


# --- the cold start ------------------------------------------------------------------------------

def test_a_restart_before_the_background_reading_ends_places_every_file_from_the_store_at_any_site_url(tmp_path, monkeypatch):
    """A deploy a moment after a cold start (its background stopped) and one that moves the site to another URL: no
    file is read again to place it, and only the first pages' articles are held in full, as after the cold start."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background never reads
    cold = create_app(settings(folder, state))
    placed = dict(cold.extensions["feedsvc"].scanner.placed)
    assert committer(cold).wait(30) and len(stored_ids(state, "parsed")) == 60
    same = create_app(settings(folder, state)).extensions["feedsvc"]
    assert same.scanner.parsed.read == 0  # no file read: every placement and the first pages' results stored
    assert dict(same.scanner.placed) == placed  # the rest is left to the background reading, as after the cold start
    read = []
    put = ParsedCache.put
    monkeypatch.setattr(ParsedCache, "put", lambda self, source, *args: (read.append(source), put(self, source, *args))[1])
    moved = create_app(settings(folder, state, SITE_URL="https://news.example.org"))
    # Another URL: only the Markdown files are read again (their relative links resolve against it).
    markdown = {path.name for path in folder.iterdir() if path.suffix == ".md"}
    assert 0 < len(markdown) < 60 and set(read) == markdown
    body = moved.test_client().get("/feed.rss").data
    assert b"https://news.example.org/articles/" in body and b"127.0.0.1" not in body


def slow_parse_results(monkeypatch, seconds: float) -> None:
    """The background build that commits a cold start's parse results takes `seconds` longer (as at 100,000 files)."""
    commit_left = feedsvc.building.committer.Committer._commit_left

    def slow(self, build, what, make=None):
        if what == "parse results":
            time.sleep(seconds)
        return commit_left(self, build, what, make)

    monkeypatch.setattr(feedsvc.building.committer.Committer, "_commit_left", slow)


def test_a_process_that_ends_right_after_a_cold_start_first_lands_its_parse_results(tmp_path, monkeypatch):
    """At 100,000 files the placements land 1-2 s after the feeds answer, in the first background build: a process
    stopped before that (a deploy) waits for them (land_at_exit, run at exit), so its restart reads no file."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 5)  # article pages after the feeds, as at 10,000
    slow_parse_results(monkeypatch, 0.5)
    cold = create_app(settings(folder, state)).extensions["feedsvc"]
    placed = set(cold.scanner.placed)  # the files not on a first page: still placements only
    files = {path.name for path in folder.iterdir()}
    assert not stored_ids(state, "parsed")  # the feeds answer; the parse results are still on their way
    feedsvc.building.committer.land_at_exit()
    assert stored_ids(state, "parsed") == files and placed and not full_results(state) & placed
    again = create_app(settings(folder, state)).extensions["feedsvc"]
    assert again.scanner.parsed.read == 0 and set(again.scanner.placed) == placed


def term_after_first(function: str, imported: str) -> str:
    """Patch source for dedicated_builder: `function` (a class's method, as `imported` names it) sends its process a
    SIGTERM as its first call returns, so the handler runs inside that call."""
    return (f"{imported}\n"
            f"_real, _calls = {function}, []\n"
            "def _then_term(self, *args):\n"
            "    _calls.append(_real(self, *args))\n"
            "    if len(_calls) == 1:\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return _calls[-1]\n"
            f"{function} = _then_term\n")


def parse_results_after(seconds: float) -> str:
    """Patch source for dedicated_builder: the background build of the parse results a refresh left waits `seconds`
    before it commits them."""
    return ("_left = c.Committer._commit_left\n"
            "c.Committer._commit_left = lambda self, build, what, make=None: "
            f"(what == 'parse results' and time.sleep({seconds}), _left(self, build, what, make))[1]\n")


def landed_and_ended(proc: subprocess.Popen, state: Path, folder: Path) -> None:
    """The builder ended by itself (exit 0), its first build and every file's parse results in the store."""
    assert ended(proc) == 0
    assert built(state)
    assert stored_ids(state, "parsed") == {path.name for path in folder.iterdir()}


def dedicated_builder(tmp_path: Path, folder: Path, state: Path, patch: str) -> subprocess.Popen:
    """build_forever in a process of its own, as serve forks it, with a cold start's files placed (all but five first
    pages' articles left to the background, which never reads them here) and `patch` (Python source) run first."""
    driver = tmp_path / "builder.py"
    driver.write_text(
        "import os, signal, sys, time\n"
        "import feedsvc.building.builder as b, feedsvc.building.committer as c, feedsvc.reading.scan as scan\n"
        "from feedsvc.building.site import Publisher\n"
        "scan.PLACE_FROM, scan.FIRST_GUESS, c.FIRST_PAGES = 10, 0, 5\n"
        "Publisher.finish_reading = lambda self, placed: None\n"
        + patch + f"b.build_forever({settings(folder, state, WATCH=False)!r}, None)\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, str(driver)], env=env)


def test_the_builders_sigterm_lands_the_parse_results_of_its_first_build_before_it_ends(tmp_path):
    """The dedicated builder (build_forever) ends with os._exit, which runs no atexit function: its SIGTERM lands
    them itself. A real process, its parse-results build slowed as in the test above."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    proc = dedicated_builder(tmp_path, folder, state, parse_results_after(1.5))
    try:
        deadline = time.monotonic() + 30
        while not (state.exists() and built(state)):  # the first build is committed: the feeds answer
            assert proc.poll() is None and time.monotonic() < deadline, "the builder never committed its first build"
            time.sleep(0.02)
        assert not stored_ids(state, "parsed")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=LAND_WITHIN_S + 5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stored_ids(state, "parsed") == {path.name for path in folder.iterdir()}


def test_a_sigterm_in_the_middle_of_a_state_store_transaction_ends_the_builder_once_its_parse_results_landed(tmp_path):
    """The first build's pages are dated, and what its listings carry recorded, in a state store transaction on the
    main thread, holding the file's write lock while the background build that lands the parse results waits for it: a
    SIGTERM there ends the builder once they landed, not after a wait that could land nothing (they were lost)."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    # The first call is in the first build's pages' transaction: its rows written, not committed.
    proc = dedicated_builder(tmp_path, folder, state,
                             term_after_first("StateStore.record_carried", "from feedsvc.building.state import StateStore")
                             + parse_results_after(0.3))  # their build after the pages' transaction has begun
    landed_and_ended(proc, state, folder)


def test_a_sigterm_in_the_middle_of_the_first_builds_commit_ends_the_builder_once_its_parse_results_landed(tmp_path):
    """The first build runs on the builder's main thread, where its SIGTERM handler runs too, between two bytecodes: a
    SIGTERM right after the store took that build, before its parse results were handed to the background, ends the
    process once they landed (on_sigterm), not at once with them lost (the test above, on a loaded machine)."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    # The first build's commit: its handler runs there, in Committer.__call__.
    proc = dedicated_builder(tmp_path, folder, state, term_after_first("StoreWriter.commit", "from feedsvc.building.storewriter import StoreWriter"))
    landed_and_ended(proc, state, folder)


def test_a_sigterm_the_moment_the_first_builds_commit_takes_its_lock_ends_the_builder_once_its_parse_results_landed(tmp_path):
    """Between taking the commit's lock and naming itself its holder, the main thread was no commit to on_sigterm: the
    handler found no parse results left to land (the first build had not handed them on yet) and ended the process
    without them, or without the build (here). Likely what the test above failed on, twice in about thirty runs of this
    session. The holder is named before the lock now."""
    folder, state = many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"
    proc = dedicated_builder(tmp_path, folder, state,
                             "import threading\n"
                             "class TermWhenTaken:  # the first commit's lock, and the SIGTERM the moment it is taken\n"
                             "    def __init__(self):\n"
                             "        self.lock, self.taken = threading.Lock(), 0\n"
                             "    def acquire(self, *args, **kwargs):\n"
                             "        return self.lock.acquire(*args, **kwargs)\n"
                             "    def release(self):\n"
                             "        self.lock.release()\n"
                             "    def __enter__(self):\n"
                             "        self.lock.acquire()\n"
                             "        if threading.current_thread() is threading.main_thread():\n"
                             "            self.taken += 1\n"
                             "            if self.taken == 1:\n"
                             "                os.kill(os.getpid(), signal.SIGTERM)\n"
                             "                time.sleep(0.5)  # the handler runs in here\n"
                             "        return self\n"
                             "    def __exit__(self, *exc):\n"
                             "        self.lock.release()\n"
                             "made = c.Committer.__init__\n"
                             "def with_lock(self, *args, **kwargs):\n"
                             "    made(self, *args, **kwargs)\n"
                             "    self._lock = TermWhenTaken()\n"
                             "c.Committer.__init__ = with_lock\n")
    landed_and_ended(proc, state, folder)


def test_a_sigterm_handled_where_python_ignores_exceptions_still_ends_the_builder(tmp_path):
    """Python runs a signal's handler wherever the main thread is, also inside a finalizer or an import's module-lock
    callback, where what it raises is printed and ignored ("Exception ignored in: …"): a builder whose handler ended
    it by raising SystemExit ran on there for good, holding the build lock, after its master was killed (seen: an
    orphaned builder of a test's server, the SIGTERM of PR_SET_PDEATHSIG taken in importlib's lock callback)."""
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    proc = dedicated_builder(tmp_path, folder, state,
                             "class Finalized:\n"
                             "    def __del__(self):  # the handler runs in here: the sleep is interrupted for it\n"
                             "        os.kill(os.getpid(), signal.SIGTERM)\n"
                             "        time.sleep(2)\n"
                             "run = b.run_builder\n"
                             "b.run_builder = lambda app: (run(app), Finalized())[0]\n")
    assert ended(proc) == 0
    assert built(state)


def ended(proc: subprocess.Popen, timeout: float = LAND_WITHIN_S + 30) -> int | None:
    """A builder process's exit code once it ends by itself, or None if it is still running after `timeout` (then killed)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def built(state: Path) -> bool:
    """Whether the build store holds a committed build."""
    try:
        with sqlite3.connect(state) as conn:
            return bool(conn.execute("SELECT MAX(version) FROM builds").fetchone()[0])
    except sqlite3.Error:  # not made yet
        return False


def test_a_move_to_another_site_url_stores_again_only_the_items_of_files_that_name_the_site(tmp_path):
    """A stored item is the article as read and dated: the site is in it only through a Markdown file's links (or a
    relative `image:`), so a deployment that moves to another URL does not write every item again."""
    folder, state = many(tmp_path / "articles", 12), tmp_path / "state.sqlite3"
    finished(create_app(settings(folder, state)))
    items = lambda: dict(sqlite3.connect(state).execute("SELECT id, version FROM items").fetchall())
    before = items()
    moved = create_app(settings(folder, state, SITE_URL="https://news.example.org"))
    finished(moved)
    after = items()
    markdown = {a.id for a in moved.extensions["feedsvc"].snapshot.articles.values() if a.source.endswith(".md")}
    assert after.keys() == before.keys() and 0 < len(markdown) < len(before)
    assert {id_ for id_ in after if after[id_] != before[id_]} == markdown
    assert b"https://news.example.org/" in moved.test_client().get("/feed.json").data


def test_a_cold_start_reads_the_first_pages_in_full_and_the_rest_in_the_background(tmp_path, whole, monkeypatch):
    folder, state = tmp_path / "articles", tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    finish_reading = Publisher.finish_reading
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background waits
    app = create_app(settings(folder, state))
    publisher = app.extensions["feedsvc"]
    snap = publisher.snapshot
    first = {a.id for listing in snap.listings.values() for a in listing.items[:5]}
    assert 5 < len(first) < 60 and len(publisher.scanner.placed) == 60 - len(first)
    assert all(not is_placed(a) for listing in snap.listings.values() for a in listing.items[:5])
    assert stored_ids(state) == first
    assert committer(app).wait(30)  # the background builds: the parse results first, then the article pages
    # Every file's placement is stored (a restart now places them without reading), the first pages' in full.
    assert len(stored_ids(state, "parsed")) == 60 and len(full_results(state)) == len(first)
    expected = rows(tmp_path / "whole.sqlite3")
    now = rows(state)
    for path in ("feed.rss", "feed.atom", "feed.json", "category/sport/feed.atom", "feeds.opml", ""):
        # The same bytes as a whole build's but for the feed's own date: when this deployment recorded them.
        assert undated(now[path][4]) == undated(expected[path][4]), path
    order = "SELECT listing, id FROM listing_items ORDER BY listing, rank, id"
    with sqlite3.connect(state) as conn, sqlite3.connect(tmp_path / "whole.sqlite3") as whole_conn:
        assert conn.execute(order).fetchall() == whole_conn.execute(order).fetchall()  # every listing's items, in order
    finish_reading(publisher, publisher.scanner.placed)
    finished(app)
    now = rows(state)
    assert now.keys() == expected.keys()
    assert [path for path in now if undated(now[path][4]) != undated(expected[path][4])] == []
    assert stored_ids(state) == {a.id for a in publisher.snapshot.articles.values()} and len(stored_ids(state, "parsed")) == 60
    restart = create_app(settings(folder, state))
    again = restart.extensions["feedsvc"]
    assert again.scanner.parsed.read == 0  # a restart after it reads no file
    assert {a.id for a in again.snapshot.articles.values() if not is_placed(a)} == first  # and holds no more text
    assert rows(state) == now  # nor changes a byte


def test_a_cold_start_reads_the_newest_files_in_full_while_placing_the_rest(tmp_path, whole, monkeypatch):
    """The newest files (by mtime) are read in full by the reading workers during the placement pass: the first
    pages need no second read of most of theirs, and the feeds are the same bytes as without the guess."""
    folder, state = tmp_path / "articles", tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 20)
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background waits
    newest = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)[-20:]
    app = create_app(settings(folder, state))
    publisher = app.extensions["feedsvc"]
    held = {a.source for a in publisher.snapshot.articles.values() if not is_placed(a)}
    assert {p.name for p in newest} <= held  # read in full, and kept so: the parse store has them
    first = {a.source for listing in publisher.snapshot.listings.values() for a in listing.items[:5]}
    assert held == first | {p.name for p in newest}
    expected, now = rows(tmp_path / "whole.sqlite3"), rows(state)
    for path in ("feed.rss", "feed.atom", "feed.json", "category/sport/feed.atom", "feeds.opml", ""):
        assert undated(now[path][4]) == undated(expected[path][4]), path


def test_a_cold_start_reads_in_full_the_articles_the_news_sitemap_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 40)
    for i in range(30, 40):  # ten of them new: published in the News sitemap's last two days
        os.utime(folder / f"{i:04d}-story.{'md' if i % 3 == 1 else 'txt'}", None)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background waits
    app = create_app(settings(folder, tmp_path / "state.sqlite3", FEED_MAX_ITEMS=2))
    publisher = app.extensions["feedsvc"]
    assert publisher.scanner.placed  # the rest waits
    news = publisher.snapshot.resources["sitemap-news.xml"].body.decode()
    assert news.count("<news:language>") == 10 and "<news:language></news:language>" not in news


def test_while_articles_are_only_placed_a_worker_answers_503_for_what_needs_them(tmp_path, whole, monkeypatch):
    folder, state = tmp_path / "articles", tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    finish_reading = Publisher.finish_reading
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)
    app = create_app(settings(folder, state))
    assert committer(app).wait(30)
    publisher = app.extensions["feedsvc"]
    worker = create_app(settings(folder, state), build=False).test_client()
    listing = publisher.snapshot.listings[""]
    on_first, placed = listing.items[0], listing.items[-1]
    assert not is_placed(on_first) and is_placed(placed)
    assert worker.get("/feed.rss").status_code == 200
    assert worker.get(f"/articles/{on_first.id}").status_code == 200
    for path in (f"/articles/{placed.id}", "/feed.rss?page=2"):
        reply = worker.get(path)
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "1", path
    finish_reading(publisher, publisher.scanner.placed)
    finished(app)
    # Now as the builder makes them from what it holds (the whole build's, but dated by this deployment).
    for path, expected in ((f"/articles/{placed.id}", publisher.snapshot.resources[f"articles/{placed.id}"]),
                           ("/feed.rss?page=2", variant(publisher, "", "rss", page=2))):
        reply = worker.get(path, headers={"Accept-Encoding": "identity"})
        assert reply.status_code == 200 and reply.data.decode() == expected.body.decode() and reply.headers["ETag"] == expected.etag, path
    assert len(variant(whole.extensions["feedsvc"], "", "rss", page=2).body) == len(expected.body)
    assert worker.get("/articles/no-such-article").status_code == 404


def test_the_export_reads_every_article_in_full_whatever_the_folder_size(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    app = create_app(settings(many(tmp_path / "articles", 30), tmp_path / "state.sqlite3"), commit=False)
    publisher = app.extensions["feedsvc"]
    assert not publisher.scanner.placed and not any(is_placed(a) for a in publisher.snapshot.articles.values())


def test_the_builder_collects_less_often_in_its_first_build_and_once_every_file_is_read_not_between(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    finish_reading = Publisher.finish_reading
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the background waits
    during = []  # the thresholds as each refresh stamps what it read
    stamp = Publisher._stamp
    monkeypatch.setattr(Publisher, "_stamp", lambda self, *a: during.append(gc.get_threshold()) or stamp(self, *a))
    gc.set_threshold(700, 10, 10)  # the defaults (conftest puts back the run's own after the test)
    archive = feedsvc.building.builder.ARCHIVE_GC_THRESHOLDS
    app = for_building(settings(many(tmp_path / "articles", 60), tmp_path / "state.sqlite3"))
    publisher = feedsvc.building.builder.start_building(app, release=True)  # as run_builder wires it
    publisher.refresh()
    assert during and set(during) == {archive}  # the first build makes the archive's objects: fewer collections
    assert publisher.scanner.placed and gc.get_threshold() == (700, 10, 10)  # a cold start, still reading
    during.clear()
    finish_reading(publisher, publisher.scanner.placed)  # its refreshes commit what it read
    assert (700, 10, 10) in during  # the background read with the thresholds as they were
    assert not publisher.scanner.placed and gc.get_threshold() == archive


# --- workers started ahead ---------------------------------------------------------------------

def test_a_placement_batch_reads_the_files_named_first_in_full_in_the_workers(tmp_path, monkeypatch, caplog):
    from feedsvc.reading.folder import Folder

    monkeypatch.setattr(pool, "CHUNK", 3)
    many(tmp_path, 40)
    names = sorted(p.name for p in tmp_path.iterdir())
    first = frozenset(names[:10])
    with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
        results = dict(pool.read_files(tmp_path, OPTIONS, [(n, False, None) for n in names], Folder(tmp_path), pool_from=2,
                                       full=False, first=first))
    assert results.keys() == set(names)
    assert {n for n, r in results.items() if not is_placed(r)} == first
    assert "read 40 files for placement (10 of them in full) in 2 worker processes" in caplog.text


def test_workers_started_ahead_read_successive_scans_and_go_at_release(tmp_path, monkeypatch, caplog):
    from feedsvc.reading.scan import Scanner

    monkeypatch.setattr(pool, "CHUNK", 3)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    many(tmp_path, 40)
    started = []

    def counted(start):
        def counting():
            started.append(start())
            return started[-1]
        return counting

    # Forked when this process runs no other thread (a test run alone), else started anew: both are counted.
    monkeypatch.setattr(pool, "start_worker", counted(pool.start_worker))
    monkeypatch.setattr(pool, "fork_worker", counted(pool.fork_worker))
    pool.prestart()
    try:
        scanner = Scanner(tmp_path, OPTIONS, settle=0, pool_from=2, place_from=2)
        with caplog.at_level("INFO", logger="feedsvc.reading.pool"):
            result = scanner.scan()
            assert all(is_placed(a) for a in result.articles) and len(scanner.placed) == 40
            done = scanner.complete(list(scanner.placed))
        assert not scanner.placed and not any(is_placed(a) for a in done.articles) and len(done.articles) == 40
        assert "for placement (0 of them in full) in 1 worker processes" in caplog.text and "read 40 files in 2 worker processes (0 here)" in caplog.text
        assert len(started) == pool.processes() == 2  # the same two interpreters for both scans
        assert all(worker.poll() is None for worker in started)  # idle, kept for the next scan
    finally:
        pool.release()
    assert all(worker.poll() is not None for worker in started)  # idle: stopped, not waited for


# --- builder memory ------------------------------------------------------------------------------

def test_a_commit_pickles_articles_one_at_a_time_not_all_at_once(tmp_path):
    """Committing a cold start's articles and parse results holds one pickle at a time beside the objects."""
    writer = StoreWriter(tmp_path / "state.sqlite3")
    body = "كلمة " * 20_000  # 100,000 characters: 200 kB in memory, 180 kB pickled
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    items = {f"a{i}": Article(id=f"a{i}", source=f"a{i}.txt", title="t", categories=("c",), body_html=body, body_text=body,
                              summary="s", lang="ar", content_hash=str(i), published=when, updated=when) for i in range(40)}
    build = Build({"articles": 40}, items={id_: (a, "made") for id_, a in items.items()},
                  parsed=[(a.source, 1, 1, "p", "s", a, None) for a in items.values()])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        writer.commit(build, when)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    whole = sum(len(pickle.dumps(a, protocol=5)) for a in items.values())
    assert peak < whole / 8, (peak, whole)  # a few articles' pickles, not all 80
    with sqlite3.connect(tmp_path / "state.sqlite3") as conn:
        assert pickle.loads(conn.execute("SELECT article FROM items WHERE id = 'a7'").fetchone()[0]) == items["a7"]
        assert pickle.loads(conn.execute("SELECT result FROM parsed WHERE source = 'a7.txt'").fetchone()[0]) == items["a7"]


def test_the_builder_holds_no_article_text_but_the_first_pages_and_its_memory_does_not_grow_with_it(tmp_path, monkeypatch):
    """Past the first pages the builder keeps each article as its placement; the parse store has its text."""
    import gc

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    paragraph = "The council met again to discuss the budget of the city and its many parts. " * 40

    def held(name: str, paragraphs: int) -> int:
        """What the builder holds, with 300 articles of so many 3 kB paragraphs; the newest 20 (the first
        pages) always one."""
        folder = tmp_path / f"articles-{name}"
        for i in range(300):
            body = f"{paragraph}\n\n" * (paragraphs if i < 280 else 1)
            path = write(folder, f"{i:04d}.txt", f"{CATEGORIES[i % 4]}\nStory {i}\n{body}")
            os.utime(path, (1_700_000_000 + 3600 * i,) * 2)
        tracemalloc.start()
        try:
            app = create_app(settings(folder, tmp_path / f"state-{name}.sqlite3", FEED_MAX_ITEMS=2))
            finished(app)
            publisher = app.extensions["feedsvc"]
            first = {a.id for listing in publisher.snapshot.listings.values() for a in listing.items[:2]}
            assert {a.id for a in publisher.snapshot.articles.values() if not is_placed(a)} == first
            assert {a.id for a in publisher.scanner.scan().articles if not is_placed(a)} == first
            gc.collect()
            # With the app alive: what its builder holds. Not the import machinery's own tables: a module imported for
            # the first time in this process during a measured run (pytest's import hook interns its path's parts) grew
            # the interpreter's table of interned strings, 1.9 MB counted whenever that table's growth fell there.
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, name) for name in (pathlib.__file__, "<frozen importlib.*", "*/_pytest/*")])
            return sum(stat.size for stat in snapshot.statistics("filename"))
        finally:
            tracemalloc.stop()

    held("warm", 1)  # imports and caches filled once
    short, long = held("short", 1), held("long", 12)
    assert long - short < 280 * 11 * 3_000 / 10, (short, long)  # 9 MB more text on disk: under a tenth of it held


def test_search_finds_the_text_of_articles_the_builder_holds_as_placements(tmp_path, monkeypatch):
    import feedparser

    monkeypatch.chdir(tmp_path)
    folder = many(tmp_path / "articles", 40)
    write(folder, "0000-story.txt", "economy\nThe oldest story\nIts body names the zanzibarite mineral once.\n")
    os.utime(folder / "0000-story.txt", (1_600_000_000,) * 2)  # the oldest: never on a first page
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first
    app = create_app(settings(folder, tmp_path / "state.sqlite3", FEED_MAX_ITEMS=2))
    finished(app)
    publisher = app.extensions["feedsvc"]
    assert is_placed(publisher.snapshot.articles["0000-story"])  # held without its text
    assert app.extensions["feedsvc.indexer"].wait(30)
    reply = app.test_client().get("/search/feed.rss?q=zanzibarite")
    assert reply.status_code == 200 and [e.title for e in feedparser.parse(reply.data).entries] == ["The oldest story"]


def test_feedsvc_build_reads_every_file_in_full_and_exports_every_article_page(tmp_path, monkeypatch):
    from tests.test_export import run_build

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)  # every file placed first  # a folder past it: no placement pass in a build
    folder = many(tmp_path / "articles", 40)
    run_build(folder, tmp_path / "site", tmp_path / "state.sqlite3", FEED_MAX_ITEMS=2)
    pages = [p for p in (tmp_path / "site" / "articles").rglob("*") if p.is_file() and p.suffix not in (".gz", ".br")]
    assert len(pages) == 40
    assert all(b"Paragraph of story" in p.read_bytes() or "خبر" in p.read_text() or b"Markdown" in p.read_bytes() for p in pages)


def test_feedsvc_build_reads_in_full_the_files_a_server_left_placed(tmp_path, monkeypatch):
    """A store a server's builder left in the middle of its background reading (files placed only): `feedsvc build`
    reads those files in full, not their stored placements, and exports every article's page."""
    from tests.test_export import run_build

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    folder, state = many(tmp_path / "articles", 40), tmp_path / "state.sqlite3"
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)  # the server stops before its background
    server = create_app(settings(folder, state))
    assert committer(server).wait(30) and len(server.extensions["feedsvc"].scanner.placed) >= 20
    run_build(folder, tmp_path / "site", state, FEED_MAX_ITEMS=5)
    pages = [p for p in (tmp_path / "site" / "articles").rglob("*") if p.is_file() and p.suffix not in (".gz", ".br")]
    assert len(pages) == 40 and len(stored_ids(state)) == 40


def _being_saved(folder: Path, source: str):
    """An editor's save of a file in progress: truncated, still open for writing (close it to finish the save)."""
    return open(folder / source, "w", encoding="utf-8")


def test_a_placed_file_being_saved_is_not_read_half_saved_by_the_background_nor_for_a_first_page(tmp_path, monkeypatch):
    """A file placed by a cold start and rewritten in place while it is only placed: neither the background reading
    nor the first pages' full read (Scanner.complete) takes the half-saved file (empty, or cut off) for the article.
    Each reads a file as it was placed or not at all; the save is published once it is complete, as a scan would."""
    folder, state = many(tmp_path / "articles", 40), tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    finish_reading = Publisher.finish_reading
    monkeypatch.setattr(Publisher, "finish_reading", lambda self, placed: None)
    app = create_app(settings(folder, state, SETTLE_MS=300))
    publisher = app.extensions["feedsvc"]
    assert committer(app).wait(30)
    source = "0000-story.txt"  # the oldest: placed, on no first page
    assert publisher.scanner.unread(source)
    wanted = next(a.id for a in publisher.snapshot.articles.values() if a.source == source)
    saving = _being_saved(folder, source)
    publisher.refresh([str(folder / source)])  # the watcher's: the scan holds it back and keeps the article
    assert source in publisher.pending and wanted in publisher.snapshot.articles
    finish_reading(publisher, publisher.scanner.placed)  # the background reads the placed files meanwhile
    assert committer(app).wait(30)
    assert wanted in publisher.snapshot.articles and not any(s.source == source for s in publisher.snapshot.skipped)
    with sqlite3.connect(state) as conn:  # and in the site-wide listing the store serves
        assert conn.execute("SELECT 1 FROM listing_items WHERE listing = '' AND id = ?", (wanted,)).fetchone()
    saving.write("economy\nStory number 0, edited\nThe new text.\n")
    saving.close()
    time.sleep(0.35)
    publisher.refresh([str(folder / source)])
    assert committer(app).wait(30) and publisher.snapshot.articles[wanted].title == "Story number 0, edited"
    finished(app)
    # A placed file on a first page (Scanner.complete), being saved: held back as a scan holds back a new file, not
    # published empty; published once the save is complete.
    scanner = feedsvc.reading.scan.Scanner(folder, OPTIONS, settle=0.3, place_from=5, pool_from=10**9)
    scanner.scan()
    source = "0001-story.md"
    assert scanner.unread(source)
    saving = _being_saved(folder, source)
    assert source in scanner.scan([str(folder / source)]).pending
    result = scanner.complete([source])
    assert source in result.pending and not any(a.source == source for a in result.articles)
    assert not any(s.source == source for s in result.skipped)
    saving.write("---\ntitle: Story 1, edited\ncategory: sport\n---\nThe new text.\n")
    saving.close()
    time.sleep(0.35)
    assert [a.title for a in scanner.scan().articles if a.source == source] == ["Story 1, edited"]


def test_the_background_reading_waits_for_the_committers_backlog_and_each_background_build_is_bounded(tmp_path, whole, monkeypatch):
    """A cold start's first build leaves article pages and the feeds' codings to background builds (Committer.finish);
    the background reading reads and commits its next chunk only once those are committed (Publisher.backlogs), so neither
    its parse results nor codings pile up in the builder, and no background build takes more than its batch."""
    import gzip
    import threading

    import brotli

    folder, state = tmp_path / "articles", tmp_path / "state.sqlite3"
    monkeypatch.setattr(feedsvc.reading.scan, "PLACE_FROM", 10)
    monkeypatch.setattr(feedsvc.reading.scan, "FIRST_GUESS", 0)
    monkeypatch.setattr(feedsvc.building.background, "FINISH_STEP", 5)  # the 40-odd placed files in steps, each chunk a refresh of its own
    monkeypatch.setattr(feedsvc.building.committer, "FIRST_PAGES", 6)  # fewer than the first pages' articles: the first build defers
    monkeypatch.setattr(feedsvc.building.committer, "PAGES_PER_BUILD", 4)
    monkeypatch.setattr(feedsvc.building.committer, "OTHERS_PER_BUILD", 2)
    backlog_at_refresh, background = [], []
    build, commit = feedsvc.building.committer.Committer.build, StoreWriter.commit

    committers = []

    def watched_build(self, snap):  # a refresh's build: what the background had left at that moment
        committers.append(self)
        backlog_at_refresh.append((len(self._deferred), len(self._recode), len(self._later), len(self._previews)))
        return build(self, snap)

    def watched_commit(self, made, now):
        if not made.listings:  # a background build (a refresh's always carries the listings it changed)
            background.append((sum(p.startswith("articles/") for p in made.resources), len(made.codings)))
        return commit(self, made, now)

    read_files, backlog_at_read = feedsvc.reading.scan.read_files, []

    def watched_read(*args, **kwargs):  # the background's steps: none read while the Committer is behind
        if threading.current_thread().name == "finish-reading-files":
            c = committers[0]
            backlog_at_read.append(len(c._deferred) + len(c._recode) + len(c._later) + len(c._previews))
        return read_files(*args, **kwargs)

    monkeypatch.setattr(feedsvc.building.committer.Committer, "build", watched_build)
    monkeypatch.setattr(StoreWriter, "commit", watched_commit)
    monkeypatch.setattr(feedsvc.reading.scan, "read_files", watched_read)  # Scanner.read_placed's, the background's
    app = create_app(settings(folder, state))
    finished(app)
    assert len(backlog_at_read) > 3 and backlog_at_read == [0] * len(backlog_at_read), backlog_at_read
    assert backlog_at_refresh[0] == (0, 0, 0, 0) and len(backlog_at_refresh) > 3  # the cold start, then the chunks
    assert backlog_at_refresh[1:] == [(0, 0, 0, 0)] * (len(backlog_at_refresh) - 1)  # each after the backlog was done
    assert background and all(pages <= 4 and codings <= 2 for pages, codings in background), background
    assert sum(codings for _, codings in background) >= 6  # the cold start's feeds, coded a batch at a time
    expected, now = rows(tmp_path / "whole.sqlite3"), rows(state)
    assert [path for path in now if undated(now[path][4]) != undated(expected[path][4])] == []
    for path in ("feed.rss", "feed.atom", "feed.json", "category/sport/feed.json"):
        body, gz, br = now[path][4:7]
        assert gzip.decompress(gz) == body and brotli.decompress(br) == body, path
