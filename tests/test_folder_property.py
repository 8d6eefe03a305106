"""Property: in any folder tree — regular files, links inside and out, loops, FIFOs, unreadable folders —
exactly the regular article files inside the folder are published, by a full refresh of the real app and
by the watcher's hint path, and the service stays healthy."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import create_app
from feedsvc.reading.articles import Options
from feedsvc.reading.scan import Scanner
from tests.test_folder import too_long_folder

FOLDERS = ["", "a", "a/b", "c", ".hidden", ".hidden/d"]
KINDS = ["file", "file", "file", "fifo", "link-in", "link-out", "dir-link-out", "dir-link-in", "loop", "up", "lock",
         "other-extension", "unreadable"]
SECRET = "SECRET FROM OUTSIDE"


def article(source: str) -> str:
    """Text that publishes in either format (a link's target may be .txt while the link is .md)."""
    return f"---\ntitle: Title of {source}\ncategory: News\n---\nA paragraph of {source}.\n"


def build_tree(root: Path, outside: Path, entries: list[tuple[str, str, str]]) -> tuple[set[str], list[str]]:
    """Make the entries under root; return the sources that must be published, and every leaf made."""
    write = lambda path, text: (path.parent.mkdir(parents=True, exist_ok=True), path.write_text(text, encoding="utf-8"))
    write(outside / "secret.txt", f"News\n{SECRET}\n{SECRET}.\n")
    expected: set[str] = set()
    regular: list[str] = []  # regular article files made so far, anywhere inside (targets for links)
    leaves: list[str] = []
    for i, (kind, folder, ext) in enumerate(entries):
        source = f"{folder}/n{i}{ext}".lstrip("/")
        path = root / source
        path.parent.mkdir(parents=True, exist_ok=True)
        hidden = folder.startswith(".")
        if kind == "file":
            write(path, article(source))
            regular.append(source)
            if not hidden and ext.lower() in (".txt", ".md"):
                expected.add(source)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link-in":
            # Read as the file it leads to, under its own name (a ConfigMap's layout: into a hidden folder).
            target = regular[-1] if regular else f".store/t{i}.txt"
            if not regular:
                write(root / target, article(source))
            path.symlink_to(os.path.relpath(root / target, path.parent))
            if not hidden and ext.lower() in (".txt", ".md"):
                expected.add(source)
        elif kind == "link-out":
            path.symlink_to(outside / "secret.txt")
        elif kind == "dir-link-out":
            path.symlink_to(outside)
        elif kind == "dir-link-in":
            path.symlink_to(root / "a" if (root / "a").is_dir() else root)
        elif kind == "loop":
            path.symlink_to(path.name + ".other")
            (path.parent / (path.name + ".other")).symlink_to(path.name)
            leaves.append(source + ".other")
        elif kind == "up":
            path.symlink_to("..")
        elif kind == "lock":
            path = path.with_name("~$" + path.name)
            source = source.rsplit("/", 1)[0] + "/" + path.name if "/" in source else path.name
            write(path, article(source))
        elif kind == "other-extension":
            path = path.with_suffix(".docx")
            source = source.rsplit(".", 1)[0] + ".docx"
            write(path, article(source))
        elif kind == "unreadable":
            name = too_long_folder(path.parent, f"u{i}" + "n" * 245)  # holds deep.txt, beyond PATH_MAX
            source = f"{folder}/{name}".lstrip("/")
        leaves.append(source)
    return expected, leaves


ENTRIES = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(FOLDERS), st.sampled_from([".txt", ".md", ".TXT"])),
                   max_size=10)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=ENTRIES)
def test_exactly_the_regular_article_files_inside_are_published(entries):
    base = Path(tempfile.mkdtemp(prefix="feedsvc-tree-"))
    try:
        root, outside = base / "articles", base / "outside"
        root.mkdir()
        # The watcher's path: a scanner that has looked once, then is told of every leaf made.
        scanner = Scanner(root, Options(site_url="http://127.0.0.1:8000"), settle=0)
        scanner.scan()
        expected, leaves = build_tree(root, outside, entries)
        hinted = scanner.scan([str(root / leaf) for leaf in leaves])
        assert {a.source for a in hinted.articles} == expected

        # A full refresh of the real app; the site answers and is healthy.
        app = create_app({"ARTICLES_DIR": str(root), "STATE_PATH": str(base / "state.sqlite3"), "SETTLE_MS": 0,
                          "WATCH": False})
        publisher = app.extensions["feedsvc"]
        assert publisher.last_error is None
        assert {a.source for a in publisher.snapshot.articles.values()} == expected
        client = app.test_client()
        health = client.get("/healthz")
        assert health.status_code == 200 and health.get_json()["last_error"] is None
        if expected:
            items = json.loads(client.get("/feed.json").data)["items"]
            assert len(items) == len(expected) and all(SECRET not in i["title"] for i in items)
    finally:
        shutil.rmtree(base, ignore_errors=True)
