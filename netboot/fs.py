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

Opening (:func:`open_with_stat`, what TFTP and ``/files`` serve from) asks the kernel instead of checking
first: Linux's ``openat2(2)`` with ``RESOLVE_BENEATH`` resolves the name under a descriptor of the root and
refuses any step out of it (``..``, an absolute symlink, a symlink leading out) in the same system call
that finds the file, so there is no gap between check and open for a swapped symlink to use. The file is
found with ``O_PATH`` (opening nothing, so a device or FIFO has no side effect), checked to be regular
with ``fstat``, and only then opened for reading through its descriptor. This replaced ``realpath`` on
every request, which ``lstat``s every component of the root and of the name (13 calls for a file two
levels under a four-level root, about a third of a small ``/files`` request: docs/performance.md). Python
has no binding for ``openat2``, so it is called through ``ctypes``; where the kernel lacks it (before
5.6) or a seccomp filter refuses it, the ``realpath`` check and a re-check of the opened descriptor are
used instead. One difference follows: ``RESOLVE_BENEATH`` refuses every absolute symlink, also one that
points inside the root, so links inside a served tree must be relative (``ln -s sub/x y``).
"""

from __future__ import annotations

import ctypes
import errno
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
    if _openat2_works:
        try:
            return _open_beneath(root, normalise(requested), requested)
        except _NoOpenat2:
            pass
    return _open_checked(root, requested)


#: openat2(2) (Linux 5.6): the system call number is the same on every architecture
_SYS_OPENAT2 = 437
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _NoOpenat2(Exception):
    """This kernel (or its seccomp filter) has no openat2: use the realpath check."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_openat2_works = True


def _openat2(dirfd: int, relative: str, flags: int) -> int:
    """A descriptor of ``relative`` under ``dirfd``, never outside it (``RESOLVE_BENEATH``)."""
    global _openat2_works
    how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), os.fsencode(relative),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return int(fd)
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM):
        _openat2_works = False
        raise _NoOpenat2
    raise OSError(err, os.strerror(err))


def _open_beneath(root: Path, relative: str, requested: str) -> tuple[io.FileIO, os.stat_result]:
    try:
        root_fd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PathRefused(f"root: {exc.strerror or 'cannot open'}", requested) from None
    try:
        try:
            found = _openat2(root_fd, relative, _O_PATH | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise PathNotFound("no such file", requested) from None
            if exc.errno == errno.EXDEV:
                raise PathRefused("outside the root", requested) from None
            raise PathRefused(exc.strerror or "cannot open", requested) from None
    finally:
        os.close(root_fd)
    try:
        info = os.fstat(found)
        _check_regular(info.st_mode, requested)
        # a regular file now, and this very inode: reopened for reading through its own descriptor
        fd = os.open(f"/proc/self/fd/{found}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise PathRefused(exc.strerror or "cannot open", requested) from None
    finally:
        os.close(found)
    return io.FileIO(fd, "rb", closefd=True), info


def _open_checked(root: Path, requested: str) -> tuple[io.FileIO, os.stat_result]:
    """Without openat2: the realpath check, then ``O_NOFOLLOW`` and a re-check of the descriptor."""
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
