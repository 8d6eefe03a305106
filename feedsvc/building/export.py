"""The static export: every resource the app serves without a key, as files that nginx or a CDN serves
at the same URLs, with .gz and .br beside each, switched into place whole.

Layout: the export folder OUT is a symlink to a version folder beside it (.OUT.version-…). A build
writes a new version and then replaces the symlink with one rename(2), so a reader sees the old
export or the new one, never a mix, and a build that fails or is killed leaves the old one as it was.
A file whose bytes and time are unchanged is a hard link to the previous version's file: it keeps its
inode and mtime, so nginx's ETag and Last-Modified stay the same. Each file's mtime is its resource's
Last-Modified.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping

from ..formats import FORMATS
from ..preview import preview_page
from ..resource import Rendered
from ..urls import EXPORT_PREVIEW, export_file

log = logging.getLogger(__name__)

SUFFIXES = {"gzip": ".gz", "br": ".br"}  # nginx gzip_static and brotli_static look for these
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A resource that cannot be a file is left out with a warning; any other failure stops the build.
_LEAVE_OUT = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EINVAL}


class ExportError(Exception):
    """The export folder cannot be written: the message names it and what to do."""


@dataclass(frozen=True)
class ExportResult:
    """What a build wrote: the new version folder, files written anew and kept, resources changed and left out."""

    folder: Path
    written: int
    kept: int
    changed: tuple[str, ...]  # resources whose files were written anew (new bytes or a new time)
    left_out: tuple[str, ...]


def export_resources(publisher) -> dict[str, Rendered]:
    """Everything the app serves without a key: the snapshot's resources, each feed's page for browsers
    (at "<feed path>#preview", the bytes the app answers a navigation with) and every feed's archive pages."""
    snapshot = publisher.snapshot
    out = dict(snapshot.resources)
    for path in snapshot.resources:
        page = preview_page(snapshot, publisher.site, path)
        if page is not None:
            out[path + EXPORT_PREVIEW] = page
    for feed in snapshot.feeds:
        for fmt in FORMATS:
            page = 2
            while (found := publisher.variant(feed.key, fmt, page=page)) is not None:
                out[f"{feed.path(fmt)}?page={page}"] = found  # the query the routes take
                page += 1
    return out


def export_snapshot(resources: Mapping[str, Rendered], out: Path, advance: Callable[[int], object] | None = None) -> ExportResult:
    """Write resources as a new version of the export at out and switch out to it; advance(1) per resource."""
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out.parent / f".{out.name}.lock"):
        previous = _current(out)
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.version-", dir=out.parent))
        try:
            os.chmod(new, 0o755)  # nginx's workers read it as another user
            result = _write_all(resources, new, previous, advance or (lambda n: None))
            os.sync()  # on disk before the switch: one flush, not an fsync per file (a first build writes thousands)
            _switch(out, new)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        _prune(out, keep={new, previous})  # the one before stays for requests still reading it
    return result


def write_file(path: Path, data: bytes, mtime_ns: int) -> None:
    """Create path (never overwrite) with data, readable by all, modified at mtime_ns."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()  # the write must land before the time is set, or it moves the time again
        os.fchmod(f.fileno(), 0o644)
        os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))


def _write_all(resources: Mapping[str, Rendered], new: Path, previous: Path | None,
               advance: Callable[[int], object]) -> ExportResult:
    written = kept = 0
    changed: list[str] = []
    left_out: list[str] = []
    for path in sorted(resources):
        res = resources[path]
        name = export_file(path, res.media_type)
        try:
            if name is None:
                raise OSError(errno.EINVAL, "not a path a file can have")
            target = new / name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            w, k = _write_resource(res, target, previous / name if previous else None)
            written, kept = written + w, kept + k
            if w:
                changed.append(path)
        except OSError as exc:
            if exc.errno not in _LEAVE_OUT:
                raise
            log.warning("export: /%s left out (%s); the app still serves it", path, exc.strerror or exc)
            left_out.append(path)
        advance(1)
    return ExportResult(new, written, kept, tuple(changed), tuple(left_out))


def _write_resource(res: Rendered, target: Path, old: Path | None) -> tuple[int, int]:
    """The file and its compressed forms: linked from the previous export when unchanged. (written, kept)"""
    mtime = _ns(res.last_modified)
    unchanged = old is not None and _same(old, res.body, mtime)
    files = [(target, lambda: res.body, old)]
    files += [(target.with_name(target.name + s), lambda c=c: res.coded(c), old and old.with_name(old.name + s))
              for c, s in SUFFIXES.items()]
    written = kept = 0
    for path, data, before in files:
        if unchanged and _link(before, path, mtime):
            kept += 1
        else:
            write_file(path, data(), mtime)
            written += 1
    return written, kept


def _same(old: Path, body: bytes, mtime_ns: int) -> bool:
    try:
        st = old.stat()
        return st.st_size == len(body) and st.st_mtime_ns == mtime_ns and old.read_bytes() == body
    except OSError:
        return False


def _link(old: Path, new: Path, mtime_ns: int) -> bool:
    """Hard-link old's file to new (a copy where links fail) if it has that mtime; False if it is missing."""
    try:
        if old.stat().st_mtime_ns != mtime_ns:
            return False
    except OSError:
        return False
    try:
        os.link(old, new)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(old, new)
        os.chmod(new, 0o644)
        os.utime(new, ns=(mtime_ns, mtime_ns))
    return True


def _current(out: Path) -> Path | None:
    """The version folder out points to now, if any; an empty plain folder is removed to make way."""
    if out.is_symlink():
        target = out.parent / os.readlink(out)  # as _prune lists it, whatever links the parent path has
        return target if target.is_dir() else None
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        return None
    if out.exists():
        raise ExportError(f"{out} exists and is not an export made by `feedsvc build`; move it away or choose another --out")
    return None


def _switch(out: Path, new: Path) -> None:
    """Point out at new with one rename: a reader resolves the old target or the new, nothing between."""
    link = out.with_name(f".{out.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(new.name, link)  # relative: the parent folder may be moved or mounted elsewhere
    os.replace(link, out)
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # the switch itself survives a power cut
    finally:
        os.close(fd)


def _prune(out: Path, keep: set[Path | None]) -> None:
    """Remove other versions: older ones, and folders left by builds that were killed."""
    for folder in out.parent.glob(f".{out.name}.version-*"):
        if folder not in keep and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per export folder (a second waits), so none prunes another's version."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ns(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000
