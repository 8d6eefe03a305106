"""The export folder on disk: files replaced whole, the manifest that says what the
folder holds, and the folder's hygiene (files of resources gone, leftovers of a killed build, the earlier
layout). Used by export.py, which decides what to write."""
from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import unicodedata
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import orjson

from ..store import connect
from .precompress import SUFFIXES, coded_forms, precompressed

MANIFEST = ".feedsvc-export.json"  # deploy/nginx.conf answers 404 for it, as for every name starting with "."
WRITING = ".feedsvc-export.writing"  # there while a build writes: the names it adds, for the next if it is killed
# Inside the folder, never beside it: a deployer may own the export folder and not its parent (/var/www), and the
# folder may be a file system of its own (a tmpfs, a volume), where a page staged beside it cannot be renamed in (EXDEV).
LOCK = ".feedsvc-export.lock"  # one build at a time (folder_lock)
STAGING = ".feedsvc-export.staging-"  # + a build's pid: archive pages made ahead (export.EarlyPages)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A resource that cannot be a file is left out with a warning; any other failure stops the build.
LEAVE_OUT = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EINVAL}


class ExportError(Exception):
    """The export folder cannot be written: the message names it and what to do."""


class ExportWriteError(OSError):
    """A file of the export could not be written (a full disk, a read-only folder): the OSError's errno, text and file,
    and whether the folder is partly updated (files written, retimed or removed before it) or left as it was."""

    def __init__(self, cause: OSError, partly: bool):
        super().__init__(*cause.args)
        self.filename, self.partly = cause.filename, partly


def write_file(path: Path, data: bytes, mtime_ns: int, *more) -> None:
    """Replace path whole with data (and the buffers in `more` after it), readable by all, modified at mtime_ns:
    written beside it, then renamed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            for part in more:
                f.write(part)
            f.flush()  # the write must land before the time is set, or it moves the time again
            os.fchmod(f.fileno(), 0o644)
            os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
        os.replace(temporary, path)
    except OSError as exc:
        unlink(temporary)
        if exc.filename is None:  # a write() that failed (a full disk) names no file: name it
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        unlink(temporary)
        raise


# A file to write from the store: (file name, URL path, mtime_ns, the coded forms that may be beside it) →
# (file name, the coded forms written or None, files written, why it cannot be a file or None); forms None and no
# reason: the store has no such resource (nothing written).
FileTask = tuple[str, str, int, tuple[str, ...]]
Written = tuple[str, "list[str] | None", int, "str | None"]
CHUNK = 200  # resources whose bytes are read from the store at once


def write_files(conn: sqlite3.Connection, out: Path, tasks: list[FileTask], folders: set[Path]) -> Iterator[Written]:
    """Write these files from the store's resources (conn), each with the coded forms worth writing beside it: each
    one's result, in the tasks' order. folders: those made so far (made here as needed, and added)."""
    for start in range(0, len(tasks), CHUNK):
        chunk = tasks[start:start + CHUNK]
        found = {key: (bytes(body), gz, br) for key, body, gz, br in conn.execute(
            f"SELECT path, body, gzip, br FROM resources WHERE path IN ({','.join('?' * len(chunk))})",
            [task[1] for task in chunk])}
        for name, key, mtime, beside in chunk:
            row = found.pop(key, None)
            if row is None:
                yield name, None, 0, None
                continue
            body, gz, br = row
            yield put_file(out, name, body, coded_forms(body, {"gzip": gz, "br": br}) if precompressed(key) else {},
                           beside, mtime, folders)


def put_file(out: Path, name: str, body: bytes, forms: dict[str, bytes], beside: Iterable[str], mtime: int,
             folders: set[Path]) -> Written:
    """Write a file and the coded forms given (precompress.SUFFIXES), removing those of `beside` (the forms that may be
    there) not given; its folder made if not in `folders`. A file that cannot be (LEAVE_OUT) is said so."""
    target, written = out / name, 0
    try:
        if target.parent not in folders:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            folders.add(target.parent)
        for coding, suffix in SUFFIXES.items():
            if coding in forms:
                write_file(target.with_name(target.name + suffix), forms[coding], mtime)
                written += 1
            elif coding in beside:
                unlink(target.with_name(target.name + suffix))
        write_file(target, body, mtime)
    except OSError as exc:
        if exc.errno not in LEAVE_OUT:
            raise
        return name, None, 0, exc.strerror or str(exc)
    return name, sorted(forms), written + 1, None


@contextmanager
def writing(out: Path) -> Iterator[dict[str, str]]:
    """Around a build's writes into out: yields the names a build that failed or was killed before may have written,
    retimed or removed (name → URL path), after removing the temporary files that build left; the marker goes once the
    build has written all (a build notes the names it touches with mark_writing before it changes anything)."""
    marker = out / WRITING
    try:
        before = json.loads(marker.read_bytes())
    except FileNotFoundError:
        before = None
    except ValueError:
        before = {}
    if before is not None:
        for folder, folders, names in os.walk(out):
            folders[:] = [name for name in folders if not name.startswith(STAGING)]  # pages being made ahead: not leftovers
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    unlink(Path(folder) / name)
    yield before or {}
    unlink(marker)


def mark_writing(out: Path, names: dict[str, str]) -> None:
    """Note, before changing any, every file a build may write, retime or remove (name → URL path): if it fails or is
    killed, the manifest no longer says what those files hold, and the next build writes each again (or removes it)
    whatever the manifest says; the other files are as the manifest says."""
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / WRITING, json.dumps(names, sort_keys=True, ensure_ascii=False).encode(), 0)


def read_manifest(out: Path) -> dict | None:
    """The manifest of the export folder, or None if it has none; a folder that is not an export is an error."""
    try:
        return orjson.loads((out / MANIFEST).read_bytes())  # 11,328 files at 10,000 articles: 1.9 MB
    except (FileNotFoundError, NotADirectoryError):  # not there, or out is a file: said below
        pass
    except ValueError:  # a torn manifest cannot be: it is renamed into place; treat the folder as ours, unknown
        return {}
    if (out / WRITING).exists():  # a first build into it was killed: ours, written whole again
        return {}
    if out.exists() and (not out.is_dir() or any(not left_alone(entry.name) for entry in out.iterdir())):
        raise ExportError(f"{out} exists and is not an export made by `feedsvc build`; move it away or choose another --out")
    return None


def remove_staging(path: Path) -> None:
    """Remove a build's staging folder, or whatever else is at its name: a link is unlinked, never followed."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def own(name: str) -> bool:
    """Whether a name in the export folder is a build's bookkeeping, not a file of the site (nginx hides all three)."""
    return name == LOCK or name.startswith(STAGING)


