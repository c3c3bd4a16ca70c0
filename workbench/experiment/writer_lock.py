"""One writer per run folder: an advisory lock that a command holds while it writes the folder.

Two processes writing one run folder (a double-started job, a notebook and a terminal, a
scheduler's retry) would both decode every problem and append both rows. So every command that
writes a run folder holds the folder's lock file (``<run>/.writer.lock``, `RunDir.writer_lock_path`)
with ``fcntl.flock(LOCK_EX | LOCK_NB)`` from before it loads the model until it returns: a second
writer is refused at once with a `WorkbenchError` naming the folder and the holder (pid, host,
command, start time, which the holder writes into the file), which the CLI prints as one line
with exit code 2.

The lock belongs to the open file, not to the file's existence, so the kernel releases it when its
process ends in any way (exit, exception, SIGKILL, a crash); the file itself is removed on a clean
release. A file left with a holder written in it therefore means a process that was killed: the
next writer takes the lock over with a warning naming the dead holder, and resumes.

Where it is taken: the `als` commands that write a run folder (generate, run, probe, compare,
sweep, stage, upgrade: `workbench.cli.main`) and `workbench.stages.run_stage`, each for the whole
command, so that nothing is decoded before the refusal. Python code that writes a folder through
the library's functions directly (``run_als``, ``run_sweep``, ...) takes it itself::

    with RunDir("runs/als").writer():
        run_als(bridge, "runs/als", cfg)

It is re-entrant within a process (a stage inside a locked command, nested ``with`` blocks), and
the jobs that ``--launch`` submits write under the lock of the command that launched them (they do
not take it: they are its delegates). It is held per command, not for the life of the process: a
notebook that ran a stage does not keep the folder from a terminal afterwards.

Limits: advisory (a process that does not take it is not stopped); on network file systems it is
as good as their ``flock`` (NFSv4 maps it to a byte-range lock that works across hosts; where the
file system refuses locks, a warning says that writers are not checked and the command runs). Not
on Windows (no ``fcntl``): there the command runs unchecked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "holder", "writer_lock"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".writer.lock"
"""The lock file's name inside a run folder."""

_held: dict[str, list] = {}
"""The locks this process holds: lock file (real path) -> [fd (None: unchecked), depth, owner
pid, the outermost folder the lock created or None]. The last block to leave releases; a forked
child neither re-enters nor releases its parent's."""
_guard = threading.Lock()


def holder(path: str | Path) -> dict | None:
    """Who wrote himself into the lock file `path` (pid, host, command, since), or None when it
    is absent, empty or unreadable. Says nothing about whether the lock is held now."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
        info = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "pid" in info else None


@contextlib.contextmanager
def writer_lock(path: str | Path, *, command: str | None = None) -> Iterator[Path]:
    """Hold the lock file `path` (``<folder>/.writer.lock``) exclusively for the ``with`` block;
    raise `WorkbenchError` at once when another process holds it. The folder is created if
    missing (and removed again on release if nothing was written into it). `command` is recorded
    for the message another writer gets (default: this process's command line)."""
    path = Path(path)
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise WorkbenchError(f"{folder} exists and is not a folder; choose another --out")
    created = _first_missing(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    with _guard:
        mine = _held.get(key)
        if mine is not None and mine[2] == os.getpid():
            mine[1] += 1  # re-entered (a stage inside a locked command): already held
    if mine is None or mine[2] != os.getpid():  # not held here (or only by a forked parent)
        try:
            fd = _acquire(path, folder, command)
        except BaseException:
            _remove_empty(folder, created)
            raise
        with _guard:
            mine = _held[key] = [fd, 1, os.getpid(), created]
    try:
        yield path
    finally:
        with _guard:
            mine[1] -= 1
            last = mine[1] == 0 and mine[2] == os.getpid()
            if last:
                _held.pop(key, None)
        if last:
            _release(path, mine[0])
            _remove_empty(folder, mine[3])


def _info(command: str | None) -> dict:
    if command is None:
        argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
        command = " ".join(argv)
    command = " ".join(command.split())  # one line
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command if len(command) <= 160 else command[:157] + "...",
    }


def _acquire(path: Path, folder: Path, command: str | None) -> int | None:
    """The locked file's descriptor (None where locks are unavailable); raise when it is held."""
    if fcntl is None:  # pragma: no cover - not POSIX
        logger.warning("%s: no fcntl here: a second writer on this folder is not refused", folder)
        return None
    for _ in range(50):
        folder.mkdir(parents=True, exist_ok=True)  # a releasing holder may have removed it
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WorkbenchError(_busy(path, folder)) from None
        except OSError as exc:  # a file system without locks (ENOLCK, EOPNOTSUPP, ...)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise WorkbenchError(_busy(path, folder)) from None
            logger.warning(
                "%s: the file system refuses locks (%s), so a second writer on this folder "
                "is not refused",
                folder,
                exc.strerror or exc,
            )
            return None
        # A holder removes the file on release: if it did so between our open and our lock, we
        # locked a file nobody else will see; lock the one at `path` instead.
        try:
            st = os.stat(path)
            current = (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
        except FileNotFoundError:
            current = False
        if not current:
            os.close(fd)
            continue
        previous = holder(path)
        if previous is not None:
            logger.warning(
                "%s: taking over the writer lock of pid %s on %s (%s, since %s), which no "
                "longer holds it (killed or crashed); resuming",
                folder,
                previous.get("pid"),
                previous.get("host", "?"),
                previous.get("command", "?"),
                previous.get("since", "?"),
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(_info(command)) + "\n").encode("utf-8"), 0)
        return fd
    raise WorkbenchError(f"could not lock {path}: it keeps being replaced; try again")


def _busy(path: Path, folder: Path) -> str:
    """The one-line refusal: the folder and who holds it."""
    info = None
    for _ in range(10):  # the holder writes itself in right after locking
        info = holder(path)
        if info is not None:
            break
        time.sleep(0.05)
    if info is None:
        who = "another process (pid not recorded yet)"
    else:
        pid, host = info.get("pid"), info.get("host", "?")
        who = f"pid {pid} on {host} (`{info.get('command', '?')}`, since {info.get('since', '?')})"
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            who += f"; pid {pid} has ended, but a process it started still holds {path}"
    return (
        f"{folder} is being written by {who}; one writer per run folder: wait for it to "
        "finish, or stop it and rerun to resume, or use another folder"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _release(path: Path, fd: int | None) -> None:
    """Remove the lock file (if it is still ours), unlock, close."""
    if fd is None:
        return
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            path.unlink()
    except FileNotFoundError:
        pass
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist (None: it exists)."""
    missing = None
    for f in (folder, *folder.parents):
        if f.exists():
            return missing
        missing = f
    return missing


def _remove_empty(folder: Path, created: Path | None) -> None:
    """Remove the folders the lock created, from `folder` up to `created`, where nothing else was
    written into them (a command refused before it wrote anything leaves no trace)."""
    if created is None:
        return
    for f in (folder, *folder.parents):
        try:
            f.rmdir()  # only when empty
        except OSError:
            return
        if f == created:
            return
