"""Files written without destroying what is at the path, and read only when they are files.

``replacing(path)`` is how ``gradflow.save`` writes: the new content goes to a temporary file
beside the real target (symlinks resolved, so a symlink keeps pointing at the new file), is
flushed to disk and renamed over the target, so a crash leaves the previous file whole.

* Directories, devices, FIFOs and sockets at the path (or behind a symlink) are refused
  before anything is created: nothing but a regular file is ever replaced.
* A file you can't write (``chmod a-w``) is refused as ``open()`` would refuse it, although
  the rename could replace it.
* The new file keeps the old one's permission bits, and its owner and group where this
  process may set them (root, or a group it belongs to).
* A hard-linked file is replaced, not rewritten: the other links keep the previous content.
  Rewriting in place (what ``torch.save`` does) would keep the links but lose atomicity, and
  would overwrite files that share the inode on purpose: hard-link snapshots (``cp -al``,
  rsnapshot) and caches (DVC's hardlink mode, package caches), which count on tools
  replacing files, never writing into them.
* Temporary files are named ``.<name>.<token>-<pid>.<random>.tmp``, where the token names
  this machine, boot and PID namespace. A save that was killed (SIGKILL, power loss) leaves
  its temporary behind; after each save, leftovers for the same target are removed when
  their token is ours and their process is gone, or, where the pid can't be judged here
  (another machine or container, Windows, the older ``.<name>.<random>.tmp`` names), when
  nobody has written to them for STALE_AFTER_S seconds. A temporary that a live process may
  still be writing is never touched.

Errors name the path the caller gave, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

# A temporary file whose process can't be checked from here is stale once nobody has written
# to it for this long: a live save rewrites it continuously, and an fsync never takes a day.
STALE_AFTER_S = 24 * 3600
_MAX_EMBEDDED_NAME = 180  # bytes of the target's name kept in a temporary's name (255 max)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation

# Builds the exception for something that is not a regular file, from a message (writing)
# or from kind_of()'s words (reading).
Refuse = Callable[[str], BaseException]


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, for messages: 'a directory', 'a FIFO (named pipe)'."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


# ---- reading -------------------------------------------------------------------------------
def open_regular(path: str, refuse: Refuse) -> BinaryIO:
    """Open `path` for reading if it is a regular file (symlinks followed), else raise
    refuse(kind_of(its mode)). Checked before opening, so a FIFO is never opened (that
    would block) nor a device (reading /dev/zero never ends), and again on the open file,
    against a swap. OSErrors (FileNotFoundError, PermissionError) propagate."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise refuse(kind_of(mode))
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO swapped in must not block
    fd = os.open(path, os.O_RDONLY | _BINARY | nonblocking | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(kind_of(mode))
        if nonblocking:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


# ---- writing -------------------------------------------------------------------------------
@contextlib.contextmanager
def replacing(path: str, refuse: Refuse) -> Iterator[BinaryIO]:
    """Yield a file for the new content of `path`; when the block ends without an exception,
    the content replaces the file at `path` atomically (see the module's docstring). An
    exception removes the temporary file and leaves the path as it was.

    Raises, naming `path`: FileNotFoundError (no such directory), NotADirectoryError,
    IsADirectoryError (the path is a directory, or a symlink to one), refuse(message) for a
    device, FIFO or socket, PermissionError (a read-only file, a directory we can't write),
    and the OSError of a failed write (ENOSPC) with `path` as its filename.
    """
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    _check_directory(path, real, directory)
    existing = _existing_file(path, real, refuse)
    if existing is not None and not os.access(real, os.W_OK):
        raise PermissionError(
            errno.EACCES,
            f"can't save to {_where(path, real)}: the file is read-only (not writable by this "
            "user); gradflow.save does not replace a file that open() could not write",
        )
    temporary, fd = _create_temporary(path, directory, os.path.basename(real), existing)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
    except BaseException as exc:
        _discard(temporary)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise _naming(exc, path) from None
        raise
    try:
        _existing_file(path, real, refuse)  # swapped for a directory or a FIFO meanwhile?
    except BaseException:
        _discard(temporary)
        raise
    try:
        os.replace(temporary, real)
    except BaseException as exc:
        _discard(temporary)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise _naming(exc, path) from None
        raise
    remove_stale_temporaries(directory, os.path.basename(real))
    _fsync_directory(directory)


def _discard(temporary: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temporary)


def _where(path: str, real: str) -> str:
    """The caller's path, and where it leads when that is elsewhere (a symlink)."""
    if os.path.abspath(path) == real:
        return path
    return f"{path} (which leads to {real})"


def _naming(exc: OSError, path: str) -> OSError:
    """The same error (same OSError subclass and errno), naming the caller's path instead of
    the temporary file (or no file)."""
    return OSError(exc.errno, exc.strerror or str(exc), path)


def _check_directory(path: str, real: str, directory: str) -> None:
    if os.path.isdir(directory):
        return
    shown = os.path.dirname(os.path.abspath(path))
    if directory != shown:
        shown = f"{directory} (where {path} leads)"
    if os.path.exists(directory):
        raise NotADirectoryError(errno.ENOTDIR, f"can't save to {path}: {shown} is not a directory")
    raise FileNotFoundError(f"can't save to {path}: directory {shown} does not exist")


def _existing_file(path: str, real: str, refuse: Refuse) -> os.stat_result | None:
    """The stat of the regular file at `real`, None if there is none; refuses the rest."""
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink loop, a component we may not search
        raise _naming(exc, path) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(
            errno.EISDIR,
            f"can't save to {_where(path, real)}: it is a directory; give a file path "
            "(such as DIRECTORY/NAME)",
        )
    if not stat.S_ISREG(info.st_mode):
        raise refuse(
            f"can't save to {_where(path, real)}: it is {kind_of(info.st_mode)}, not a "
            "regular file; gradflow.save only writes (and replaces) regular files (pass an "
            "open file object to write anywhere else)"
        )
    return info


@functools.cache
def _token() -> str:
    """Eight hex digits for this machine, boot and PID namespace: where a temporary file's
    name has our token, its pid is one of our processes, alive or gone."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as file:
        parts.append(file.read().strip())
    with contextlib.suppress(OSError):
        namespace = os.stat("/proc/self/ns/pid")
        parts.append(f"{namespace.st_dev}:{namespace.st_ino}")
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _embedded(name: str) -> str:
    """The target's name as temporary files embed it (hashed when it is too long to fit)."""
    if len(os.fsencode(name)) <= _MAX_EMBEDDED_NAME:
        return name
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:32]


