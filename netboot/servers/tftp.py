"""The TFTP transport: the only TFTP code that touches sockets, files and the clock.

One thread, one epoll loop, non-blocking sockets. The well-known port only receives requests; every
transfer gets its own UDP socket on a fresh port (its RFC 1350 TID), so a boot storm of hundreds of
clients is hundreds of registered sockets and a heap of retransmission deadlines, not hundreds of
threads. The protocol rules live in :class:`netboot.protocol.tftp.ReadTransfer`; this module only moves
bytes and tells it the time. Several such loops can serve one port, one per CPU
(:mod:`netboot.servers.tftp_loops`); what they share is a :class:`TransferTable`.

Per window the work is at most one ``pread`` (32 KiB read-ahead) and two sends: the state machine lays
the window's DATA datagrams out back to back, the first goes alone and UDP GSO (``UDP_SEGMENT``) lets
the kernel cut the rest apart; lock-step is one ``sendto`` per block. Files are read with ``pread``,
not ``mmap``: a file truncated under a mapping kills the process with SIGBUS, and this process also
runs DHCP and HTTP; a short ``pread`` fails one transfer.

A download's happy path (the ACK of the last block sent in, the next window or lock-step block out)
runs in C when the optional extension ``_tftp_fast`` is built: its ``FastSet`` is then what the loop
waits in, and the interpreter wakes only for requests, the datagrams the C loop hands back and
retransmission deadlines (see ``_tftp_fast.c`` for why and for its narrow contract). After answering
an ACK it polls for :data:`SPIN` seconds before sleeping while the port serves a single transfer
(:data:`SPIN_LIMIT`), because a client on the same host answers sooner than a sleeping thread can be
woken on a VM. The state machine still decides everything else, and the server runs the same
protocol without it.

Read-only by construction: a WRQ is answered with ERROR 2. Files come from a resolver (see
:class:`ChainResolver`): content rendered per request first, then the TFTP root through
:mod:`netboot.fs`, the one path sandbox.

Every datagram and every transfer is handled inside ``try``: a hostile or broken packet costs a
(rate-limited) warning, never the loop.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import io
import itertools
import logging
import os
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from netboot.events import Event, EventRecorder
from netboot.fs import PathNotFound, PathRefused, normalise, open_file
from netboot.logutil import RateLimited
from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp import (
    MAX_BLKSIZE,
    Address,
    Buffer,
    BytesSource,
    Error,
    ErrorCode,
    Limits,
    Outcome,
    ReadRequest,
    ReadTransfer,
    Send,
    Source,
    WriteRequest,
    datagrams,
    decode,
    error_datagram,
    to_netascii,
)

log = logging.getLogger("netboot.tftp")

try:
    from netboot.servers import _tftp_fast
except ImportError:  # built without a C compiler: the state machine answers every ACK
    _tftp_fast = None  # type: ignore[assignment]

#: What a resolver returns: ``size`` plus ``read(offset, length)`` and ``close()``.
TftpSource: TypeAlias = Source
#: ``resolver(filename, (client_ip, client_port)) -> TftpSource``; raises FileNotFound or AccessDenied.
TftpResolver: TypeAlias = Callable[[str, tuple[str, int]], TftpSource]
#: ``dynamic(normalised_name, (client_ip, client_port)) -> bytes`` rendered now, or None for "not mine".
DynamicContent: TypeAlias = Callable[[str, tuple[str, int]], bytes | None]

IP_PKTINFO = 8  # <linux/in.h>; Python's socket module does not export it
_PKTINFO = struct.Struct("=i4s4s")
SOL_UDP, UDP_SEGMENT = 17, 103  # <linux/udp.h>: UDP GSO, Linux 4.18+
_GSO_SIZE = struct.Struct("=H")
#: segments per GSO send (the kernel's UDP_MAX_SEGMENTS) and bytes per send (one IP packet's worth)
GSO_MAX_SEGMENTS, GSO_MAX_BYTES = 64, 65000
#: errors that mean "no GSO on this path" (old kernel, device without checksum offload, segment > MTU)
_GSO_REFUSED = {errno.EINVAL, errno.EIO, errno.EOPNOTSUPP, errno.ENOPROTOOPT, errno.EMSGSIZE}
#: requests read from the well-known port per wake-up (bounded, so a request flood cannot starve transfers)
BATCH = 64
#: largest request accepted on the well-known port (a UDP datagram cannot be larger)
MAX_REQUEST = 65535
#: what a transfer socket reads: ACK and ERROR packets; anything longer is junk anyway
MAX_REPLY = 1024
#: eager reads after a wake-up (bounded so one fast client cannot starve the rest), and the wake-ups
#: to skip eager reads after one found nothing
EAGER_ROUNDS, EAGER_BACKOFF = 8, 16
#: seconds the C loop polls without sleeping after answering an ACK, waiting for the next one: a client
#: on this host (the QEMU lab, VMs on the hypervisor) or a fast LAN answers within that, and catching
#: it awake halves a single download's time on a VM; a spin that finds nothing pauses spinning for
#: EAGER_BACKOFF waits, doubled per miss in a row, so a client across a slower network costs about a
#: dozen lost spins per download
SPIN = 50e-6
#: the most transfers the server (all its loops together) may hold while a loop spins: the spin is for
#: one client that answers at once; with more, a spinning CPU looks busy to the scheduler, which then
#: queues the clients it wakes elsewhere (2, 4 and 20 clients ran faster and cheaper without the spin,
#: docs/performance.md)
SPIN_LIMIT = 1
#: bytes a FileSource reads at once (per active transfer, so memory is this times the transfers)
READAHEAD = 32 << 10
#: largest window (windowsize x blksize) the C fast path reads at once: its one buffer per server
FAST_WINDOW_BYTES = 4 << 20


class FileNotFound(Exception):
    """A resolver has no such file: TFTP error 1."""


class AccessDenied(Exception):
    """A resolver refuses the name (sandbox, permissions): TFTP error 2."""


# ------------------------------------------------------------------------------------------ resolvers


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

    def __call__(self, filename: str, client: tuple[str, int]) -> TftpSource:
        try:
            return FileSource(open_file(self.root, filename))
        except PathNotFound as exc:
            raise FileNotFound(exc.reason) from None
        except PathRefused as exc:
            raise AccessDenied(exc.reason) from None


class ChainResolver:
    """Dynamic content first (per-MAC configs rendered on request, never written to disk), then the root.

    ``dynamic`` sees the normalised name (``pxelinux.cfg/01-52-54-00-e2-e0-01``, no leading or back
    slashes), so it matches whatever spelling the ROM used; names the sandbox refuses never reach it.
    """

    def __init__(self, dynamic: DynamicContent, root_resolver: TftpResolver) -> None:
        self.dynamic = dynamic
        self.root_resolver = root_resolver

    def __call__(self, filename: str, client: tuple[str, int]) -> TftpSource:
        try:
            name = normalise(filename)
        except PathRefused as exc:
            raise AccessDenied(exc.reason) from None
        content = self.dynamic(name, client)
        if content is not None:
            return BytesSource(content)
        return self.root_resolver(filename, client)


# ------------------------------------------------------------------------------------------ transport


@dataclass(eq=False, slots=True)
class _Active:
    """Transport-side bookkeeping of one transfer."""

    transfer: ReadTransfer
    sock: socket.socket
    source: Source
    started: float  # monotonic, for the duration
    wall: float  # epoch, for the event
    scheduled: float | None = None  # deadline of this transfer's live heap entry
    closed: bool = False
    gso: bool = True  # until the kernel refuses UDP GSO on this transfer's path
    eager_pause: int = 0  # wake-ups left before trying eager reads again
    fast: bool = False  # a transfer of the C set (TftpServer._fast): it answers the happy path itself


_LISTEN, _WAKE = object(), object()
#: what the loop's wait hands back: readable watched descriptors, and datagrams the C set did not answer
_Woken: TypeAlias = tuple[list[int], list[tuple[int, bytes, tuple[str, int]]]]


class _Poller(Protocol):
    """What the loop waits with: ``_tftp_fast.FastSet`` when built, else :class:`_EpollPoller`."""

    def watch(self, fd: int) -> None: ...
    def remove(self, fd: int) -> None: ...
    def wait(self, timeout: float) -> _Woken: ...
    def close(self) -> None: ...


class _EpollPoller:
    """The pure-Python loop's wait: every transfer socket is watched, every datagram goes to Python."""

    def __init__(self) -> None:
        self._epoll = select.epoll()

    def watch(self, fd: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def wait(self, timeout: float) -> _Woken:
        return [fd for fd, _ in self._epoll.poll(timeout)], []

    def close(self) -> None:
        self._epoll.close()


class TransferTable:
    """What the loops serving one port share: the transfer budget, and which loop owns each client.

    One loop has one table of its own. Several loops on one port (:mod:`netboot.servers.tftp_loops`)
    share one, so ``max_transfers`` caps them together, and a request from a client address that has a
    live transfer is handed to the loop that owns it, whichever loop the kernel gave it to. That loop can
    then tell a retransmitted request from a new one exactly as a single loop does (see
    ``TftpServer._is_retransmitted_request``). Only requests touch the table, never a transfer's packets.
    """

    def __init__(self, max_transfers: int) -> None:
        self.max_transfers = max_transfers
        #: the C sets' shared count of their transfers: each loop spins only while the whole port serves
        #: at most SPIN_LIMIT transfers, whichever loops hold them
        self.fast_count = _tftp_fast.TransferCount() if _tftp_fast is not None else None
        self._lock = threading.Lock()
        self._count = 0
        self._owner: dict[Address, TftpServer] = {}

    def owner(self, addr: Address) -> TftpServer | None:
        """The loop with a live transfer to ``addr``, if any."""
        with self._lock:
            return self._owner.get(addr)

    def reserve(self, server: TftpServer, addr: Address) -> bool:
        """Count one more transfer for ``server`` and make it ``addr``'s owner; False when full."""
        with self._lock:
            if self._count >= self.max_transfers:
                return False
            self._count += 1
            self._owner[addr] = server
            return True

    def release(self, server: TftpServer, addr: Address, *, owner: bool) -> None:
        """Count one transfer less; with ``owner``, ``addr`` has no live transfer in ``server`` left."""
        with self._lock:
            self._count -= 1
            if owner and self._owner.get(addr) is server:
                del self._owner[addr]


class TftpServer:
    """A read-only TFTP server for many concurrent transfers on one thread (Linux: epoll, GSO, PKTINFO).

    ``serve_forever()`` blocks (the daemon runs it in a thread); ``shutdown()`` may be called from any
    thread and returns once the loop has stopped and open transfers were told so. ``close()`` releases the
    sockets. Bind port 0 and read :attr:`server_address` in tests. ``fast_path=False`` runs every
    datagram through Python even when the C extension is built; ``spin=0`` makes the C loop sleep as
    soon as it has nothing to do (see :data:`SPIN`).

    Several servers can share one port (``reuse_port=True``, one :class:`TransferTable` passed to all as
    ``table``, which then replaces ``max_transfers``); :class:`netboot.servers.tftp_loops.TftpLoops`
    builds them. ``name`` starts this loop's log lines.
    """

    def __init__(
        self,
        bind: tuple[str, int],
        resolver: TftpResolver,
        recorder: EventRecorder,
        *,
        max_blksize: int | None = None,
        max_windowsize: int = 64,
        timeout: float = 1.0,
        max_timeout: float = 8.0,
        retries: int = 5,
        max_transfers: int = 1024,
        netascii_limit: int = 16 << 20,
        receive_buffer: int = 1 << 20,
        fast_path: bool = True,
        spin: float = SPIN,
        reuse_port: bool = False,
        table: TransferTable | None = None,
        name: str = "TFTP",
    ) -> None:
        self._resolver = resolver
        self._recorder = recorder
        self._limits = Limits(
            max_blksize=max_blksize or MAX_BLKSIZE,
            max_windowsize=max_windowsize,
            timeout=timeout,
            max_timeout=max_timeout,
            retries=retries,
        )
        self._table = table if table is not None else TransferTable(fd_budget(max_transfers))
        self._name = name
        self._netascii_limit = netascii_limit
        self._family = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
        self._bind_host = bind[0]
        self._wildcard = bind[0] in ("", "0.0.0.0", "::")
        self._listen = self._open_listener(bind, receive_buffer, reuse_port)
        #: the C happy path's set (None: the state machine answers every ACK); when built, it is also
        #: what the loop waits in, so a download's ACKs are answered without waking the interpreter
        self._fast = (_tftp_fast.FastSet(MAX_REPLY, EAGER_ROUNDS, EAGER_BACKOFF, spin, SPIN_LIMIT,
                                         self._table.fast_count)
                      if fast_path and _tftp_fast is not None else None)
        self._poller: _Poller = self._fast if self._fast is not None else _EpollPoller()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        #: what each registered descriptor is: the listener, the wake-up pipe, or a transfer
        self._handlers: dict[int, object] = {}
        self._register(self._listen.fileno(), _LISTEN)
        self._register(self._wake_r.fileno(), _WAKE)
        self._active: set[_Active] = set()
        self._by_client: dict[Address, _Active] = {}
        #: requests other loops handed over (this loop owns their client): appended by any thread
        self._inbox: collections.deque[tuple[ReadRequest, Address, str | None]] = collections.deque()
        self._timers: list[tuple[float, int, _Active]] = []
        self._seq = itertools.count()
        self._rbuf = bytearray(MAX_REPLY)
        self._rview = memoryview(self._rbuf)
        self._bad = RateLimited(log)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._loop_thread: int | None = None
        self._closed = False

    # ------------------------------------------------------------------------------ public

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._listen.getsockname()[:2]
        return str(host), int(port)

    @property
    def active_transfers(self) -> int:
        return len(self._active)

    @property
    def listener(self) -> socket.socket:
        """The request socket (for :mod:`netboot.servers.tftp_loops` to attach its steering program)."""
        return self._listen

    def serve_forever(self) -> None:
        """Run the loop until :meth:`shutdown`; then abort what is still open (clients get ERROR 0)."""
        if self._closed:
            raise RuntimeError("TftpServer is closed")
        self._stopped.clear()
        self._loop_thread = threading.get_ident()
        log.info("%s serving on %s:%d (ACK to DATA: %s)", self._name, *self.server_address,
                 f"C fast path, spin {self._fast.spin * 1e6:.0f} us" if self._fast else
                 "pure Python" + ("" if _tftp_fast else ", extension _tftp_fast not built"))
        try:
            while not self._stop.is_set():
                self._step()
        finally:
            self._abort_all("server shutting down")
            self._loop_thread = None
            if self._fast is not None:  # what the C path did: the figures to look at when tuning
                log.info("%s stopped on %s:%d: %d ACKs answered in C, %d datagrams handed to Python, "
                         "spins caught %d, missed %d", self._name, *self.server_address, self._fast.answered,
                         self._fast.handed_back, self._fast.spins_caught, self._fast.spins_missed)
            self._stopped.set()

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop the loop (thread-safe); wait up to ``wait`` seconds for it unless called from the loop."""
        self._stop.set()
        self._wake()
        if self._loop_thread not in (None, threading.get_ident()):
            self._stopped.wait(wait)

    def close(self) -> None:
        """Release every socket. Call after :meth:`shutdown` (or instead of serving at all)."""
        if self._closed:
            return
        self.shutdown()
        self._abort_all("server shutting down")
        self._closed = True
        self._poller.close()
        for sock in (self._listen, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> TftpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- loop

    def _step(self) -> None:
        """One wait (level-triggered): datagrams the C set handed back first (their sockets are still
        open; a new transfer could reuse a closed one's number), then ready sockets (a transfer gets one
        datagram, plus eager reads while its client keeps answering at once, see :meth:`_on_transfer`),
        then timers."""
        ready, handed_back = self._poller.wait(self._poll_timeout(time.monotonic()))
        handlers = self._handlers
        for fd, datagram, addr in handed_back:
            active = handlers.get(fd)
            if isinstance(active, _Active):
                self._handle(active, memoryview(datagram), addr, time.monotonic())
        for fd in ready:
            handler = handlers.get(fd)
            if isinstance(handler, _Active):
                self._on_transfer(handler, time.monotonic())
            elif handler is _LISTEN:
                self._on_listener(time.monotonic())
            elif handler is _WAKE:
                self._drain_wake()
                self._run_inbox()
        self._run_timers(time.monotonic())

    def _poll_timeout(self, now: float) -> float:
        if not self._timers:
            return -1.0
        return max(0.0, self._timers[0][0] - now)

    def _register(self, fd: int, handler: object) -> None:
        self._handlers[fd] = handler
        self._poller.watch(fd)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is already pending) or closed
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except OSError:
            pass

    def _hand_over(self, request: ReadRequest, addr: Address, local: str | None) -> None:
        """Another loop read a request from a client this loop serves: queue it here (any thread)."""
        self._inbox.append((request, addr, local))
        self._wake()

    def _run_inbox(self) -> None:
        for _ in range(len(self._inbox)):  # bounded: what was queued before this wake-up
            request, addr, local = self._inbox.popleft()
            try:
                self._start(request, addr, local, time.monotonic())
            except Exception:
                log.exception("TFTP request from %s:%s failed", addr[0], addr[1])

    # ----------------------------------------------------------------------------- requests

    def _open_listener(self, bind: tuple[str, int], receive_buffer: int, reuse_port: bool) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _try_setsockopt(sock, socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            if self._family == socket.AF_INET:
                _try_setsockopt(sock, socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                _try_setsockopt(sock, socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind(bind)
        except BaseException:
            sock.close()
            raise
        return sock

    def _on_listener(self, now: float) -> None:
        space = socket.CMSG_SPACE(32)
        for _ in range(BATCH):
            try:
                data, ancdata, _flags, addr = self._listen.recvmsg(MAX_REQUEST, space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("TFTP listener receive failed: %s", exc)
                return
            local = _local_address(ancdata)
            try:
                self._on_request(data, addr, local, now)
            except Exception:
                log.exception("TFTP request from %s:%s failed", addr[0], addr[1])

    def _on_request(self, data: bytes, addr: Address, local: str | None, now: float) -> None:
        try:
            packet = decode(data)
        except DecodeError as exc:
            self._bad.warning("malformed TFTP request from %s:%s (%d bytes): %s", addr[0], addr[1],
                              len(data), exc)
            self._reply_error(addr, local, ErrorCode.ILLEGAL_OPERATION, "malformed request")
            return
        if isinstance(packet, ReadRequest):
            self._start(packet, addr, local, now)
        elif isinstance(packet, WriteRequest):
            self._refuse(packet, addr, local, ErrorCode.ACCESS_VIOLATION, "read-only server",
                         reason="write request")
        elif not isinstance(packet, Error):  # never answer an ERROR with an ERROR
            self._bad.warning("TFTP %s from %s:%s on the request port", type(packet).__name__, addr[0],
                              addr[1])
            self._reply_error(addr, local, ErrorCode.ILLEGAL_OPERATION, "expected a read request")

    def _start(self, request: ReadRequest, addr: Address, local: str | None, now: float) -> None:
        owner = self._table.owner(addr)
        if owner is not None and owner is not self:
            owner._hand_over(request, addr, local)  # its loop knows whether this is a retransmission
            return
        if self._is_retransmitted_request(request, addr, now):
            return  # our own retransmission timer answers it; a second transfer would only collide
        if request.mode not in ("octet", "netascii"):
            self._refuse(request, addr, local, ErrorCode.ILLEGAL_OPERATION,
                         "unsupported mode", reason=f"mode {request.mode!r}")
            return
        if not self._table.reserve(self, addr):
            self._refuse(request, addr, local, ErrorCode.NOT_DEFINED,
                         "server busy", reason="too many transfers")
            return
        active = None
        try:
            active = self._open_transfer(request, addr, local, now)
        finally:
            if active is None:  # refused, or an exception: the reservation goes back
                self._table.release(self, addr, owner=addr not in self._by_client)
        if active is None:
            return
        transfer, sock, source = active.transfer, active.sock, active.source
        window = transfer.negotiation.windowsize * transfer.negotiation.blksize
        if (self._fast is not None and isinstance(source, FileSource) and self._family == socket.AF_INET
                and window <= FAST_WINDOW_BYTES):
            try:
                self._fast.add(sock.fileno(), source.fileno(), socket.inet_aton(addr[0]), int(addr[1]),
                               transfer.size, window)
                active.fast = True
            except OSError as exc:  # the kernel would not add it to the C set: Python serves it
                log.warning("TFTP C fast path refused the transfer to %s: %s", addr[0], exc)
        if active.fast:
            self._handlers[sock.fileno()] = active
        else:
            self._register(sock.fileno(), active)
        self._active.add(active)
        self._by_client[addr] = active
        self._send(active, transfer.start(now))
        self._settle(active, now)

    def _open_transfer(self, request: ReadRequest, addr: Address, local: str | None,
                       now: float) -> _Active | None:
        """The file and a socket for a new transfer; None when the client was refused (and told why)."""
        source = self._open_source(request, addr, local)
        if source is None:
            return None
        try:
            sock = self._transfer_socket(local)
        except OSError as exc:
            source.close()
            self._refuse(request, addr, local, ErrorCode.NOT_DEFINED,
                         "server busy", reason=f"no socket: {exc}")
            return None
        try:
            transfer = ReadTransfer(request, source, addr, self._limits)
        except BaseException:
            sock.close()
            source.close()
            raise
        return _Active(transfer, sock, source, started=now, wall=time.time())

    def _is_retransmitted_request(self, request: ReadRequest, addr: Address, now: float) -> bool:
        """Same client port, same request, and that transfer has not moved yet: the client is retrying.

        The old transfer's socket is drained first: pxelinux sends every RRQ from one port, and its final
        ACK for the previous file may still be queued when the next request is read.
        """
        active = self._by_client.get(addr)
        for _ in range(BATCH):
            if active is None or active.closed or not self._receive_one(active, now):
                break
        return (
            active is not None
            and not active.closed
            and active.transfer.acked_blocks == 0
            and active.transfer.request == request
        )

    def _open_source(self, request: ReadRequest, addr: Address, local: str | None) -> Source | None:
        """Ask the resolver; answer ERROR 1/2/0 and return None when it says no (or breaks)."""
        code, message, reason = ErrorCode.NOT_DEFINED, "internal error", ""
        try:
            source = self._resolver(request.filename, (str(addr[0]), int(addr[1])))
            if request.mode == "netascii":
                source = self._netascii(source)
            return source
        except FileNotFound as exc:
            code, message, reason = ErrorCode.FILE_NOT_FOUND, "file not found", str(exc)
        except AccessDenied as exc:
            code, message, reason = ErrorCode.ACCESS_VIOLATION, "access violation", str(exc)
        except Exception as exc:
            log.exception("TFTP resolver failed for %s from %s", _printable(request.filename), addr[0])
            reason = f"resolver error: {exc!r}"
        self._refuse(request, addr, local, code, message, reason=reason)
        return None

    def _netascii(self, source: Source) -> Source:
        """netascii needs the translated size up front (``tsize``), so translate in memory, within a cap."""
        try:
            if source.size > self._netascii_limit:
                raise AccessDenied(f"{source.size} bytes is too large for netascii mode")
            return BytesSource(to_netascii(source.read(0, source.size)))
        finally:
            source.close()

    def _transfer_socket(self, local: str | None) -> socket.socket:
        """A socket on a new port, on the address the request came to (multi-homed hosts, aliases)."""
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            host = local if (local and self._wildcard) else self._bind_host
            try:
                sock.bind((host, 0))
            except OSError:
                sock.bind((self._bind_host, 0))
        except BaseException:
            sock.close()
            raise
        return sock

    def _reply_error(self, addr: Address, local: str | None, code: ErrorCode, message: str) -> None:
        """ERROR from the well-known port, with the request's destination as source when bound to any."""
        ancillary = []
        if local and self._wildcard and self._family == socket.AF_INET:
            ancillary = [(socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, socket.inet_aton(local), bytes(4)))]
        try:
            self._listen.sendmsg([error_datagram(code, message)], ancillary, 0, addr)
        except OSError as exc:
            log.debug("TFTP error reply to %s failed: %s", addr[0], exc)

    def _refuse(self, request: ReadRequest | WriteRequest, addr: Address, local: str | None,
                code: ErrorCode, message: str, *, reason: str) -> None:
        """Answer a request with ERROR (from the well-known port) and report it like any transfer."""
        self._reply_error(addr, local, code, message)
        self._report(addr, request.filename, Outcome.REFUSED, sent=0, size=None, options=request.options,
                     negotiated=None, duration=0.0, error=(int(code), reason or message), retransmits=0,
                     wall=time.time())

    # ----------------------------------------------------------------------------- transfers

    def _on_transfer(self, active: _Active, now: float) -> None:
        """Handle the datagram that woke us, then, while the client keeps up, the next ones at once.

        A client on the same host (the QEMU lab, containers) usually has its ACK queued by the time our
        ``sendto`` returns, so reading it straight away saves an epoll round per window. The first time
        the ACK is not there yet (any real network), eager reads stop for :data:`EAGER_BACKOFF` wake-ups,
        so a remote client costs one failed ``recv`` per 17 windows. (The C set does the same for its
        transfers.)
        """
        budget = 1 if active.eager_pause else 1 + EAGER_ROUNDS
        consumed = 0
        while consumed < budget and not active.closed:
            if not self._receive_one(active, now):
                break
            consumed += 1
            now = time.monotonic()
        if active.eager_pause:
            active.eager_pause -= 1
        elif 0 < consumed < budget:  # an eager read found nothing: the client is not on this host
            active.eager_pause = EAGER_BACKOFF

    def _receive_one(self, active: _Active, now: float) -> bool:
        """Handle one datagram waiting on a transfer's socket; False when there was none."""
        try:
            size, addr = active.sock.recvfrom_into(self._rbuf)
        except OSError:  # EAGAIN (spurious wake-up, or a descriptor number reused this round)
            return False
        self._handle(active, self._rview[:size], addr, now)
        return True

    def _handle(self, active: _Active, datagram: memoryview, addr: Address, now: float) -> None:
        """One datagram through the state machine; send what it asks, then finish or re-arm its timer."""
        try:
            if active.fast:
                self._sync(active)
            sends = active.transfer.receive(datagram, addr, now)
            if sends:
                self._send(active, sends)
        except Exception:
            self._internal_error(active, "transfer")
        self._settle(active, now)

    def _internal_error(self, active: _Active, what: str) -> None:
        """A bug, not a client: log it with its traceback and end the transfer with ERROR 0."""
        transfer = active.transfer
        log.exception("TFTP %s of %s to %s failed", what, _printable(transfer.request.filename),
                      transfer.client[0])
        self._send(active, transfer.abort(ErrorCode.NOT_DEFINED, "internal error"))

    def _settle(self, active: _Active, now: float) -> None:
        """After the state machine ran: close a finished transfer, or re-arm its timer (and tell the C set
        whether the next ACK is its to answer)."""
        transfer = active.transfer
        if transfer.finished:
            self._finish(active, now)
            return
        self._schedule(active)
        if active.fast:
            assert self._fast is not None
            position = transfer.fast_path_position()
            try:
                if position is None:
                    self._fast.disarm(active.sock.fileno())
                else:
                    self._fast.arm(active.sock.fileno(), *position, active.gso)
            except Exception:
                self._internal_error(active, "fast-path hand-over")
                self._finish(active, now)

    def _sync(self, active: _Active) -> None:
        """Tell the state machine about the ACKs the C set answered since it last looked; every path into
        a fast transfer's state machine (datagram, timer, shutdown) starts here."""
        assert self._fast is not None
        gso = active.gso
        acked, progress, active.gso = self._fast.take(active.sock.fileno())
        if gso and not active.gso:
            log.debug("TFTP: no UDP GSO towards %s (refused by the kernel); sending datagram by datagram",
                      active.transfer.client[0])
        if acked >= 0:
            active.transfer.fast_path_acked(acked, progress)

    def _send(self, active: _Active, sends: list[Send]) -> None:
        """Send what the transfer asked for; a full socket buffer is loss, which retransmission repairs."""
        sock = active.sock
        for send in sends:
            data, dest, segment = send
            try:
                if not segment:
                    sock.sendto(data, dest)
                elif active.gso:
                    self._send_gso(active, send)
                else:
                    for datagram in datagrams(send):
                        sock.sendto(datagram, dest)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                log.debug("TFTP send to %s failed: %s", dest[0], exc)

    def _send_gso(self, active: _Active, send: Send) -> None:
        """A window: its first datagram alone, then the rest in one ``sendmsg`` per 64 KB with UDP_SEGMENT,
        which the kernel cuts into the DATA datagrams.

        GSO sends 8 x 1472 bytes in 18 us instead of 42 us for 8 ``sendto``. Sending the head alone
        first wakes a receiver on another CPU (a QEMU vCPU, a local client) while the kernel cuts the
        rest, instead of after the whole burst: measured on loopback across CPUs, windowsize 8 took
        0.61 s per 64 MiB with one GSO call and 0.54 s head-first (on one CPU: 0.27 s and 0.31 s;
        atftpd 0.51 s and 0.54 s). Where the kernel refuses GSO, this transfer falls back to one
        ``sendto`` per datagram for good.
        """
        data, dest, segment = send
        sock, view = active.sock, memoryview(data)
        sock.sendto(view[:segment], dest)
        rest = view[segment:]
        if len(rest) <= segment:
            sock.sendto(rest, dest)
            return
        per_call = min(GSO_MAX_SEGMENTS, GSO_MAX_BYTES // segment) * segment
        try:
            if per_call <= segment:
                raise OSError(errno.EMSGSIZE, "segments too large to batch")
            control = [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(segment))]
            for pos in range(0, len(rest), per_call):
                sock.sendmsg([rest[pos : pos + per_call]], control, 0, dest)
        except OSError as exc:
            if exc.errno not in _GSO_REFUSED:
                raise
            active.gso = False
            log.debug("TFTP: no UDP GSO towards %s (%s); sending datagram by datagram", dest[0], exc)
            for datagram in datagrams((rest, dest, segment)):
                sock.sendto(datagram, dest)

    def _schedule(self, active: _Active) -> None:
        """Keep one heap entry no later than the transfer's deadline (later ones are re-armed lazily)."""
        deadline = active.transfer.deadline
        if deadline is not None and (active.scheduled is None or deadline < active.scheduled):
            active.scheduled = deadline
            heapq.heappush(self._timers, (deadline, next(self._seq), active))

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, active = heapq.heappop(timers)
            if active.closed or when != active.scheduled:
                continue  # stale entry
            active.scheduled = None
            try:
                if active.fast:  # the C set may have moved the deadline since this entry was pushed
                    self._sync(active)
                    deadline = active.transfer.deadline
                    if deadline is not None and deadline > now:
                        self._schedule(active)
                        continue
                self._send(active, active.transfer.on_timeout(now))
            except Exception:
                self._internal_error(active, "retransmission")
            self._settle(active, now)

    def _abort_all(self, message: str) -> None:
        now = time.monotonic()
        for active in list(self._active):
            if active.fast:
                try:
                    self._sync(active)  # so the event counts the bytes the C set moved
                except Exception:
                    log.exception("TFTP transfer to %s: fast-path state lost at shutdown",
                                  active.transfer.client[0])
            self._send(active, active.transfer.abort(ErrorCode.NOT_DEFINED, message))
            self._finish(active, now)

    def _finish(self, active: _Active, now: float) -> None:
        if active.closed:
            return
        active.closed = True
        self._active.discard(active)
        transfer = active.transfer
        last = self._by_client.get(transfer.client) is active
        if last:
            del self._by_client[transfer.client]
        self._table.release(self, transfer.client, owner=last)
        fd = active.sock.fileno()
        self._handlers.pop(fd, None)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poller.remove(fd)
        active.sock.close()
        active.source.close()
        self._report(transfer.client, transfer.request.filename, transfer.outcome or Outcome.FAILED,
                     sent=transfer.bytes_acked, size=transfer.size, options=transfer.request.options,
                     negotiated=transfer.negotiation.accepted, duration=now - active.started,
                     error=transfer.error, retransmits=transfer.retransmits, wall=active.wall)

    # ---------------------------------------------------------------------------- reporting

    def _report(self, addr: Address, filename: str, outcome: Outcome, *, sent: int, size: int | None,
                options: tuple[tuple[str, str], ...] | None, negotiated: tuple[tuple[str, str], ...] | None,
                duration: float, error: tuple[int, str] | None, retransmits: int, wall: float) -> None:
        """One INFO line and one ``tftp`` event per request, whatever became of it."""
        name = _printable(filename)
        ip, port = str(addr[0]), int(addr[1])
        requested = dict(options or ())
        accepted = dict(negotiated or ())
        log.info("%s:%d %s %s bytes=%d/%s options=%s negotiated=%s duration=%.3fs%s", ip, port, name,
                 outcome.value, sent, "-" if size is None else size, _options_text(requested),
                 _options_text(accepted), duration, f" error={error[0]}:{error[1]}" if error else "")
        detail: dict[str, Any] = {
            "file": name,
            "outcome": outcome.value,
            "bytes": sent,
            "size": size,
            "options": requested,
            "negotiated": accepted,
            "duration": round(duration, 6),
            "client_port": port,
            "retransmits": retransmits,
        }
        if error:
            detail["error_code"], detail["error"] = error
        try:
            self._recorder.record(Event("tftp", _summary(name, outcome, sent, error), client_ip=ip,
                                        time=wall, detail=detail))
        except Exception:
            log.exception("recording the TFTP event for %s failed", ip)