# What a file system puts at a volume's root: an export folder that is an ext4 volume of its own holds lost+found
# from the start (README: DIR may be "a file system of its own").
VOLUME_OWN = frozenset({"lost+found"})


def left_alone(name: str) -> bool:
    """Whether a name in the export folder is no file of the site, nor one that makes the folder another's: never removed."""
    return own(name) or name in VOLUME_OWN


def export_folder(out: str | Path) -> Path:
    """The folder a build writes: --out made absolute, and where it is a link to a folder (a web root linked to a
    volume), the folder it leads to; a link of the earlier layout (take_over) is kept, to be taken over."""
    out = Path(os.path.abspath(out))
    if out.is_symlink() and not _earlier_layout(out):
        return Path(os.path.realpath(out))
    return out


def _earlier_layout(out: Path) -> bool:
    """Whether out is a link to a version folder beside it, as an earlier feedsvc exported."""
    return Path(os.readlink(out)).name.startswith(f".{out.name}.version-")


def refuse_foreign(out: Path) -> None:
    """read_manifest's refusal of a folder that is not an export, without reading a manifest that is there."""
    if not (out / MANIFEST).is_file():
        read_manifest(out)


def write_manifest(out: Path, manifest: dict) -> None:
    """The manifest, sorted and compact: orjson's bytes are json.dumps(sort_keys=True, ensure_ascii=False, compact)'s,
    made in 2 ms where json took 30-40 ms at 10,000 articles."""
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS), 0)


def store_token(store: str | Path) -> str:
    """The build store's own name, made once: an export written from another store (or a new one) is written whole."""
    conn = connect(store, readonly=True)
    try:  # made before: read it without a write transaction (which waits for the builder's)
        row = conn.execute("SELECT token FROM export_origin").fetchone()
    except sqlite3.OperationalError:  # no such table yet
        row = None
    finally:
        conn.close()
    if row is not None:
        return row[0]
    conn = connect(store)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS export_origin (token TEXT NOT NULL)")
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT token FROM export_origin").fetchone()
        if row is None:
            row = (uuid.uuid4().hex,)
            conn.execute("INSERT INTO export_origin VALUES (?)", row)
        conn.execute("COMMIT")
        return row[0]
    finally:
        conn.close()


