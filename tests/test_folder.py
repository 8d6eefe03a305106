"""The folder's rule: only regular article files whose real path is inside the folder are read, and no
entry — a link out, a loop, a FIFO, a device, an unreadable folder, a path too long — stops the rest."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc.reading import folder as folder_module
from feedsvc.reading.articles import Options, load_articles
from feedsvc.reading.folder import Folder, FolderError, Skipped, shown
from tests.conftest import ROOT, write

OPTIONS = Options(site_url="http://127.0.0.1:8000")
ARTICLE = "News\nA title\nA paragraph.\n"
PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


def too_long_folder(parent: Path, name: str = "n" * 250) -> str:
    """A folder inside parent whose path is longer than PATH_MAX: made one step at a time with dir_fd.

    It is as unreadable by path as a folder without permissions, also for root (who bypasses permissions).
    """
    fd = os.open(parent, os.O_RDONLY)
    depth = PATH_MAX // len(name) + 2
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            new = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        inner = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(inner, ARTICLE.encode())
        os.close(inner)
    finally:
        os.close(fd)
    return name


def sources(folder: Path) -> tuple[list[str], dict[str, str]]:
    found, passed = Folder(folder).walk()
    return [f[0] for f in found], {k: v.reason for k, v in passed.items()}


def test_a_link_to_a_file_outside_is_never_read(articles_dir, tmp_path):
    secret = write(tmp_path, "secret.txt", "News\nroot:x:0:0\nroot:x:0:0:root:/root:/bin/bash\n")
    (articles_dir / "passwd.txt").symlink_to(secret)
    (articles_dir / "status.txt").symlink_to("/proc/self/status")  # reports size 0
    write(articles_dir, "good.txt", ARTICLE)
    found, passed = sources(articles_dir)
    assert found == ["good.txt"]
    assert passed == {"passwd.txt": "link to a file outside the articles folder",
                      "status.txt": "link to a file outside the articles folder"}
    got = Folder(articles_dir).read("passwd.txt")  # asked directly, as a watcher's hint would
    assert isinstance(got, Skipped) and "outside" in got.reason
    articles, _ = load_articles(articles_dir, OPTIONS)
    assert [a.source for a in articles] == ["good.txt"]
    assert all("root:x" not in a.body_text for a in articles)


def test_a_link_to_a_folder_is_not_followed_inside_or_out(articles_dir, tmp_path):
    write(tmp_path, "etc/hosts.txt", ARTICLE)
    (articles_dir / "etcdir").symlink_to(tmp_path / "etc")
    write(articles_dir, "real/a.txt", ARTICLE)
    (articles_dir / "alias").symlink_to(articles_dir / "real")
    found, passed = sources(articles_dir)
    assert found == ["real/a.txt"]
    assert passed == {"etcdir/": "link to a folder outside the articles folder",
                      "alias/": "link to a folder inside the articles folder"}


def test_a_link_to_a_file_inside_is_read_under_its_own_name(articles_dir):
    # As a Kubernetes ConfigMap mounts files: x.txt -> ..data/x.txt, ..data -> ..2026_11_30/
    write(articles_dir, "..2026_11_30/x.txt", ARTICLE)
    (articles_dir / "..data").symlink_to("..2026_11_30")
    (articles_dir / "x.txt").symlink_to("..data/x.txt")
    found, _ = sources(articles_dir)
    assert found == ["x.txt"]
    assert Folder(articles_dir).read("x.txt") == ARTICLE.encode()


def test_loops_and_links_back_up_are_each_one_skip(articles_dir):
    (articles_dir / "a.txt").symlink_to("b.txt")
    (articles_dir / "b.txt").symlink_to("a.txt")
    (articles_dir / "d").mkdir()
    (articles_dir / "d" / "up").symlink_to("..")
    write(articles_dir, "d/e.txt", ARTICLE)
    found, passed = sources(articles_dir)
    assert found == ["d/e.txt"]
    assert passed == {"a.txt": "link that leads round in a loop",
                      "b.txt": "link that leads round in a loop",
                      "d/up/": "link to a folder inside the articles folder"}


def test_a_folder_mounted_inside_itself_is_read_once(tmp_path):
    """A bind mount makes a loop no link shows: the walk knows each folder by (device, inode)."""
    folder = tmp_path / "articles"
    write(folder, "a.txt", ARTICLE)
    (folder / "sub" / "loop").mkdir(parents=True)
    script = (f"mount --bind {folder} {folder}/sub/loop && "
              f"{sys.executable} -c 'from feedsvc.reading.folder import Folder; f, p = Folder(\"{folder}\").walk(); "
              f"print([s for s, _, _ in f], sorted(p))'")
    # A private mount namespace (as root, or as a user through a user namespace): nothing leaks out.
    run = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['a.txt'] ['sub/loop/']"


def test_a_fifo_and_a_device_are_passed_over_and_never_opened(articles_dir):
    os.mkfifo(articles_dir / "x.txt")
    (articles_dir / "zero.txt").symlink_to("/dev/zero")
    write(articles_dir, "good.txt", ARTICLE)
    found, passed = sources(articles_dir)
    assert found == ["good.txt"]
    assert passed == {"x.txt": "not a regular file", "zero.txt": "link to a file outside the articles folder"}
    got = Folder(articles_dir).read("x.txt")  # opened without blocking, refused after fstat
    assert isinstance(got, Skipped) and got.reason == "not a regular file"


def test_what_is_read_is_capped_not_what_stat_says(articles_dir, monkeypatch):
    monkeypatch.setattr(folder_module, "MAX_FILE_BYTES", 100)
    write(articles_dir, "big.txt", "x" * 101)
    write(articles_dir, "fits.txt", "x" * 100)
    reads = []
    real_read = os.read
    monkeypatch.setattr(folder_module.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    big = Folder(articles_dir).read("big.txt")
    assert isinstance(big, Skipped) and "100 byte limit" in big.reason
    assert sum(reads) <= 101 + 101  # never more than the limit and one byte asked for
    assert Folder(articles_dir).read("fits.txt") == b"x" * 100


def test_a_path_longer_than_path_max_is_a_skip_not_a_crash(articles_dir):
    name = too_long_folder(articles_dir)
    write(articles_dir, "good.txt", ARTICLE)
    found, passed = sources(articles_dir)
    assert found == ["good.txt"]
    ((where, reason),) = passed.items()
    assert where.startswith(name + "/") and "longer than the system allows" in reason


def test_an_unreadable_folder_is_a_skip_for_a_process_without_permission(articles_dir):
    """Root reads every folder, so as root the walk runs without the capabilities that bypass permissions."""
    write(articles_dir, "good.txt", ARTICLE)
    write(articles_dir, "locked/secret.txt", ARTICLE)
    os.chmod(articles_dir / "locked", 0)
    try:
        code = f"from feedsvc.reading.folder import Folder; f, p = Folder('{articles_dir}').walk(); print([s for s, _, _ in f], dict((k, v.reason) for k, v in p.items()))"
        drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
        run = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "['good.txt'] {'locked/': 'folder cannot be read (Permission denied)'}"
    finally:
        os.chmod(articles_dir / "locked", 0o755)


def test_files_in_a_folder_that_can_be_listed_but_not_searched_name_the_folder_in_their_fix(articles_dir):
    """A folder with r-- (chmod 644 tech): each of its files was told "cannot be read (Permission denied) — check the
    file's permissions", where the files were 644 and the folder wanted its x (found in review). Also for a file a
    watcher names (look)."""
    write(articles_dir, "good.txt", ARTICLE)
    write(articles_dir, "tech/a.txt", ARTICLE)
    os.chmod(articles_dir / "tech", 0o644)
    try:
        code = (f"from feedsvc.reading.folder import Folder; f = Folder('{articles_dir}'); _, p = f.walk(); "
                f"print(repr(p['tech/a.txt'])); print(repr(f.look('tech/a.txt')))")
        drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if os.getuid() == 0 else []
        run = subprocess.run([*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 0, run.stderr
        walked, looked = run.stdout.strip().splitlines()
        for told in (walked, looked):
            assert "its folder tech can be listed but not searched" in told and "give tech search (x) permission" in told, told
            assert "file's permissions" not in told
    finally:
        os.chmod(articles_dir / "tech", 0o755)


def test_an_articles_folder_that_is_a_link_is_read_through_it(tmp_path):
    write(tmp_path, "release-42/a.txt", ARTICLE)
    (tmp_path / "articles").symlink_to(tmp_path / "release-42")
    assert sources(tmp_path / "articles")[0] == ["a.txt"]


def test_a_missing_articles_folder_is_one_error_naming_it(tmp_path):
    with pytest.raises(FolderError, match="nope.*cannot be read"):
        Folder(tmp_path / "nope").walk()


@pytest.mark.parametrize("name, printed", [
    ("a\nb.txt", "a\\nb.txt"),
    ("\x1b[31mred\x1b[0m.txt", "\\x1b[31mred\\x1b[0m.txt"),
    ("\x9b2J.txt", "\\x9b2J.txt"),
    ("\u202etxt.exe", "\\u202etxt.exe"),
    (os.fsdecode(b"caf\xe9.txt"), "caf\ufffd.txt"),
    ("سياسة.txt", "سياسة.txt"),
])
def test_names_are_shown_on_one_line_without_control_characters(name, printed):
    assert shown(name) == printed
    assert Skipped(name, "reason", "fix").source == printed


def test_a_walk_holds_what_it_found_not_every_entry_of_a_big_folder(tmp_path):
    """The walk keeps (source, size, mtime) of each file, not the listing's DirEntry objects (each with its name,
    path and stat) until the folder is read: at 100,000 files those were 50 MiB of a builder's peak at every walk."""
    import tracemalloc

    files = 3000
    for n in range(files):
        (tmp_path / f"{n:05d}-story.txt").touch()
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.doc").touch()
    walker = Folder(tmp_path)
    walker.walk()  # imports and caches settled first
    tracemalloc.start()
    try:
        found, passed = walker.walk()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == files and list(passed) == ["notes.doc"]  # .hidden/ passed over unsaid
    assert found == sorted(found)
    # What it returns is about 150 bytes a file; the DirEntry objects held and sorted were about 900.
    assert peak < 350 * files, peak


