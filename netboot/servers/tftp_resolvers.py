"""Where TFTP files come from: a resolver turns a requested name into a source the transport reads.

Files come from a chain (:class:`ChainResolver`): content rendered per request first (per-MAC boot configs,
never written to disk), then the TFTP root through :mod:`netboot.fs`, the one path sandbox. A resolver
says no by raising :class:`FileNotFound` (TFTP error 1) or :class:`AccessDenied` (error 2).

Files are read with ``pread``, not ``mmap``: a file truncated under a mapping kills the process with
SIGBUS, and this process also runs DHCP and HTTP; a short ``pread`` fails one transfer.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeAlias

from netboot.fs import PathNotFound, PathRefused, normalise, open_file
from netboot.protocol.tftp import Buffer, BytesSource, Source


class TftpPeer(NamedTuple):
    """Who asked, and at which of our addresses: a config rendered for a TFTP client names the server by
    the address the client reached (the socket listens on 0.0.0.0; IP_PKTINFO says which one it was)."""

    ip: str
    port: int
    #: our address the request was sent to; None when the kernel did not say
    local: str | None = None


#: What a resolver returns: ``size`` plus ``read(offset, length)`` and ``close()``.
TftpSource: TypeAlias = Source
#: ``resolver(filename, peer) -> TftpSource``; raises FileNotFound or AccessDenied.
TftpResolver: TypeAlias = Callable[[str, TftpPeer], TftpSource]
#: ``dynamic(normalised_name, peer) -> bytes`` rendered now, or None for "not mine".
DynamicContent: TypeAlias = Callable[[str, TftpPeer], bytes | None]

#: bytes a FileSource reads at once (per active transfer, so memory is this times the transfers)
READAHEAD = 32 << 10


class FileNotFound(Exception):
    """A resolver has no such file: TFTP error 1."""


class AccessDenied(Exception):
    """A resolver refuses the name (sandbox, permissions): TFTP error 2."""


class FileSource:
    """A regular file read with ``pread``; ``size`` is fixed when opened (that is what ``tsize`` said).

    Reads ahead :data:`READAHEAD` bytes at a time and serves windows as slices of that buffer: in
    lock-step at 1468 bytes that is one system call per 22 blocks instead of one per block.
    """

    __slots__ = ("_buffer", "_fd", "_file", "_start", "size")

    def __init__(self, file: io.FileIO) -> None:
        self._file = file
        self._fd = file.fileno()
        self.size = os.fstat(self._fd).st_size
        self._buffer = memoryview(b"")
        self._start = 0

    def read(self, offset: int, length: int) -> Buffer:
        skip = offset - self._start
        if skip >= 0 and skip + length <= len(self._buffer):
            return self._buffer[skip : skip + length]
        if length >= READAHEAD:
            return os.pread(self._fd, length, offset)
        self._buffer = memoryview(os.pread(self._fd, READAHEAD, offset))
        self._start = offset
        return self._buffer[:length]

    def fileno(self) -> int:
        """The descriptor, for the C fast path's own ``pread`` of whole windows."""
        return self._fd

    def close(self) -> None:
        self._buffer = memoryview(b"")
        self._file.close()


class RootResolver:
    """Files under ``root``, through :func:`netboot.fs.open_file`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __call__(self, filename: str, client: TftpPeer) -> TftpSource:
        return _open_under(self.root, filename)


def _open_under(root: Path, name: str) -> FileSource:
    """``name`` under ``root`` through the sandbox, its refusals as TFTP errors 1 and 2."""
    try:
        return FileSource(open_file(root, name))
    except PathNotFound as exc:
        raise FileNotFound(exc.reason) from None
    except PathRefused as exc:
        raise AccessDenied(exc.reason) from None


class ProfileFilesResolver:
    """``files/<profile>/<path>``: a profile's kernel and initrd from its ``data_dir``, as HTTP ``/files``
    serves them, for GRUB on the shim-grub chain (Debian 12's signed GRUB fetches only by TFTP); any other
    name goes to ``fallback``. ``data_dir_of(profile)`` is asked per request, so a profile reload counts.
    """

    def __init__(self, data_dir_of: Callable[[str], Path | None], fallback: TftpResolver) -> None:
        self.data_dir_of = data_dir_of
        self.fallback = fallback

    def __call__(self, filename: str, client: TftpPeer) -> TftpSource:
        try:
            name = normalise(filename)
        except PathRefused as exc:
            raise AccessDenied(exc.reason) from None
        top, _, rest = name.partition("/")
        if top != "files":
            return self.fallback(filename, client)
        profile, _, path = rest.partition("/")
        data_dir = self.data_dir_of(profile) if profile and path else None
        if data_dir is None:
            raise FileNotFound(f"no profile {profile!r} with a data_dir")
        return _open_under(data_dir, path)


class ChainResolver:
    """Dynamic content first (per-MAC configs rendered on request, never written to disk), then the root.

    ``dynamic`` sees the normalised name (``pxelinux.cfg/01-52-54-00-e2-e0-01``, no leading or back
    slashes), so it matches whatever spelling the ROM used; names the sandbox refuses never reach it.
    """

    def __init__(self, dynamic: DynamicContent, root_resolver: TftpResolver) -> None:
        self.dynamic = dynamic
        self.root_resolver = root_resolver

    def __call__(self, filename: str, client: TftpPeer) -> TftpSource:
        try:
            name = normalise(filename)
        except PathRefused as exc:
            raise AccessDenied(exc.reason) from None
        content = self.dynamic(name, client)
        if content is not None:
            return BytesSource(content)
        return self.root_resolver(filename, client)
