"""The TFTP transport: the only TFTP code that touches sockets, files and the clock.

One thread, one epoll loop, non-blocking sockets. The well-known port only receives requests; every
transfer gets its own UDP socket on a fresh port (its RFC 1350 TID), so a boot storm of hundreds of
clients is hundreds of registered sockets and a heap of retransmission deadlines, not hundreds of
threads. The protocol rules live in :class:`netboot.protocol.tftp.ReadTransfer`; this module only moves
bytes and tells it the time. Several such loops can serve one port, one per CPU
(:mod:`netboot.servers.tftp_loops`); what they share is a :class:`TransferTable`.

The loop's parts live beside it: where files come from (:mod:`netboot.servers.tftp_resolvers`), the
per-transfer bookkeeping and the shared table (:mod:`netboot.servers.tftp_transfers`), the sockets
(:mod:`netboot.servers.tftp_sockets`), sending with UDP GSO (:mod:`netboot.servers.tftp_send`) and the
log line and event per request (:mod:`netboot.servers.tftp_report`). Per window the work is at most one
``pread`` (32 KiB read-ahead) and two sends.

A download's happy path (the ACK of the last block sent in, the next window or lock-step block out)
runs in C when the optional extension ``_tftp_fast`` is built: its ``FastSet`` is then what the loop
waits in, and the interpreter wakes only for requests, the datagrams the C loop hands back and
retransmission deadlines (see ``_tftp_fast.c`` for why and for its narrow contract). After answering
an ACK it polls for :data:`SPIN` seconds before sleeping while the port serves a single transfer
(:data:`SPIN_LIMIT`), because a client on the same host answers sooner than a sleeping thread can be
woken on a VM. The state machine still decides everything else, and the server runs the same
protocol without it.

Read-only by construction: a WRQ is answered with ERROR 2. Files come from a resolver (see
:class:`~netboot.servers.tftp_resolvers.ChainResolver`).

Every datagram and every transfer is handled inside ``try``: a hostile or broken packet costs a
(rate-limited) warning, never the loop.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time

from netboot.events import EventRecorder
from netboot.logutil import RateLimited
from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp import (
    MAX_BLKSIZE,
    Address,
    BytesSource,
    Error,
    ErrorCode,
    Limits,
    Outcome,
    ReadRequest,
    ReadTransfer,
    Source,
    WriteRequest,
    decode,
    to_netascii,
)
from netboot.servers.tftp_report import printable, report
from netboot.servers.tftp_resolvers import (
    AccessDenied,
    ChainResolver,
    DynamicContent,
    FileNotFound,
    FileSource,
    ProfileFilesResolver,
    RootResolver,
    TftpPeer,
    TftpResolver,
    TftpSource,
)
from netboot.servers.tftp_send import SOL_UDP, UDP_SEGMENT
from netboot.servers.tftp_sockets import (
    PKTINFO_SPACE,
    EpollPoller,
    Poller,
    fd_budget,
    local_address,
    open_listener,
    send_error,
    transfer_socket,
)
from netboot.servers.tftp_transfers import (
    EAGER_BACKOFF,
    EAGER_ROUNDS,
    MAX_REPLY,
    ActiveTransfer,
    Transfers,
    TransferTable,
    fast_extension,
)

__all__ = [
    # the names other modules import from here, wherever they now live
    "SOL_UDP",
    "SPIN",
    "UDP_SEGMENT",
    "AccessDenied",
    "ChainResolver",
    "DynamicContent",
    "FileNotFound",
    "FileSource",
    "ProfileFilesResolver",
    "RootResolver",
    "TftpPeer",
    "TftpResolver",
    "TftpServer",
    "TftpSource",
    "TransferTable",
    "fd_budget",
]

log = logging.getLogger("netboot.tftp")

#: requests read from the well-known port per wake-up (bounded, so a request flood cannot starve transfers)
BATCH = 64
#: largest request accepted on the well-known port (a UDP datagram cannot be larger)
MAX_REQUEST = 65535
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
        self._listen = open_listener(self._family, bind, receive_buffer, reuse_port)
        #: the C happy path's set (None: the state machine answers every ACK); when built, it is also
        #: what the loop waits in, so a download's ACKs are answered without waking the interpreter
        self._fast = (fast_extension.FastSet(MAX_REPLY, EAGER_ROUNDS, EAGER_BACKOFF, spin, SPIN_LIMIT,
                                         self._table.fast_count)
                      if fast_path and fast_extension is not None else None)
        self._poller: Poller = self._fast if self._fast is not None else EpollPoller()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._listen_fd, self._wake_fd = self._listen.fileno(), self._wake_r.fileno()
        self._poller.watch(self._listen_fd)
        self._poller.watch(self._wake_fd)
        self._transfers = Transfers(self, self._table, recorder, self._poller, self._fast)
        #: requests other loops handed over (this loop owns their client): appended by any thread
        self._inbox: collections.deque[tuple[ReadRequest, Address, str | None]] = collections.deque()
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
        return len(self._transfers.active)

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
                 "pure Python" + ("" if fast_extension else ", extension _tftp_fast not built"))
        try:
            while not self._stop.is_set():
                self._step()
        finally:
            self._transfers.abort_all("server shutting down")
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
        self._transfers.abort_all("server shutting down")
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
        datagram, plus eager reads while its client keeps answering at once, see
        :meth:`Transfers.on_readable`), then timers."""
        transfers = self._transfers
        ready, handed_back = self._poller.wait(transfers.poll_timeout(time.monotonic()))
        by_fd = transfers.by_fd
        for fd, datagram, addr in handed_back:
            active = by_fd.get(fd)
            if active is not None:
                transfers.handle(active, memoryview(datagram), addr, time.monotonic())
        for fd in ready:
            active = by_fd.get(fd)
            if active is not None:
                transfers.on_readable(active, time.monotonic())
            elif fd == self._listen_fd:
                self._on_listener(time.monotonic())
            elif fd == self._wake_fd:
                self._drain_wake()
                self._run_inbox()
        transfers.run_timers(time.monotonic())

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake-up is already pending) or closed
            self._wake_w.send(b"\0")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except OSError:
            pass

    def hand_over(self, request: ReadRequest, addr: Address, local: str | None) -> None:
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

    def _on_listener(self, now: float) -> None:
        for _ in range(BATCH):
            try:
                data, ancdata, _flags, addr = self._listen.recvmsg(MAX_REQUEST, PKTINFO_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("TFTP listener receive failed: %s", exc)
                return
            local = local_address(ancdata)
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
            owner.hand_over(request, addr, local)  # its loop knows whether this is a retransmission
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
                self._table.release(self, addr, owner=addr not in self._transfers.by_client)
        if active is None:
            return
        self._transfers.add(active, now)

    def _open_transfer(self, request: ReadRequest, addr: Address, local: str | None,
                       now: float) -> ActiveTransfer | None:
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
        return ActiveTransfer(transfer, sock, source, started=now, wall=time.time())

    def _is_retransmitted_request(self, request: ReadRequest, addr: Address, now: float) -> bool:
        """Same client port, same request, and that transfer has not moved yet: the client is retrying.

        The old transfer's socket is drained first: pxelinux sends every RRQ from one port, and its final
        ACK for the previous file may still be queued when the next request is read.
        """
        active = self._transfers.by_client.get(addr)
        for _ in range(BATCH):
            if active is None or active.closed or not self._transfers.receive_one(active, now):
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
            source = self._resolver(request.filename, TftpPeer(str(addr[0]), int(addr[1]), local))
            if request.mode == "netascii":
                source = self._netascii(source)
            return source
        except FileNotFound as exc:
            code, message, reason = ErrorCode.FILE_NOT_FOUND, "file not found", str(exc)
        except AccessDenied as exc:
            code, message, reason = ErrorCode.ACCESS_VIOLATION, "access violation", str(exc)
        except Exception as exc:
            log.exception("TFTP resolver failed for %s from %s", printable(request.filename), addr[0])
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
        host = local if (local and self._wildcard) else self._bind_host
        return transfer_socket(self._family, host, self._bind_host)

    def _reply_error(self, addr: Address, local: str | None, code: ErrorCode, message: str) -> None:
        """ERROR from the well-known port, with the request's destination as source when bound to any."""
        wildcard_v4 = self._wildcard and self._family == socket.AF_INET
        send_error(self._listen, addr, local if wildcard_v4 else None, code, message)

    def _refuse(self, request: ReadRequest | WriteRequest, addr: Address, local: str | None,
                code: ErrorCode, message: str, *, reason: str) -> None:
        """Answer a request with ERROR (from the well-known port) and report it like any transfer."""
        self._reply_error(addr, local, code, message)
        report(self._recorder, addr, request.filename, Outcome.REFUSED, sent=0, size=None,
               options=request.options, negotiated=None, duration=0.0, error=(int(code), reason or message),
               retransmits=0, wall=time.time())