def remove_files(out: Path, gone: dict) -> int:
    """Remove the files of resources gone (and their coded forms), then folders left empty."""
    removed, folders = 0, set()
    for name in gone:
        for suffix in ("", *SUFFIXES.values()):
            removed += unlink(out / (name + suffix))
        folders.update(Path(name).parents)
    for folder in sorted(folders - {Path(".")}, key=lambda f: len(f.parts), reverse=True):
        try:
            (out / folder).rmdir()
        except OSError:
            pass  # not empty: other files still live there
    return removed


def unlink(path: Path) -> int:
    """Remove a file of ours; 1 if one was there. Something else in its place (a folder made there, a file where its
    folder should be) is not ours to remove, and was named when its file was left out."""
    try:
        path.unlink()
        return 1
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return 0


def take_over(out: Path) -> list[Path]:
    """An export of the earlier layout (a link to a version folder beside it) becomes a plain folder to write
    whole; returns the version folders to remove once it is written."""
    if not out.is_symlink():
        return []
    if not _earlier_layout(out):  # export_folder follows every other link
        raise ExportError(f"{out} is a link to {os.readlink(out)}, not an export made by `feedsvc build`; move it away or choose another --out")
    out.unlink()
    return [p for p in out.parent.glob(f".{out.name}.version-*") if p.is_dir() and not p.is_symlink()]


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """One build at a time per export folder (a second waits): a lock file inside it (LOCK), made with the folder; beside
    it only for an export of the earlier layout, a link about to be replaced by a folder."""
    if out.is_symlink():
        path = out.parent / f".{out.name}.lock"
    else:
        out.mkdir(parents=True, exist_ok=True)
        path = out / LOCK  # an earlier feedsvc's, beside the folder, is left alone: it may be building there still
    # Never through a link: one planted at the lock's name would have the build make a file wherever it leads.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)  # the umask decides, as open()
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ExportError(f"{path} is a link; remove it (a build's lock is a file of its own)") from None
    with os.fdopen(fd, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def etag(body, *more) -> str:
    """The app's ETag of these bytes (render.Rendered), given whole or as buffers one after the other."""
    digest = hashlib.sha256(body)
    for part in more:
        digest.update(part)
    return '"' + digest.hexdigest()[:32] + '"'


def not_as_noted(out: Path, had: dict) -> dict[str, str]:
    """The files the manifest names that are not there as files (name → URL path): removed by hand since (a cleaning
    script, an rsync gone wrong), or something else in their place (a link, a folder). A build writes them again, as a
    killed build's, so nginx never serves a hole or a link for good. Each folder is listed once, with no stat a file:
    17-30 ms at 10,000 articles, where a stat of every file (for its time too) took 125 ms of a build's 0.9 s. A name the
    listing lacks is looked at alone before it counts (a file system that lists names in another Unicode form, a folder
    that can be searched but not listed)."""
    listed: dict[str, set[str]] = {}
    found = {}
    for name, entry in had.items():
        if not entry[1]:  # noted to write again already
            continue
        folder, _, base = name.rpartition("/")
        files = listed.get(folder)
        if files is None:
            files = listed[folder] = _files_in(out / folder if folder else out)
        if not base.isascii():
            base = unicodedata.normalize("NFC", base)
        if base in files and (not entry[4] or all(base + SUFFIXES[coding] in files for coding in entry[4])):
            continue  # nearly every file: listed, and its coded forms
        if not all(_a_file(out / (name + suffix)) for suffix in ("", *(SUFFIXES[coding] for coding in entry[4]))):
            found[name] = entry[0]
    return found


def _files_in(folder: Path) -> set[str]:
    """The names (NFC) of the plain files in a folder (none if it is gone or not a folder): no link, no folder."""
    try:
        with os.scandir(folder) as entries:
            names = [each.name for each in entries if each.is_file(follow_symlinks=False)]
    except OSError:
        return set()
    return {name if name.isascii() else unicodedata.normalize("NFC", name) for name in names}


def _a_file(path: Path) -> bool:
    """Whether a plain file (not a link, not a folder) is at path."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def mtime_ns(modified: str) -> int:
    """A file's modification time for a Last-Modified kept as ISO 8601 text (exact to the microsecond)."""
    return (datetime.fromisoformat(modified) - _EPOCH) // timedelta(microseconds=1) * 1000


def sync_folder(folder: Path) -> None:
    """Flush the filesystem that holds `folder` (syncfs(2)), not every filesystem of the machine as sync(2) does: a
    busy disk elsewhere (another site, a log) would make each build wait for it. sync() where syncfs is missing."""
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        os.sync()
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), f"syncfs {folder}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
