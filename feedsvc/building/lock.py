"""Who builds: the build lock, the builder's status that every process reads, and a serving process's bid for the lock.

Exactly one process per deployment builds: the one holding an exclusive flock on `<STATE_PATH>.build-lock`
(building/builder.py builds). Every other process serves from the store and tries the lock every half refresh interval
(contend): when the builder dies the kernel frees the lock and one of them takes over. The builder writes what it is
doing to `<STATE_PATH>.builder` (BuilderStatus) twice a second, for /healthz in every process. A module of its own, so
that a serving process imports the builder (its renderers, store writer and search index) only once it builds.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import threading
import time

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5


def lock_path(state_path: str) -> str:
    """The build lock's file, beside the state store."""
    return state_path + ".build-lock"


def writable(state_path: str) -> str | None:
    """Why this process cannot build into the state store: one line naming the folder or file and the fix; else None."""
    # The lock file is made if need be and left, as the builder leaves it. One there that opens only read-only (left
    # mode 444, another user's) will do: BuildLock locks it so, the same flock; it stopped serve and build, the folder
    # blamed, writable as it was.
    lock = lock_path(state_path)
    try:
        os.close(_opened(lock))
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM) and os.path.exists(lock):  # its own permissions, not the folder's
            return (f"the build lock {os.path.abspath(lock)} cannot be opened ({exc.strerror}); give the user feedsvc "
                    "runs as read access to it (chown or chmod), or set STATE_PATH to a file in another folder")
        return (f"the state folder {os.path.dirname(os.path.abspath(state_path))} cannot be written ({exc.strerror or exc}); "
                "set STATE_PATH to a file in a writable folder with free space")
    # The store's own files, where they are (beside the file a link names: SQLite follows it): SQLite opens one it
    # cannot write read-only and says nothing, and every build then failed on "attempt to write a readonly database"
    # (a file left owned by root, mode 444). Asked of the kernel by name, never opened: closing a descriptor of a
    # database file drops every POSIX lock this process's SQLite connections hold on it (fcntl's rule), and a
    # checkpoint beside then cut the file under a reader's map.
    effective = os.access in os.supports_effective_ids
    real = os.path.realpath(state_path)
    folder = os.path.dirname(real)
    for path in (real, real + "-wal", real + "-shm"):
        if os.path.exists(path) and not os.access(path, os.W_OK, effective_ids=effective):
            if _read_only_mount(folder):  # no chown or chmod helps there
                return _folder_unwritable(folder)
            named = os.path.abspath(state_path) if path == real else path  # the file as STATE_PATH names it
            return (f"the state store {named} cannot be written (Permission denied); "
                    "give the user feedsvc runs as write access to it (chown or chmod), or set STATE_PATH to another file")
    # The lock file opens in a read-only folder once it is there (every run leaves it); the write-ahead log and its
    # index, which a clean stop removes, are made by the first connection beside the file.
    made_there = not all(os.path.exists(real + end) for end in ("-wal", "-shm"))
    if made_there and not os.access(folder, os.W_OK | os.X_OK, effective_ids=effective):
        return _folder_unwritable(folder)
    return None


def _read_only_mount(folder: str) -> bool:
    """Whether the folder is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _folder_unwritable(folder: str) -> str:
    """The fix's line for a state folder this process cannot write in, by its permissions or its mount."""
    if _read_only_mount(folder):
        return (f"the state folder {folder} cannot be written (Read-only file system); set STATE_PATH to a file in a "
                "writable folder")
    return (f"the state folder {folder} cannot be written (Permission denied); give the user feedsvc runs as "
            "write access to it (chown or chmod), or set STATE_PATH to a file in a writable folder")


def status_path(state_path: str) -> str:
    """The builder's status file, beside the state store."""
    return state_path + ".builder"