def test_holds_at_least_counts_the_article_files_a_walk_finds_and_stops_once_there_are_enough(articles_dir, tmp_path, monkeypatch):
    for n in range(3):
        write(articles_dir, f"a{n}.txt", ARTICLE)
        write(articles_dir, f"deep/er/b{n}.md", ARTICLE)
    write(articles_dir, "a0.txt~", ARTICLE)  # an editor's backup
    write(articles_dir, ".hidden/c.txt", ARTICLE)
    write(articles_dir, "notes.pdf", ARTICLE)
    write(tmp_path, "outside/d.txt", ARTICLE)
    (articles_dir / "outside").symlink_to(tmp_path / "outside")  # a link to a folder: never gone into
    found = len(sources(articles_dir)[0])
    assert found == 6
    folder = Folder(articles_dir)
    assert [folder.holds_at_least(n) for n in (1, 6, 7)] == [True, True, False]
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(folder_module.os, "scandir", lambda path: listed.append(path) or scandir(path))
    assert folder.holds_at_least(3)
    assert listed == [folder.root]  # the top folder's three files were enough: no folder below it read
    assert not Folder(tmp_path / "missing").holds_at_least(1)


def test_hidden_folders_are_passed_over_without_a_word(tmp_path):
    """A checkout's .git and a Kubernetes ConfigMap's ..data (a link) and ..2026_01_01 were each told "hidden folder"
    (or "link to a folder inside"): `check` exited 1 for a folder that publishes every article, and /healthz counted
    them skipped for good (found in review). The ConfigMap's own link to its file still publishes it."""
    write(tmp_path, ".git/config", "[core]\n")
    write(tmp_path, "..2026_01_01/x.txt", ARTICLE)
    (tmp_path / "..data").symlink_to("..2026_01_01")
    (tmp_path / "x.txt").symlink_to("..data/x.txt")
    write(tmp_path, ".hidden.txt", ARTICLE)  # a hidden file with an article's name is still told: it may be a slip
    found, passed = sources(tmp_path)
    assert found == ["x.txt"] and list(passed) == [".hidden.txt"], (found, passed)
