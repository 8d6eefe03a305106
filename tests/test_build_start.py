"""`feedsvc build` starts as a build needs: the wiring without Flask (it serves no request), and the cyclic collector
tuned for one pass over a heap that only grows, then put back as it was."""
from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys

from click.testing import CliRunner

from feedsvc import cli
from feedsvc.building import builder
from feedsvc.reading import pool
from tests.conftest import ROOT, SAMPLE_ARTICLES
from tests.test_export import assert_served_alike, entries, served

_BUILD = '''
import json, sys
from feedsvc.cli import main
main(["build", "--out", sys.argv[1], "--articles", sys.argv[2]], standalone_mode=False)
print(json.dumps(sorted(sys.modules)))
'''


def test_a_build_loads_neither_flask_nor_werkzeug(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", _BUILD, str(tmp_path / "out"), str(SAMPLE_ARTICLES)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "feedsvc.building.site" in loaded and (tmp_path / "out" / "feed.rss").is_file()  # it built and exported
    assert [m for m in loaded if m.split(".")[0] in ("flask", "werkzeug")] == []


def test_a_build_collects_less_often_and_leaves_the_collector_as_it_was(sample_dir, tmp_path, monkeypatch):
    seen = []
    export = cli._export

    def watched(*args, **kwargs):
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return export(*args, **kwargs)

    monkeypatch.setattr(cli, "_export", watched)
    before = gc.get_threshold()
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": ""}
    result = CliRunner().invoke(cli.main, ["build", "--out", str(tmp_path / "out"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 0, result.output
    (threshold, frozen), = seen
    assert threshold == builder.ARCHIVE_GC_THRESHOLDS and frozen > 0  # the modules and the wiring, frozen
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def _command(tmp_path, *args: str, before: str = "") -> subprocess.CompletedProcess:
    """The `feedsvc` command as its own process, as a shell runs it (cli.run, what the console script and
    `python -m feedsvc` call), with `before` run first."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = f"import sys\n{before}\nfrom feedsvc.cli import run\nsys.argv[0] = 'feedsvc'\nrun()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)


def test_the_command_is_cli_run():
    assert (ROOT / "feedsvc" / "__main__.py").read_text().rstrip().endswith("run()")
    assert 'feedsvc = "feedsvc.cli:run"' in (ROOT / "pyproject.toml").read_text()


def test_a_finished_build_ends_its_process_at_once_with_its_output_said_and_its_store_settled(tmp_path):
    teardown = "import atexit; atexit.register(print, 'TORN DOWN')"  # the interpreter's own end runs it; os._exit does not
    done = _command(tmp_path, "build", "--out", str(tmp_path / "out"), "--articles", str(SAMPLE_ARTICLES), before=teardown)
    assert done.returncode == 0, done.stderr
    assert f"{tmp_path / 'out'}: build 1 (written whole)" in done.stdout  # flushed before the process ended
    assert "TORN DOWN" not in done.stdout and (tmp_path / "out" / "feed.rss").is_file()
    wal = tmp_path / "state.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # the log moved into the store, as a last close would have
    again = _command(tmp_path, "build", "--out", str(tmp_path / "out"), "--articles", str(SAMPLE_ARTICLES))
    assert again.returncode == 0 and "0 files written" in again.stdout, again.stdout + again.stderr


def test_a_build_that_fails_ends_as_click_ends_it(tmp_path):
    done = _command(tmp_path, "build", "--out", str(tmp_path / "out"), "--articles", str(tmp_path / "absent"),
                    before="import atexit; atexit.register(print, 'TORN DOWN')")
    assert done.returncode in (1, 2) and "absent" in done.stderr and "TORN DOWN" in done.stdout, done.stdout + done.stderr


def test_under_a_test_runner_a_build_returns_instead_of_ending_the_process(sample_dir, tmp_path):
    env = {"FEEDSVC_STATE_PATH": str(tmp_path / "state.db"), "FEEDSVC_CONFIG": ""}
    result = CliRunner().invoke(cli.main, ["build", "--out", str(tmp_path / "out"), "--articles", str(sample_dir)], env=env)
    assert result.exit_code == 0 and "build 1" in result.output  # this process (pytest's) is still here to see it


_AHEAD = '''
import errno, json, os, sys, time
from pathlib import Path
import click
from feedsvc.building import exportfolder
from feedsvc.building import committer, export, exportpool
from feedsvc.cli import main
from feedsvc.reading import pool
started, there = [], []
prestart, fork_ahead, written_there = pool.prestart, exportpool.fork_ahead, export._Writer._written_there
pool.prestart = lambda: (started.append("reading"), prestart())
exportpool.fork_ahead = lambda: (started.append("export"), fork_ahead(), started.append(len(exportpool._ahead)))
committer.FIRST_PAGES = 5  # article pages committed in the background, as at 10,000 articles, and still to commit when the
wait = committer.Committer.wait  # build looks: its archive pages made ahead (export.EarlyPages), as a big build's are
committer.Committer.wait = lambda self, timeout=None: wait(self, timeout) and timeout != 0
export.SHARE_FROM = int(sys.argv[3])  # 50: this folder's few hundred files shared with the workers, as a big folder's are
if sys.argv[4:] == ["fail"]:  # the workers (forks of this process) fail on the files handed to them
    exportpool.write_files = lambda *args: 1 / 0
if sys.argv[4:] == ["pages-full"]:  # the staging folder of the pages made ahead is full; the export folder is not
    make_and_write = exportpool.make_and_write
    def pages_full(maker, out, task):
        if ".staging-" in str(out):
            raise OSError(errno.ENOSPC, "No space left on device")
        return make_and_write(maker, out, task)
    exportpool.make_and_write = pages_full
if sys.argv[4:] == ["here-full"]:  # this process's own writes fail on a full disk while the workers hold their shares
    PARENT, writes, write_file, write_files = os.getpid(), [], exportfolder.write_file, exportpool.write_files
    def full_here(path, *args):
        if os.getpid() == PARENT and ".staging-" not in str(path):
            writes.append(path)
            if len(writes) > 20:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_file(path, *args)
    exportfolder.write_file = full_here
    exportpool.write_files = lambda *args: (time.sleep(0.5), write_files(*args))[1]  # still on its pages meanwhile
    try:
        main(["build", "--out", sys.argv[1], "--articles", sys.argv[2]], standalone_mode=False)
    except click.ClickException as exc:
        time.sleep(1)  # a worker that went on writing would have by now
        print(json.dumps({"said": exc.message, "files": sorted(str(p) for p in Path(sys.argv[1]).rglob("*")
                                                               if p.name != exportfolder.LOCK)}))  # the build's lock stays
    sys.exit(0)
if sys.argv[4:] == ["fork-fails"]:  # the export's workers cannot be forked (EAGAIN: too many processes)
    def fork_fails():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
    exportpool.fork_ahead = fork_fails
    try:
        main(["build", "--out", sys.argv[1], "--articles", sys.argv[2]], standalone_mode=False)
    except OSError as exc:
        print(json.dumps({"said": str(exc), "left": [len(pool._prestarted), pool._keeping, len(exportpool._ahead)]}))
    sys.exit(0)
export._Writer._written_there = lambda self, theirs, *a: (there.append(sum(map(len, (s for _, s in theirs[0])))), written_there(self, theirs, *a))[1]
main(["build", "--out", sys.argv[1], "--articles", sys.argv[2]], standalone_mode=False)
print(json.dumps({"started": started, "left": [len(pool._prestarted), pool._keeping, len(exportpool._ahead)], "there": there}))
'''


def test_a_build_from_scratch_of_a_big_folder_starts_its_workers_ahead_and_ends_them(sample_dir, tmp_path):
    """A build that reads every file forks its reading workers first (pool.prestart), then, once it has imported what
    they run, its export's (exportpool.fork_ahead), before it runs any thread; a build its store has every file of
    starts none ahead; none is left once a build is done. Each build in a process of its own, as the command runs."""
    folder = tmp_path / "articles"
    shutil.copytree(sample_dir, folder)
    for n in range(pool.POOL_FROM):  # an archive of pages enough for the export's workers (exportpool.FROM_PAGES)
        (folder / f"more-{n:04d}.txt").write_text(f"News\nStory {n}\nBody.\n", encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    said = []
    # From scratch; the same store again into an empty folder, every file written by this process; and once more into
    # the first folder, which has every file.
    for out, share_from in (("out", 50), ("whole", 10**9), ("out", 50)):
        done = subprocess.run([sys.executable, "-c", _AHEAD, str(tmp_path / out), str(folder), str(share_from)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert done.returncode == 0 and "worker failed" not in done.stderr, done.stderr
        said.append(json.loads(done.stdout.strip().splitlines()[-1]))
    said = [said[0], said[2], said[1]]
    cores = pool.cores()
    assert said[0]["started"] == ["reading", "export", cores if cores > 1 else 0]  # one export worker a core
    assert said[1]["started"] == []  # the second build reads nothing: its store has every file as it is
    assert said[0]["left"] == said[1]["left"] == [0, False, 0]  # taken by the export, or ended: none outlives the build
    assert (tmp_path / "out" / "feed.rss.page-2").is_file() and (tmp_path / "out" / "category" / "news" / "feed.atom.page-2").is_file()
    # The workers wrote a share of the files (pages and feeds from the store) after their archive pages: every file of
    # the export, theirs too, is what the app answers at its URL, with its coded forms.
    assert said[0]["there"][0] > 100 and not any(said[1]["there"]) and not any(said[2]["there"])
    assert assert_served_alike(tmp_path / "out", served(tmp_path / "state.db", folder)) == len(entries(tmp_path / "out"))
    shared, whole = _files(tmp_path / "out"), _files(tmp_path / "whole")  # the same files, coded forms and times
    assert shared == whole and any(name.endswith(".br") for name in shared)
    # Workers that fail on their share: this process writes it.
    env["FEEDSVC_STATE_PATH"] = str(tmp_path / "other.db")
    done = subprocess.run([sys.executable, "-c", _AHEAD, str(tmp_path / "fallback"), str(folder), "50", "fail"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0 and "an export worker failed" in done.stderr, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["there"][0] > 100
    fallback = tmp_path / "fallback"
    assert assert_served_alike(fallback, served(tmp_path / "other.db", folder)) == len(entries(fallback)) == len(entries(tmp_path / "out"))


def test_a_build_whose_workers_made_pages_ahead_ends_well_or_cleanly_when_a_disk_fills(sample_dir, tmp_path):
    """Archive pages made ahead that fail on a full staging folder are made again, and the workers' shares are still
    taken as theirs (every worker's pages read first: none left in a pipe to be read as its share's files). A build
    whose own writes fail while the workers hold their shares ends them before it says the folder is left as it was,
    and empties it: nothing written there after, and the next build writes it whole. Workers forked ahead are ended
    with a build that fails as it starts."""
    folder = tmp_path / "articles"
    shutil.copytree(sample_dir, folder)
    for n in range(pool.POOL_FROM):
        (folder / f"more-{n:04d}.txt").write_text(f"News\nStory {n}\nBody.\n", encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FEEDSVC_STATE_PATH": str(tmp_path / "state.db"),
           "FEEDSVC_CONFIG": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def build(out, *mode: str) -> dict:
        done = subprocess.run([sys.executable, "-c", _AHEAD, str(tmp_path / out), str(folder), "50", *mode],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    said = build("out", "pages-full")
    assert said["there"][0] > 100  # the workers wrote their shares, after pages that failed
    assert assert_served_alike(tmp_path / "out", served(tmp_path / "state.db", folder)) == len(entries(tmp_path / "out"))
    env["FEEDSVC_STATE_PATH"] = str(tmp_path / "other.db")
    said = build("full", "here-full")
    assert said["said"].startswith(f"build failed, {tmp_path / 'full'} is left as it was: cannot write") and said["files"] == []
    build("full")  # the next build, with room: every file
    assert assert_served_alike(tmp_path / "full", served(tmp_path / "other.db", folder)) == len(entries(tmp_path / "full"))
    # The export's workers cannot be forked after the reading ones were: those are ended with the build that failed.
    env["FEEDSVC_STATE_PATH"] = str(tmp_path / "third.db")
    assert build("never", "fork-fails") == {"said": "[Errno 11] Resource temporarily unavailable", "left": [0, False, 0]}


def _files(folder) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}