def _temporary_pattern(name: str) -> re.Pattern:
    """Our temporary files for target `name`: (token, pid), or the older names (no pid)."""
    stem = re.escape(_embedded(name))
    return re.compile(rf"\.{stem}\.(?:([0-9a-f]{{8}})-([0-9]{{1,10}})\.)?[0-9a-f]{{12}}\.tmp")


def _create_temporary(
    path: str, directory: str, name: str, existing: os.stat_result | None
) -> tuple[str, int]:
    """A new file beside the target. A new checkpoint gets the umask's permissions (as
    open() gives); a replacement starts owner-only and then gets the old file's owner, group
    and mode, so the new content is never more exposed than the old was."""
    prefix = f".{_embedded(name)}.{_token()}-{os.getpid()}."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY
    while True:
        temporary = os.path.join(directory, f"{prefix}{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(temporary, flags, 0o666 if existing is None else 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"{exc.strerror} (gradflow.save writes a temporary file in {directory} and "
                "renames it over the checkpoint, so that directory must be writable)",
                path,
            ) from None
    if existing is not None:
        try:
            _copy_owner_and_mode(fd, temporary, existing)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    return temporary, fd


def _copy_owner_and_mode(fd: int, temporary: str, existing: os.stat_result) -> None:
    if hasattr(os, "fchown"):
        now = os.fstat(fd)
        if (now.st_uid, now.st_gid) != (existing.st_uid, existing.st_gid):
            try:
                os.fchown(fd, existing.st_uid, existing.st_gid)
            except PermissionError:  # not root: the group alone, if we belong to it
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, -1, existing.st_gid)
    mode = stat.S_IMODE(existing.st_mode)  # after chown, which may clear set-id bits
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:
        os.chmod(temporary, mode)


def remove_stale_temporaries(directory: str, name: str) -> list[str]:
    """Remove temporary files that killed saves of `directory/name` left, and return their
    names. Only our own naming pattern for this target, only regular files, and only where
    no live process can be writing them (see the module's docstring); errors are ignored (a
    save that succeeded does not fail over a leftover)."""
    pattern = _temporary_pattern(name)
    removed = []
    try:
        candidates = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.fullmatch(candidate)
        if not match:
            continue
        full = os.path.join(directory, candidate)
        try:
            info = os.lstat(full)
            if stat.S_ISREG(info.st_mode) and _stale(match, info):
                os.unlink(full)
                removed.append(candidate)
        except OSError:
            continue
    return removed


def _stale(match: re.Match, info: os.stat_result) -> bool:
    token, pid = match.group(1), match.group(2)
    if token == _token() and os.name == "posix":  # on Windows, os.kill(pid, 0) is Ctrl-C
        return not _alive(int(pid))
    return time.time() - info.st_mtime > STALE_AFTER_S


def _alive(pid: int) -> bool:
    """Whether process `pid` exists here (a zombie or another user's process counts)."""
    if pid <= 0:
        return True  # not a pid a save wrote: leave the file alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    return True


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); skipped where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
