"""What the TFTP loop keeps per transfer, what it waits with, and what the loops on one port share.

:class:`ActiveTransfer` is the transport's side of one download (its socket, source and timer entry; the
protocol's side is :class:`netboot.protocol.tftp.ReadTransfer`). :class:`TransferTable` is shared by every
loop serving one port (:mod:`netboot.servers.tftp_loops`). :class:`Transfers` runs one loop's transfers after
their request was accepted: datagrams, retransmission timers, and the hand-over to the C fast path's
``FastSet`` when the extension ``_tftp_fast`` is built (see ``_tftp_fast.c``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from netboot.events import EventRecorder
from netboot.protocol.tftp import Address, ErrorCode, Outcome, ReadRequest, ReadTransfer, Source
from netboot.servers.tftp_report import printable, report
from netboot.servers.tftp_resolvers import FileSource
from netboot.servers.tftp_send import send
from netboot.servers.tftp_sockets import Poller

log = logging.getLogger("netboot.tftp")

try:
    from netboot.servers import _tftp_fast
except ImportError:  # built without a C compiler: the state machine answers every ACK
    _tftp_fast = None  # type: ignore[assignment]

#: the C fast path's module (see ``_tftp_fast.c``), None when netboot was built without it
fast_extension = _tftp_fast

#: what a transfer socket reads: ACK and ERROR packets; anything longer is junk anyway
MAX_REPLY = 1024
#: eager reads after a wake-up (bounded so one fast client cannot starve the rest), and the wake-ups
#: to skip eager reads after one found nothing
EAGER_ROUNDS, EAGER_BACKOFF = 8, 16
#: largest window (windowsize x blksize) the C fast path reads at once: its one buffer per server
FAST_WINDOW_BYTES = 4 << 20


@dataclass(eq=False, slots=True)
class ActiveTransfer:
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
    fast: bool = False  # a transfer of the loop's C set: it answers the happy path itself


class Loop(Protocol):
    """A loop as the table sees it: it takes requests from clients it serves that another loop read."""

    def hand_over(self, request: ReadRequest, addr: Address, local: str | None) -> None: ...


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
        self.fast_count = fast_extension.TransferCount() if fast_extension is not None else None
        self._lock = threading.Lock()
        self._count = 0
        self._owner: dict[Address, Loop] = {}

    def owner(self, addr: Address) -> Loop | None:
        """The loop with a live transfer to ``addr``, if any."""
        with self._lock:
            return self._owner.get(addr)

    def reserve(self, loop: Loop, addr: Address) -> bool:
        """Count one more transfer for ``loop`` and make it ``addr``'s owner; False when full."""
        with self._lock:
            if self._count >= self.max_transfers:
                return False
            self._count += 1
            self._owner[addr] = loop
            return True

    def release(self, loop: Loop, addr: Address, *, owner: bool) -> None:
        """Count one transfer less; with ``owner``, ``addr`` has no live transfer in ``loop`` left."""
        with self._lock:
            self._count -= 1
            if owner and self._owner.get(addr) is loop:
                del self._owner[addr]


