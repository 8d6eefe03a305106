"""The one rule for what an article file is — its name, its type, its real path inside the folder, its
size — applied before a byte is read, the same for the full walk, a watcher's hint and `feedsvc check`.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import operator
import os
import re
import signal
import stat
from dataclasses import dataclass

EXTENSIONS = (".txt", ".md")
MAX_FILE_BYTES = 1024 * 1024  # news articles are tens of KB; the largest file must still parse in about a second
# Editor leftovers: Emacs (foo~, #foo#, .#foo), Vim (.foo.swp … .swa), Kate, Office lock files, and
# the .bak/.orig/.rej/.tmp/.part/.save copies tools leave beside a file.
_BACKUP = re.compile(
    r"(~|\.sw[a-p]|\.kate-swp|\.bak|\.orig|\.rej|\.tmp|\.temp|\.part|\.save)$|^#.*#$|^\.#|^~\$", re.IGNORECASE
)
# O_NONBLOCK: opening a FIFO never waits for a writer; O_NOCTTY: a terminal never becomes ours.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LEASES = hasattr(fcntl, "F_SETLEASE") and hasattr(fcntl, "F_SETSIG") and hasattr(signal, "SIGURG")  # Linux only
# Characters that would break a log or `check` line or drive a terminal: C0/C1 controls, DEL, line and
# paragraph separators, bidi embeddings, overrides and isolates.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NOT_ARTICLE_FIX = "only .txt and .md files are published; rename it if it is an article"
_FIRST = operator.itemgetter(0)


@dataclass(frozen=True)
class Skipped:
    """A file left out of the feeds, and why; every field printable on one line."""

    source: str
    reason: str
    fix: str

    def __post_init__(self) -> None:
        for name in ("source", "reason", "fix"):  # built from file names: never trust them to be printable
            object.__setattr__(self, name, shown(getattr(self, name)))

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}; {self.fix}"


class Unreadable(Skipped):
    """A file that could not be read this time (its permissions, an I/O error, a folder on its way swapped meanwhile):
    read again at the next look, as it is, never kept as what its stat reads as (a chmod changes no mtime)."""


QUOTED_MAX = 80  # characters of a value an error quotes: a 600 KB first line made a 600 KB line of `check`


def quoted(value: object, limit: int = QUOTED_MAX) -> str:
    """A value as an error quotes it (repr), cut to `limit` characters with an ellipsis: one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 2] + "…" + text[-1]


@functools.lru_cache(maxsize=65536)  # the same names every walk
def shown(text: str) -> str:
    """Text that prints as one line and drives no terminal: bytes that are not UTF-8 as U+FFFD, controls escaped."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _UNPRINTABLE.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}"), text)


def name_rule(name: str) -> tuple[str, str] | None:
    """(reason, fix) when a file's name says it is not an article (hidden, editor leftover, other extension)."""
    # Most names: an article's extension in lower case, which no leftover pattern ends with, and no leading "." or
    # "~$" (Office's lock files). Two C calls: a fresh process's first walk asks it of every file (10,000 regular
    # expression searches, a sixth of the walk).
    if name.endswith(EXTENSIONS) and not name.startswith((".", "~$")) and _utf8(name):
        return None
    return _name_rule(name)


def _utf8(name: str) -> bool:
    """Whether a name (os.fsdecode's: bytes that are not UTF-8 as lone surrogates) is UTF-8: an ID, a URL and a key of
    the state store can be made of it."""
    if name.isascii():  # nearly every name: one C call
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # the same few leftovers every walk
def _name_rule(name: str) -> tuple[str, str] | None:
    if not _utf8(name):  # before anything stores or logs it: one such name stopped every refresh of the site
        return "file name is not valid UTF-8", "rename the file (its name was saved in another encoding)"
    if name.startswith("."):
        return "hidden file", "not read; rename it without the leading dot to publish it"
    if _BACKUP.search(name):
        return "editor backup or swap file", "not read; save the article under a .txt or .md name"
    if not name.lower().endswith(EXTENSIONS):
        return "not an article file", _NOT_ARTICLE_FIX
    return None


class FileBusyError(OSError):
    """Another process has the file open for writing: it is still being written, read it once closed."""


