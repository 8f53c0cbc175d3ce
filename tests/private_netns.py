"""An anonymous network namespace for threads of the test process itself.

The DHCP transport must never bind in this machine's own namespace, yet its fast tests (the ones mutation
testing runs) must call it in the test process, so that coverage and mutants are seen. Linux keeps the
network namespace per thread: :class:`PrivateNetns` makes one with ``unshare(CLONE_NEWNET)`` in a helper
thread, keeps it alive by a descriptor, and lets any other thread ``enter`` it with ``setns``. A socket
belongs to the namespace of the thread that created it, for life, so the server and its clients are
created inside and may then be served from any thread that entered. The namespace holds only ``lo`` (and
what a test adds), has no route anywhere else, and is gone when the descriptor is closed and its sockets
are. ``enter`` refuses to return unless the thread really is in it and not in the namespace of the process's
main thread (``/proc/self/ns/net``, the one the tests were started in, which nothing here changes).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


class PrivateNetnsError(RuntimeError):
    pass


def _inode(path: str) -> int:
    return os.stat(path).st_ino


class PrivateNetns:
    def __init__(self) -> None:
        self._fd = -1
        made = threading.Thread(target=self._make, name="netns-maker")
        self._error: BaseException | None = None
        made.start()
        made.join()
        if self._error is not None:
            raise PrivateNetnsError(f"could not make a private network namespace: {self._error}")
        self.inode = os.fstat(self._fd).st_ino
        if self.inode == _inode("/proc/self/ns/net"):
            raise PrivateNetnsError("the new namespace is the machine's own: refusing")

    def _make(self) -> None:
        try:
            if _libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            self._fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            self._check_here()
            # ip(8) is forked from this thread, so it runs in (and configures) the new namespace
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
        except BaseException as exc:  # reported by __init__ in the calling thread
            self._error = exc

    def _check_here(self) -> None:
        here = _inode("/proc/thread-self/ns/net")
        if here == _inode("/proc/self/ns/net") or here != os.fstat(self._fd).st_ino:
            raise PrivateNetnsError("this thread is not in the private namespace: refusing to go on")

    def enter(self) -> None:
        """Move the calling thread into the namespace (for good: use it in threads made for it)."""
        if _libc.setns(self._fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self._check_here()

    def ip(self, *args: str) -> None:
        """Run ``ip ARGS`` inside, e.g. ``ns.ip("link", "add", "nb1", "type", "dummy")``."""
        self.call(lambda: subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True))

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a fresh thread inside the namespace, its result or exception handed back."""
        box: list[T] = []
        errors: list[BaseException] = []

        def inside() -> None:
            try:
                self.enter()
                box.append(fn())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=inside, name="netns-call")
        thread.start()
        thread.join(60)
        if thread.is_alive():
            raise TimeoutError("a call inside the private namespace did not return within 60 s")
        if errors:
            raise errors[0]
        return box[0]

    def thread(self, target: Callable[[], object], name: str) -> threading.Thread:
        """A started daemon thread running ``target`` inside the namespace."""

        def inside() -> None:
            self.enter()
            target()

        started = threading.Thread(target=inside, name=name, daemon=True)
        started.start()
        return started

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@contextmanager
def private_netns() -> Iterator[PrivateNetns]:
    ns = PrivateNetns()
    try:
        yield ns
    finally:
        ns.close()