class BuildLock:
    """An exclusive flock on the lock file; the kernel frees it when its holder dies, however it dies.

    The lock is on the file the path names: one deleted by hand (a tidy-up of "stale" lock files) frees the path for
    another process, which creates a new file there and would build beside the holder. So a lock is taken only on
    the file still at the path, and the holder checks (kept()) that it is: if not, it locks the new file too, or, if
    another process was first, stops building."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None
        self._also: list[int] = []  # the files put back at the path after the first was deleted (kept())

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True if this process holds it now."""
        if self.fd is not None:
            return True
        fd = self._locked(blocking=False)
        if fd is None:
            return False
        self.fd = fd
        return True

    def acquire(self) -> None:
        """Wait for the lock."""
        fd = None
        while fd is None:  # None: the file at the path was replaced while this process waited; lock the new one
            fd = self._locked(blocking=True)
        self.fd = fd

    def release(self) -> None:
        """Let go of the lock (every file this process locks at the path)."""
        for fd in (self.fd, *self._also):
            if fd is not None:
                os.close(fd)
        self.fd, self._also = None, []

    def kept(self) -> bool:
        """(the holder) Whether the path still names a file this process locks, after locking the file now there if
        the one it locked was deleted; False: another process locks the file at the path now (two would build)."""
        if self.fd is None:
            return False
        if any(_names(self.path, fd) for fd in (self.fd, *self._also)):
            return True
        fd = self._locked(blocking=False)
        if fd is None:
            return False
        log.warning("the build lock file %s was deleted or replaced; this builder locks the new one", self.path)
        self._also.append(fd)
        return True

    def _locked(self, blocking: bool) -> int | None:
        """A descriptor of the file at the path, flocked; None when another process holds it, or when the path names
        another file once the lock is taken (deleted or replaced meanwhile: try again)."""
        fd = _opened(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not _names(self.path, fd):
            os.close(fd)
            return None
        return fd


def _opened(path: str) -> int:
    """A descriptor of the lock file, made if need be; read-only when it is there but cannot be opened to write (a
    read-only folder or mount, a full disk): flock takes the same lock, one holder at a time, through either."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as cannot:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise cannot from None  # no lock file either: the folder's own problem is the one to fix


def _names(path: str, fd: int) -> bool:
    """Whether the path names the file open at fd (the same device and inode)."""
    try:
        named, held = os.stat(path), os.fstat(fd)
    except OSError:  # deleted, or its folder gone
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def folder_key(root) -> str:
    """Which articles folder a builder reads, as the status file tells it: a digest of its real path (no path of the
    server's file system reaches a reader of /healthz or of the state folder)."""
    return hashlib.sha256(os.path.realpath(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def status_of(publisher, finished: bool = False) -> dict:
    """What /healthz tells of a building process: its process ID and site, the last success and error, and the
    refresh under way (seconds, file), none when `finished` (a refresh's own observer, as it ends)."""
    running = None if finished else publisher.progress.now()
    return {"pid": os.getpid(), "site_url": publisher.site.url, "articles": folder_key(publisher.root),
            "last_success": publisher.last_success.isoformat() if publisher.last_success else None,
            "last_error": publisher.last_error, "observer_error": publisher.observer_error,
            "refreshing": None if running is None else list(running)}


class BuilderStatus:
    """The builder's last success, last error and running refresh, shared with other processes through a file."""

    def __init__(self, path: str):
        self.path = path
        # The heartbeat and the observer at a refresh's end write from two threads through one temporary file: one
        # at a time, or one moves the other's half-written file into place and a reader finds no builder.
        self._writing = threading.Lock()
        self._failing: str | None = None  # why the last write failed, said once until a write succeeds again

    def write(self, publisher, finished: bool = False) -> None:
        """Write the publisher's status now (atomically: a reader sees the old file or the new).

        finished: called as a refresh ends (by an observer, still inside it): no refresh is running.
        """
        body = {**status_of(publisher, finished), "heartbeat": time.time()}
        temporary = f"{self.path}.{os.getpid()}"
        with self._writing:
            try:
                with open(temporary, "w", encoding="utf-8") as out:
                    json.dump(body, out)
                os.replace(temporary, self.path)
            except OSError:
                with contextlib.suppress(OSError):  # never made (a read-only folder); else each failed try, twice a
                    os.unlink(temporary)  # second on a full disk, left an empty file behind
                raise
        if self._failing is not None:
            self._failing = None
            log.warning("the builder status %s is written again", self.path)

    def written(self, publisher, finished: bool = False) -> bool:
        """write(), its failure (a full disk, a read-only folder) logged once until it succeeds again, not raised: the
        refresh it tells of went on, and the heartbeat tries again in half a second."""
        try:
            self.write(publisher, finished)
            return True
        except OSError as exc:
            if str(exc) != self._failing:
                self._failing = str(exc)
                log.warning("cannot write the builder status %s: %s; /healthz reports this builder silent until it can", self.path, exc)
            return False

    def read(self) -> dict | None:
        """The status as last written, with `heard` seconds since; None if no builder ever wrote one."""
        try:
            with open(self.path, encoding="utf-8") as status:
                body = json.load(status)
        except (OSError, ValueError):
            return None
        body["heard"] = max(0.0, time.time() - body["heartbeat"])
        return body

    def beat(self, publisher, lock: "BuildLock | None" = None, state_file=None) -> threading.Thread:
        """Write the status every HEARTBEAT_SECONDS from a daemon thread; and check that this process still holds the
        build lock (BuildLock.kept): a builder whose lock file another process holds now ends its process at once; so
        does one whose state file was deleted or replaced (state_file: statefile.StateFile)."""
        def loop() -> None:
            while True:
                try:
                    if lock is not None and lock.fd is not None and not lock.kept():
                        log.error("another process holds the build lock %s now (its file was deleted): this process "
                                  "stops building and ends", lock.path)
                        os._exit(BUILDER_ENDED)  # nothing half-done is lost: every commit is a transaction, the other builds on
                    if state_file is not None and os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
                        if (happened := state_file.check()) is not None:
                            log.error("%s; this process stops building and ends, and a serving process builds on the file "
                                      "at that path, as at a start (stop feedsvc before moving or restoring it)", happened)
                            os._exit(BUILDER_ENDED)
                    written = self.written(publisher)
                except OSError as exc:  # the lock file could not be made again (kept): its folder gone, or full
                    written = False
                    log.debug("cannot check the build lock: %s", exc)
                if not written:
                    folder = os.path.dirname(os.path.abspath(self.path))
                    if not os.path.isdir(folder):  # its store, lock and status gone with it: nobody reads what it builds
                        log.error("the state folder %s is gone: this process stops building and ends; a serving process "
                                  "builds once it is there again", folder)
                        os._exit(BUILDER_ENDED)
                time.sleep(HEARTBEAT_SECONDS)
        thread = threading.Thread(target=loop, name="builder-status", daemon=True)
        thread.start()
        return thread


# The exit code of a builder that ends (its lock, state file or folder taken from it): not 3 nor 4, gunicorn's
# WORKER_BOOT_ERROR and APP_LOAD_ERROR, on which its master halts the whole server (a serving worker that had taken over
# building ended so, and every worker with it); on any other, gunicorn starts another worker in its place.
BUILDER_ENDED = 75  # EX_TEMPFAIL (sysexits.h)


REMIND_SECONDS = 300.0  # a problem building that lasts is said again this often, not at every try


class _Trouble:
    """A contender's problem building, logged when it starts or changes (and every REMIND_SECONDS while it lasts) and
    when it ends: at each try, every half refresh interval in every worker, it flooded the log."""

    def __init__(self) -> None:
        self.said: str | None = None
        self.at = 0.0

    def failed(self, exc: Exception, interval: float) -> None:
        what, now = f"{type(exc).__name__}: {exc}", time.monotonic()
        if what != self.said or now - self.at >= REMIND_SECONDS:
            log.warning("process %d cannot build (%s); the build lock is let go, tried again every %.1f s (said again "
                        "if this changes or lasts %d minutes more)", os.getpid(), what, interval, REMIND_SECONDS // 60)
            self.said, self.at = what, now

    def over(self, now: str) -> None:
        if self.said is not None:
            log.warning("process %d no longer fails to build: %s", os.getpid(), now)
            self.said = None


def contend(app) -> threading.Thread:
    """Try the build lock now and every half refresh interval from a daemon thread; build once it is ours."""
    lock = BuildLock(lock_path(app.extensions["feedsvc.state_path"]))
    interval = max(0.5, app.extensions["feedsvc.settings"].refresh_seconds / 2)
    trouble = _Trouble()

    def loop() -> None:
        while True:
            try:
                if not lock.try_acquire():
                    trouble.over("another process holds the build lock and builds")
                else:
                    if trouble.said is None:  # while it fails, every try holds the lock a moment: said as it fails
                        log.info("process %d holds the build lock: it builds from now on", os.getpid())
                    app.extensions["feedsvc.lock"] = lock
                    from .builder import run_builder  # only here: a serving process that never builds does not import it

                    run_builder(app)
                    trouble.over("it holds the build lock and builds from now on")
                    return
            except Exception as exc:  # noqa: BLE001 - a read-only or full folder, no descriptors left: let go and try
                # again, or this process would hold the lock without building (or stop contending) and none would build
                trouble.failed(exc, interval)
                app.extensions.pop("feedsvc.lock", None)
                lock.release()
            time.sleep(interval)

    thread = threading.Thread(target=loop, name="build-lock", daemon=True)
    thread.start()
    return thread