class FileChangedError(FileBusyError):
    """The file is not as it was listed, or was written to while it was read: read it again at the next look."""


class FolderError(OSError):
    """The articles folder itself cannot be read: str() names it and the fix."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class Folder:
    """An articles folder as the boundary sees it: its path, and its real path resolved once per look."""

    FULL_WALK = "full walk"  # source_of(): a folder changed, walk everything

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self.real = os.path.realpath(self.root)
        self._prefix = self.real.rstrip(os.sep) + os.sep
        self._top = os.path.join(self.root, "")  # the root and a separator: see _path
        # Each link to a file inside met by walk() or look(), as source → the sources on its way there, each link's after
        # its own and the file's (None: no longer a link to one): the watcher names the file, or a link on the way, when
        # it is saved or pointed elsewhere, never the links that lead through it (Scanner._targets).
        self.links: dict[str, tuple[str, ...] | None] = {}

    def inside(self, real: str) -> bool:
        """True when a real (resolved) path is the folder or lies inside it."""
        return real == self.real or real.startswith(self._prefix)

    def walk(self, unchanged: Callable[[str, int, int], bool] | None = None
             ) -> tuple[list[tuple[str, int, int]], dict[str, Skipped]]:
        """(source, size, mtime_ns) of every article file, sorted, and what was passed over, by source.

        One os.scandir pass with string paths. Links to folders are not followed, and each real folder
        (device, inode) is read once, so loops and bind mounts cannot make the walk go round.
        unchanged: called with each regular file's (source, size, mtime_ns); a file it says True of is left out
        (a scanner that holds the folder as it is: no triple and no string kept for each of its files).
        """
        found: list[tuple[str, int, int]] = []
        passed: dict[str, Skipped] = {}
        try:
            top = os.stat(self.root)
            if not stat.S_ISDIR(top.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        except OSError as exc:
            raise FolderError(exc.errno, f"articles folder {shown(self.root)} cannot be read ({exc.strerror}); "
                                         "set ARTICLES_DIR to a folder feedsvc can read") from None
        visited = {(top.st_dev, top.st_ino)}
        pending = [("", self.root)]
        while pending:
            prefix, folder = pending.pop()
            files: list[tuple[str, int, int]] = []
            told: list[tuple[str, str, Skipped]] = []  # (name, key in passed, what): told in name order, as listed
            folders: list[tuple[str, str, tuple[int, int]]] = []  # (name, path, (device, inode)): gone into in name order
            try:
                # Each entry taken as the listing gives it, none held: a DirEntry keeps its name, path and stat, and
                # a flat folder of 100,000 files held them all at once at every walk (50 MiB of a builder's peak).
                with os.scandir(folder) as listing:
                    for entry in listing:
                        self._entry(prefix, entry, files, told, folders, unchanged)
            except OSError as exc:
                if not prefix:
                    raise FolderError(exc.errno, f"articles folder {shown(self.root)} cannot be read ({exc.strerror}); "
                                                 "check its permissions") from None
                passed[prefix] = _unlisted(prefix, exc)
                continue
            found += files
            for name, path, device in sorted(folders):  # a folder met twice (a bind mount) is read where it comes first
                source = prefix + name + "/"
                if device in visited:
                    told.append((name, source, Skipped(source, "the same folder as one already read (a loop)", "remove the mount or link that repeats it")))
                else:
                    visited.add(device)
                    pending.append((source, path))
            told.sort(key=_FIRST)
            passed.update((key, skipped) for _, key, skipped in told)
        found.sort()
        return found, passed

    def holds_at_least(self, count: int) -> bool:
        """Whether the folder has at least `count` files named as articles, counted by name only and only until
        there are that many (a few directory reads however big the folder is); a folder that cannot be read: False,
        the walk says why."""
        found, pending, visited = 0, [self.root], set()
        while pending:
            try:
                with os.scandir(pending.pop()) as listing:
                    for entry in listing:
                        if entry.is_dir(follow_symlinks=False):
                            try:
                                st = entry.stat(follow_symlinks=False)
                            except OSError:  # gone since the listing
                                continue
                            if not entry.name.startswith(".") and (st.st_dev, st.st_ino) not in visited:
                                visited.add((st.st_dev, st.st_ino))
                                pending.append(entry.path)
                        elif name_rule(entry.name) is None:
                            found += 1
                            if found >= count:
                                return True
            except OSError:
                continue
        return False

    def _entry(self, prefix: str, entry: os.DirEntry, files: list, told: list, folders: list,
               unchanged: Callable[[str, int, int], bool] | None) -> None:
        """walk()'s look at one entry of a listing: a file found, a folder to go into, or what was passed over."""
        source = prefix + entry.name
        try:
            is_link = entry.is_symlink()
            if entry.name.startswith(".") and entry.is_dir():  # (a link to one too: a ConfigMap's ..data)
                # Not read and not told: a checkout's .git, a Kubernetes ConfigMap's ..data, an editor's .idea hold no
                # articles, and told they made `check` fail (exit 1) and /healthz count them skipped for good.
                return
            if not is_link and entry.is_dir(follow_symlinks=False):
                if not _utf8(entry.name):
                    told.append((entry.name, source + "/", Skipped(source + "/", "folder name is not valid UTF-8",
                                                                   "not read; rename the folder (its name was saved in another encoding)")))
                else:
                    st = entry.stat(follow_symlinks=False)
                    folders.append((entry.name, entry.path, (st.st_dev, st.st_ino)))
                return
            rule = name_rule(entry.name)
            if rule and not (is_link and entry.is_dir()):  # a link to a folder is told as one
                told.append((entry.name, source, Skipped(source, *rule)))
                return
            st = entry.stat(follow_symlinks=False)
            if not is_link and stat.S_ISREG(st.st_mode):  # the common case, without a call
                if unchanged is None or not unchanged(source, st.st_size, st.st_mtime_ns):
                    files.append((source, st.st_size, st.st_mtime_ns))
                return
            got = self._file(source, entry.path, st)
        except FileNotFoundError:  # removed since the listing (a temporary file, an editor's swap file): not there
            return
        except OSError as exc:  # a name too long (for good); a folder that can be listed but not searched (r--: for now)
            if exc.errno in _FOR_GOOD:
                got = Skipped(source, *_file_error(exc))
            else:  # a folder in it (its type from the listing) keeps its files as a folder that cannot be listed does
                got = _unlisted(source + "/", exc) if _listed_as_folder(entry) else Unreadable(source, *_stat_error(source, exc))
        if isinstance(got, Skipped):
            told.append((entry.name, source + "/" if got.source.endswith("/") else source, got))
        else:
            files.append((source, *got))

    def look(self, source: str) -> tuple[int, int] | Skipped | None:
        """The rule for one file named by a watcher: (size, mtime_ns), Skipped, or None when it is gone
        or lies where the walk does not go (a hidden folder, under a link)."""
        parts = source.split("/")
        if any(not p or p.startswith(".") or not _utf8(p) for p in parts[:-1]):  # the walk does not go there either
            return None
        if parts[:-1] and os.path.realpath(os.path.join(self.root, *parts[:-1])) != os.path.join(self.real, *parts[:-1]):
            return None  # reached through a link to a folder, which the walk does not follow
        path = os.path.join(self.root, *parts)
        self.links[source] = None  # unless it is a link to a file inside (_file)
        rule = name_rule(parts[-1])
        if rule:  # an editor's swap file or sed's temporary is told only while it is there
            return Skipped(source, *rule) if os.path.lexists(path) else None
        try:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                return None
            return self._file(source, path, st)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a folder on its way that cannot be searched (its permissions) says EACCES: for now
            return (Skipped if exc.errno in _FOR_GOOD else Unreadable)(source, *_stat_error(source, exc))

    def source_of(self, path: str) -> str | None:
        """The source (path inside the folder, "/"-separated) of a path a watcher reported; None if outside;
        FULL_WALK when it is a folder."""
        rel = os.path.relpath(path, self.root)
        if (rel == ".." or rel.startswith(".." + os.sep)) and self.real != self.root:  # under the real path of a linked folder
            rel = os.path.relpath(path, self.real)
        if rel == "." or rel == ".." or rel.startswith(".." + os.sep):
            return None
        if os.path.isdir(path):
            return self.FULL_WALK
        return "/".join(rel.split(os.sep))

    def exists(self, source: str) -> bool:
        """Whether anything (a file, a folder, a link) is at this source now."""
        return os.path.lexists(os.path.join(self.root, *source.split("/")))

    def _file(self, source: str, path: str, st: os.stat_result) -> tuple[int, int] | Skipped:
        """A non-folder entry, from its lstat: (size, mtime_ns) of a regular file inside, else Skipped."""
        if stat.S_ISLNK(st.st_mode):
            try:
                real = os.path.realpath(path, strict=True)
                st = os.stat(real)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # a.txt → b.txt → a.txt
                    return Skipped(source, *_file_error(exc))
                return Skipped(source, f"link that leads nowhere ({exc.strerror})", "remove the link, or point it at an article file inside the folder")
            if stat.S_ISDIR(st.st_mode):
                where = "inside" if self.inside(real) else "outside"
                return Skipped(source + "/", f"link to a folder {where} the articles folder", "not followed; move the folder itself into the articles folder to publish its files" if where == "outside" else "not followed; its files are published from where they are")
            if not self.inside(real):
                return Skipped(source, "link to a file outside the articles folder", "not read; copy the file into the folder to publish it")
            self.links[source] = self._chain(path, real)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the refresh, a device never ends
            return Skipped(source, "not a regular file", "replace it with the article file itself")
        return st.st_size, st.st_mtime_ns

    def _chain(self, path: str, real: str) -> tuple[str, ...]:
        """The sources a link at path leads through to its file (real): each further link's, then the file's."""
        found, current = [], path
        for _ in range(40):  # the kernel's own limit of links followed (ELOOP)
            try:
                current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
            except OSError:  # not a link: the file itself
                break
            for base in (self.root, self.real):
                rel = os.path.relpath(current, base)
                if not rel.startswith(".." + os.sep) and rel != "..":
                    found.append("/".join(rel.split(os.sep)))
                    break
        found.append("/".join(os.path.relpath(real, self.real).split(os.sep)))
        return tuple(dict.fromkeys(found))

    def _path(self, source: str) -> str:
        """The path of a file inside the folder, from its source: os.path.join(root, *source.split("/"))."""
        if "/" not in source:  # a file at the top, as most are: the same path without a split and a join
            return self._top + source
        return os.path.join(self.root, *source.split("/"))

    def writing(self, source: str) -> bool | None:
        """Whether another process has the file open for writing now; None when the kernel cannot say."""
        fd = None
        try:
            fd = os.open(self._path(source), _OPEN_FLAGS)
            return writers_open(fd)
        except OSError:
            return None  # gone, unreadable: the read says why
        finally:
            if fd is not None:
                os.close(fd)

    def read(self, source: str, busy: bool = False, expect: tuple[int, int] | None = None) -> bytes | Skipped:
        """A file's bytes, checked again once open: a regular file, really inside, at most MAX_FILE_BYTES.

        busy: raise FileBusyError, before reading, when another process has the file open for writing.
        expect: the (size, mtime_ns) the file was listed with: raise FileChangedError when the open file is not
        that before it is read, or after (written to meanwhile). Asked of the open file (fstat), not of its path:
        in the process that reads it, not a stat more of every file in the one that listed them.
        """
        path = self._path(source)
        fd = None
        try:
            try:
                fd = os.open(path, _OPEN_FLAGS | _NOFOLLOW)
            except OSError as exc:
                if exc.errno != errno.ELOOP or not _NOFOLLOW:
                    raise
                real = os.path.realpath(path, strict=True)  # a link: open what it leads to, if that is inside
                if not self.inside(real):
                    return Skipped(source, "link to a file outside the articles folder", "not read; copy the file into the folder to publish it")
                fd = os.open(real, _OPEN_FLAGS | _NOFOLLOW)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return Skipped(source, "not a regular file", "replace it with the article file itself")
            if not self.inside(_real_path(fd, path)):  # a folder on the way swapped for a link meanwhile
                return Unreadable(source, "file outside the articles folder", "not read; copy the file into the folder to publish it")
            if busy and writers_open(fd):
                raise FileBusyError(errno.ETXTBSY, "open for writing by another process", source)
            if expect is not None and (st.st_size, st.st_mtime_ns) != expect:
                raise FileChangedError(errno.ESTALE, "changed since it was listed", source)
            # Cap what is read, not what stat says (/proc files say 0), but ask for what it says first: one read
            # of the file's size, not a 1 MiB buffer allocated (and mapped, and unmapped) for every 5 kB article.
            chunks, left, ask = [], MAX_FILE_BYTES + 1, st.st_size + 1 if st.st_size else 1 << 16
            while left > 0:
                chunk = os.read(fd, min(left, ask))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
                if len(chunks) == 1 and len(chunk) == st.st_size:
                    # The first read gave every byte fstat counted: the end of the file, no read more to find it.
                    # A second read finds only bytes written since the fstat, which a write a moment later misses too.
                    break
                ask = 1 << 20
            if expect is not None and ((after := os.fstat(fd)).st_size, after.st_mtime_ns) != expect:
                raise FileChangedError(errno.ESTALE, "written to while it was read", source)
        except FileBusyError:
            raise
        except OSError as exc:
            if expect is not None and exc.errno == errno.ENOENT:  # deleted since it was listed: not an article to skip
                raise FileChangedError(errno.ESTALE, "gone since it was listed", source) from None
            return Unreadable(source, *_file_error(exc))
        finally:
            if fd is not None:
                os.close(fd)
        data = b"".join(chunks)
        if len(data) > MAX_FILE_BYTES:
            return Skipped(source, f"file is over the {MAX_FILE_BYTES} byte limit", "split it or remove embedded data")
        return data


