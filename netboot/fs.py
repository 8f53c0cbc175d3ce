"""The one path sandbox: turn a name a client sent into a regular file inside a served root, or refuse.

TFTP and HTTP both serve files by client-chosen names, and every PXE server that got this wrong got it
wrong the same ways: ``..`` (also as ``..\\``), absolute paths, a root that is a string prefix of a
sibling (``/srv/tftp`` vs ``/srv/tftp2``), symlinks pointing out, and reads of directories, FIFOs or
devices that hang or leak. So the rules live here once:

* names are normalised the way PXE ROMs send them: backslashes are separators, leading and repeated
  separators and ``.`` components vanish (``\\boot\\\\x`` is ``boot/x`` under the root);
* NUL and any ``..`` component are refused outright, even when they would stay inside the root;
* the result is resolved with ``realpath`` and must stay under the root's own ``realpath`` by
  ``commonpath`` (symlinks inside the root that stay inside are fine);
* only regular files are served.

Names are never percent-decoded here: that is HTTP's job, done once before calling in, so ``%2e%2e`` is a
literal (and absent) file name, not a second chance at ``..``.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

#: Longer names are refused before touching the file system (PATH_MAX on Linux).
MAX_NAME_BYTES = 4096


class PathRefused(Exception):
    """The requested name may not be served; ``reason`` says why (for logs, not for the client)."""

    def __init__(self, reason: str, requested: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.requested = requested


class PathNotFound(PathRefused):
    """The name is acceptable but no such file exists under the root (TFTP error 1, HTTP 404)."""


def normalise(requested: str) -> str:
    """Client name -> relative POSIX path (``a/b``). Refuses NUL, ``..``, empty and over-long names."""
    if "\0" in requested:
        raise PathRefused("NUL in name", requested)
    if len(requested.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise PathRefused("name too long", requested[:64])
    parts = [part for part in requested.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused("parent directory reference", requested)
    if not parts:
        raise PathRefused("empty name", requested)
    return "/".join(parts)


def resolve(root: Path, requested: str) -> Path:
    """The real path of a regular file under ``root`` named by ``requested``, or :class:`PathRefused`."""
    relative = normalise(requested)
    real_root = os.path.realpath(root)
    try:
        real = os.path.realpath(os.path.join(real_root, relative))
    except OSError as exc:
        # realpath lstat()s a component, then readlink()s it: a name swapped between the two (a link
        # replaced by a file: EINVAL; removed: ENOENT) is a refusal, not a crash
        raise PathRefused(exc.strerror or "cannot resolve", requested) from None
    _check_inside(real_root, real, requested)
    try:
        info = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        raise PathNotFound("no such file", requested) from None
    except OSError as exc:  # ELOOP, ENAMETOOLONG, EACCES on a parent
        raise PathRefused(exc.strerror or "cannot stat", requested) from None
    _check_regular(info.st_mode, requested)
    return Path(real)


def open_file(root: Path, requested: str) -> io.FileIO:
    """Open the file :func:`resolve` names, closing the races between checking and opening.

    ``O_NOFOLLOW`` refuses a final symlink swapped in after the check, ``O_NONBLOCK`` keeps a FIFO swapped in
    from blocking the caller, and the opened descriptor itself is checked again: regular, and (through
    ``/proc/self/fd``) still under the root if a parent directory was replaced by a symlink meanwhile.
    Serve what this returns; never open the name a second time (that reopens the race).
    """
    return open_with_stat(root, requested)[0]


def open_with_stat(root: Path, requested: str) -> tuple[io.FileIO, os.stat_result]:
    """:func:`open_file`, with the ``fstat`` of the descriptor it checked (size, mtime for HTTP headers)."""
    path = resolve(root, requested)
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise PathNotFound("no such file", requested) from None
    except OSError as exc:
        raise PathRefused(exc.strerror or "cannot open", requested) from None
    try:
        info = os.fstat(fd)
        _check_regular(info.st_mode, requested)
        _check_inside(os.path.realpath(root), _fd_path(fd, path), requested)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return io.FileIO(fd, "rb", closefd=True), info


def _check_inside(real_root: str, real: str, requested: str) -> None:
    # commonpath, not startswith: /srv/tftp2/x starts with /srv/tftp but is not inside it.
    if os.path.commonpath([real_root, real]) != real_root:
        raise PathRefused("outside the root", requested)


def _check_regular(mode: int, requested: str) -> None:
    if stat.S_ISDIR(mode):
        raise PathRefused("is a directory", requested)
    if not stat.S_ISREG(mode):
        raise PathRefused("not a regular file", requested)


def _fd_path(fd: int, fallback: Path) -> str:
    """Where an open descriptor really points (Linux); the checked path where /proc is unavailable."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return str(fallback)