class Transfers:
    """The transfers one loop runs: their sockets, retransmission timers and hand-over to the C set.

    The loop (:class:`netboot.servers.tftp.TftpServer`) reads requests and hands each new transfer to
    :meth:`add`; from then on every datagram, deadline and the end of a transfer go through here. ``fast``
    is the loop's C set (None: the state machine answers every ACK), ``poller`` what the loop waits in.
    """

    def __init__(self, loop: Loop, table: TransferTable, recorder: EventRecorder, poller: Poller,
                 fast: _tftp_fast.FastSet | None) -> None:
        self._loop = loop
        self._table = table
        self._recorder = recorder
        self._poller = poller
        self._fast = fast
        self.active: set[ActiveTransfer] = set()
        #: the latest transfer per client address (a retransmitted request is told apart with it)
        self.by_client: dict[Address, ActiveTransfer] = {}
        #: every open transfer by its socket's descriptor, for the loop's dispatch
        self.by_fd: dict[int, ActiveTransfer] = {}
        self._timers: list[tuple[float, int, ActiveTransfer]] = []
        self._seq = itertools.count()
        self._rbuf = bytearray(MAX_REPLY)
        self._rview = memoryview(self._rbuf)

    def add(self, active: ActiveTransfer, now: float) -> None:
        """Start a new transfer: its socket joins the C set when it can (else the poller), first send."""
        transfer, sock, source, addr = active.transfer, active.sock, active.source, active.transfer.client
        window = transfer.negotiation.windowsize * transfer.negotiation.blksize
        if (self._fast is not None and isinstance(source, FileSource) and sock.family == socket.AF_INET
                and window <= FAST_WINDOW_BYTES):
            try:
                self._fast.add(sock.fileno(), source.fileno(), socket.inet_aton(addr[0]), int(addr[1]),
                               transfer.size, window)
                active.fast = True
            except OSError as exc:  # the kernel would not add it to the C set: Python serves it
                log.warning("TFTP C fast path refused the transfer to %s: %s", addr[0], exc)
        if not active.fast:
            self._poller.watch(sock.fileno())
        self.by_fd[sock.fileno()] = active
        self.active.add(active)
        self.by_client[addr] = active
        send(active, transfer.start(now))
        self.settle(active, now)

    def on_readable(self, active: ActiveTransfer, now: float) -> None:
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
            if not self.receive_one(active, now):
                break
            consumed += 1
            now = time.monotonic()
        if active.eager_pause:
            active.eager_pause -= 1
        elif 0 < consumed < budget:  # an eager read found nothing: the client is not on this host
            active.eager_pause = EAGER_BACKOFF

    def receive_one(self, active: ActiveTransfer, now: float) -> bool:
        """Handle one datagram waiting on a transfer's socket; False when there was none."""
        try:
            size, addr = active.sock.recvfrom_into(self._rbuf)
        except OSError:  # EAGAIN (spurious wake-up, or a descriptor number reused this round)
            return False
        self.handle(active, self._rview[:size], addr, now)
        return True

    def handle(self, active: ActiveTransfer, datagram: memoryview, addr: Address, now: float) -> None:
        """One datagram through the state machine; send what it asks, then finish or re-arm its timer."""
        try:
            if active.fast:
                self._sync(active)
            sends = active.transfer.receive(datagram, addr, now)
            if sends:
                send(active, sends)
        except Exception:
            self._internal_error(active, "transfer")
        self.settle(active, now)

    def _internal_error(self, active: ActiveTransfer, what: str) -> None:
        """A bug, not a client: log it with its traceback and end the transfer with ERROR 0."""
        transfer = active.transfer
        log.exception("TFTP %s of %s to %s failed", what, printable(transfer.request.filename),
                      transfer.client[0])
        send(active, transfer.abort(ErrorCode.NOT_DEFINED, "internal error"))

    def settle(self, active: ActiveTransfer, now: float) -> None:
        """After the state machine ran: close a finished transfer, or re-arm its timer (and tell the C set
        whether the next ACK is its to answer)."""
        transfer = active.transfer
        if transfer.finished:
            self.finish(active, now)
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
                self.finish(active, now)

    def _sync(self, active: ActiveTransfer) -> None:
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

    def _schedule(self, active: ActiveTransfer) -> None:
        """Keep one heap entry no later than the transfer's deadline (later ones are re-armed lazily)."""
        deadline = active.transfer.deadline
        if deadline is not None and (active.scheduled is None or deadline < active.scheduled):
            active.scheduled = deadline
            heapq.heappush(self._timers, (deadline, next(self._seq), active))

    def poll_timeout(self, now: float) -> float:
        """Seconds until the earliest retransmission deadline; -1 (wait forever) without one."""
        if not self._timers:
            return -1.0
        return max(0.0, self._timers[0][0] - now)

    def run_timers(self, now: float) -> None:
        """Retransmit (or give up on) every transfer whose deadline passed."""
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
                send(active, active.transfer.on_timeout(now))
            except Exception:
                self._internal_error(active, "retransmission")
            self.settle(active, now)

    def abort_all(self, message: str) -> None:
        """End every open transfer with ERROR 0 ``message`` (shutdown)."""
        now = time.monotonic()
        for active in list(self.active):
            if active.fast:
                try:
                    self._sync(active)  # so the event counts the bytes the C set moved
                except Exception:
                    log.exception("TFTP transfer to %s: fast-path state lost at shutdown",
                                  active.transfer.client[0])
            send(active, active.transfer.abort(ErrorCode.NOT_DEFINED, message))
            self.finish(active, now)

    def finish(self, active: ActiveTransfer, now: float) -> None:
        """Close a transfer's socket and file, give its place in the table back, and report it."""
        if active.closed:
            return
        active.closed = True
        self.active.discard(active)
        transfer = active.transfer
        last = self.by_client.get(transfer.client) is active
        if last:
            del self.by_client[transfer.client]
        self._table.release(self._loop, transfer.client, owner=last)
        fd = active.sock.fileno()
        self.by_fd.pop(fd, None)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poller.remove(fd)
        active.sock.close()
        active.source.close()
        report(self._recorder, transfer.client, transfer.request.filename,
               transfer.outcome or Outcome.FAILED, sent=transfer.bytes_acked, size=transfer.size,
               options=transfer.request.options, negotiated=transfer.negotiation.accepted,
               duration=now - active.started, error=transfer.error, retransmits=transfer.retransmits,
               wall=active.wall)