def writers_open(fd: int) -> bool | None:
    """Whether any process has the open file open for writing (or mapped writable); None when the kernel cannot say.

    A read lease (fcntl(2) F_SETLEASE) is granted only while no one has the file open for writing, so taking
    one and giving it back at once asks the kernel exactly that. It is refused (None) for a file another user
    owns (without CAP_LEASE), on NFS, where fs.leases-enable is 0 and on systems other than Linux: the
    caller then falls back to waiting for the file to settle. Held for microseconds: a writer opening the
    file meanwhile waits that long, and the lease-break signal is set to SIGURG, which is ignored unless
    handled (SIGIO, the default, would end the process).
    """
    if not _LEASES:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno == errno.EAGAIN else None
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def _real_path(fd: int, path: str) -> str:
    """Where an open file really is: the kernel's name for the descriptor, else the path resolved."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _file_error(exc: OSError) -> tuple[str, str]:
    if exc.errno == errno.ENAMETOOLONG:
        return "path is longer than the system allows", "move the file to a shallower folder or shorten the names"
    if exc.errno == errno.ELOOP:
        return "link that leads round in a loop", "remove the link"
    return f"cannot be read ({exc.strerror or exc})", "check the file's permissions"


def _stat_error(source: str, exc: OSError) -> tuple[str, str]:
    """_file_error for a stat: one refused (EACCES) is its folder's doing, never the file's (a stat needs no permission on
    the file itself, only search permission on each folder on its way): the fix names the folder."""
    if exc.errno != errno.EACCES:
        return _file_error(exc)
    folder = source.rpartition("/")[0] or "the articles folder"
    return (f"cannot be reached ({exc.strerror or exc}): its folder {folder} can be listed but not searched",
            f"give {folder} search (x) permission for the user feedsvc runs as (chmod u+x, or the group's)")


_FOR_GOOD = (errno.ENAMETOOLONG, errno.ELOOP)  # what a file's or folder's name is, not a moment's state (permissions, I/O)


def _listed_as_folder(entry: os.DirEntry) -> bool:
    """Whether the listing gave this entry as a folder (its d_type: no call that could fail as the stat did)."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _unlisted(prefix: str, exc: OSError) -> Skipped:
    """A folder that could not be listed: Unreadable for a moment's cause (its permissions, an I/O error), whose files
    stay as they were last read (a chmod 000 of a folder withdrew its articles and announced them deleted)."""
    return (Skipped if exc.errno in _FOR_GOOD else Unreadable)(prefix, *_folder_error(exc))


def _folder_error(exc: OSError) -> tuple[str, str]:
    if exc.errno == errno.ENAMETOOLONG:
        return "folder path is longer than the system allows", "move its files to a shallower folder or shorten the names"
    return f"folder cannot be read ({exc.strerror or exc})", "check the folder's permissions"