# ------------------------------------------------------------------------------------------- helpers


def _summary(name: str, outcome: Outcome, sent: int, error: tuple[int, str] | None) -> str:
    if outcome is Outcome.COMPLETE:
        return f"{name}: sent {sent} bytes"
    if outcome is Outcome.ABORTED and error and error[0] == ErrorCode.OPTION_REFUSED:
        return f"{name}: client stopped after the option reply (size probe)"
    why = f" ({error[1]})" if error else ""
    return f"{name}: {outcome.value}{why}"


def _options_text(options: dict[str, str]) -> str:
    return ",".join(f"{k}={_printable(v, 32)}" for k, v in options.items()) or "-"


def _printable(text: str, limit: int = 256) -> str:
    """A client-chosen string safe for one log line and the database: escaped, surrogate-free, bounded."""
    clipped = text[:limit]
    safe = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in clipped)
    return safe + ("..." if len(text) > limit else "")


def _local_address(ancdata: list[tuple[int, int, bytes]]) -> str | None:
    """The address a request was sent to, from IP_PKTINFO / IPV6_PKTINFO."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _PKTINFO.size:
            return socket.inet_ntoa(_PKTINFO.unpack_from(data)[1])
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return None


def _try_setsockopt(sock: socket.socket, level: int, option: int, value: int) -> None:
    try:
        sock.setsockopt(level, option, value)
    except OSError as exc:
        log.debug("setsockopt(%d, %d) failed: %s", level, option, exc)


def fd_budget(wanted: int) -> int:
    """Each transfer holds two descriptors (socket, file): stay inside RLIMIT_NOFILE, not fail late."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    budget = max(16, (soft - 128) // 2)
    if wanted > budget:
        log.warning("TFTP: %d concurrent transfers need more than RLIMIT_NOFILE=%d; limiting to %d",
                    wanted, soft, budget)
        return budget
    return wanted
