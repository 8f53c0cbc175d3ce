"""The server side of a TFTP read transfer, with no I/O; and, re-exported, the codec and negotiation.

Three layers, h11-style:

* the codec (:mod:`netboot.protocol.tftp_packets`): :func:`decode` turns a datagram into one frozen packet
  dataclass (or raises :class:`~netboot.protocol.errors.DecodeError`, the only error it raises);
  :func:`encode` is its inverse.
* option negotiation (:mod:`netboot.protocol.tftp_options`): :func:`negotiate` against the server's
  :class:`Limits`.
* :class:`ReadTransfer` (here): one RRQ being served. The transport feeds it datagrams and the current time
  and sends what it returns; it never touches a socket, a clock or a logger, so every RFC rule (1350 TIDs
  and retransmission, 2347 OACK, 2348 ``blksize``, 2349 ``tsize``/``timeout``, 7440 ``windowsize``) is
  tested packet by packet without a network.

File data comes from a :class:`Source` the transport hands in (``bytes`` rendered on request, or a file read
with ``pread``); the machine only asks it for byte ranges.
"""

from __future__ import annotations

import enum
from typing import Protocol

from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp_options import Limits, Negotiation, negotiate
from netboot.protocol.tftp_packets import (
    DEFAULT_BLKSIZE,
    HEADER,
    MAX_BLKSIZE,
    MAX_TIMEOUT,
    MAX_WINDOWSIZE,
    MIN_BLKSIZE,
    MIN_TIMEOUT,
    OP_ACK,
    OP_DATA,
    OP_ERROR,
    Ack,
    Address,
    Buffer,
    Data,
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    Options,
    Packet,
    ReadRequest,
    Send,
    WriteRequest,
    blksize_for_mtu,
    datagrams,
    decode,
    encode,
    error_datagram,
    to_netascii,
)

__all__ = [
    # the codec and negotiation, importable from here as before they had modules of their own
    "DEFAULT_BLKSIZE",
    "MAX_BLKSIZE",
    "MAX_TIMEOUT",
    "MAX_WINDOWSIZE",
    "MIN_BLKSIZE",
    "MIN_TIMEOUT",
    "Ack",
    "Address",
    "Buffer",
    "BytesSource",
    "Data",
    "Error",
    "ErrorCode",
    "Limits",
    "Negotiation",
    "Opcode",
    "OptionAck",
    "Options",
    "Outcome",
    "Packet",
    "ReadRequest",
    "ReadTransfer",
    "Send",
    "Source",
    "WriteRequest",
    "blksize_for_mtu",
    "datagrams",
    "decode",
    "encode",
    "error_datagram",
    "negotiate",
    "to_netascii",
]


class Source(Protocol):
    """File content for one transfer: its size and byte ranges of it.

    ``read`` may return fewer bytes than asked only if the file shrank underneath; the transfer then fails
    cleanly instead of sending a truncated file.
    """

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> Buffer: ...

    def close(self) -> None: ...


class BytesSource:
    """A :class:`Source` over content already in memory (rendered per-MAC configs, netascii copies)."""

    __slots__ = ("_view", "size")

    def __init__(self, data: Buffer) -> None:
        self._view = memoryview(data).cast("B")
        self.size = len(self._view)

    def read(self, offset: int, length: int) -> memoryview:
        return self._view[offset : offset + length]

    def close(self) -> None:
        """Nothing to release: slices still being sent keep the buffer alive."""


class Outcome(enum.Enum):
    COMPLETE = "complete"  # the last block was acknowledged
    ABORTED = "aborted"  # the client sent ERROR (OVMF's size probe ends like this)
    TIMED_OUT = "timed-out"  # retries exhausted without an answer
    FAILED = "failed"  # the server gave up (file changed, shutdown)
    REFUSED = "refused"  # the request itself was answered with ERROR (used by the transport)


_OACK_SENT, _SENDING, _DONE = 1, 2, 3


class ReadTransfer:
    """Server side of one RRQ: OACK, then windows of DATA driven by ACKs and timeouts.

    Call :meth:`start` once, then :meth:`receive` for every datagram arriving on the transfer's own port and
    :meth:`on_timeout` once ``now`` reaches :attr:`deadline`. Each returns the datagrams to send.

    Blocks are counted from 1 with an unbounded integer internally; only the wire number wraps at 65536
    (to 0, as tftp-hpa, atftp and curl expect), so files larger than 65535 blocks work.

    Sorcerer's apprentice (RFC 1123 4.2.3.1): a duplicate ACK never triggers a retransmission in lock-step.
    With a window, an ACK for the block before the window means the window's first block was lost
    (RFC 7440), and it is honoured once, but not after a window that was itself a retransmission, whose
    stale duplicates would otherwise double every following window.
    """

    __slots__ = (
        "_base",
        "_base_rto",
        "_blksize",
        "_client",
        "_dup_ok",
        "_last",
        "_next",
        "_oack",
        "_phase",
        "_resent",
        "_retries",
        "_retries_left",
        "_rto",
        "_rto_cap",
        "_source",
        "_windowsize",
        "acked_blocks",
        "deadline",
        "error",
        "finished",
        "ignored",
        "negotiation",
        "outcome",
        "request",
        "retransmits",
        "size",
    )

    def __init__(self, request: ReadRequest, source: Source, client: Address, limits: Limits) -> None:
        self.request = request
        self.size = source.size
        self.negotiation = negotiate(request.options, self.size, limits)
        self.outcome: Outcome | None = None
        #: (code, message) of the ERROR that ended the transfer, sent or received.
        self.error: tuple[int, str] | None = None
        self.retransmits = 0
        self.ignored = 0
        self.acked_blocks = 0
        #: when :meth:`on_timeout` must be called; None once finished (plain attributes: read per packet)
        self.deadline: float | None = None
        self.finished = False
        self._source = source
        self._client = client
        self._blksize = self.negotiation.blksize
        self._windowsize = self.negotiation.windowsize
        self._last = self.size // self._blksize + 1  # a full last block is followed by an empty one
        self._base = 1  # first unacknowledged block
        self._next = 1  # next block to send
        self._base_rto = self._rto = self.negotiation.timeout
        self._rto_cap = max(limits.max_timeout, self.negotiation.timeout)
        self._retries = self._retries_left = limits.retries
        self._dup_ok = False
        self._resent = False
        self._phase = 0
        self._oack = encode(OptionAck(self.negotiation.accepted))

    # ------------------------------------------------------------------ what the transport looks at

    @property
    def client(self) -> Address:
        return self._client

    @property
    def bytes_acked(self) -> int:
        """Payload bytes the client has acknowledged (the whole size once complete)."""
        return min(self.acked_blocks * self._blksize, self.size)

    # ------------------------------------------------------------------------------------- inputs

    def start(self, now: float) -> list[Send]:
        """First packet(s): the OACK when any option was accepted, else the first DATA window."""
        if self._phase:
            raise RuntimeError("transfer already started")
        if self.negotiation.accepted:
            self._phase = _OACK_SENT
            self.deadline = now + self._rto
            return [(self._oack, self._client, 0)]
        self._phase = _SENDING
        return self._send_window(now)

    def receive(self, datagram: Buffer, addr: Address, now: float) -> list[Send]:
        """One datagram that arrived on this transfer's port from ``addr``."""
        client = self._client
        if addr[1] != client[1] or addr[0] != client[0]:
            return self._stranger(datagram, addr)
        if self.finished:
            return []
        if len(datagram) >= 4 and datagram[1] == OP_ACK and datagram[0] == 0:
            return self._on_ack((datagram[2] << 8) | datagram[3], now)
        try:
            packet = decode(datagram)
        except DecodeError:
            self.ignored += 1
            return []
        if isinstance(packet, Error):
            self._finish(Outcome.ABORTED, (packet.code, packet.message))
        else:
            self.ignored += 1  # DATA, RRQ, OACK from our client make no sense in a read; don't die for them
        return []

    def on_timeout(self, now: float) -> list[Send]:
        """Retransmit the OACK or the window from the first unacknowledged block, with backoff."""
        if self.deadline is None or now < self.deadline:
            return []
        if self._retries_left <= 0:
            self._finish(Outcome.TIMED_OUT, None)
            return []
        self._retries_left -= 1
        self.retransmits += 1
        self._rto = min(self._rto * 2, self._rto_cap)
        if self._phase == _OACK_SENT:
            self.deadline = now + self._rto
            return [(self._oack, self._client, 0)]
        self._next = self._base
        self._resent, self._dup_ok = True, False
        return self._send_window(now)

    def fast_path_position(self) -> tuple[int, int, int, int] | None:
        """``(sent, last, blksize, windowsize)`` while DATA flows and block ``sent`` was the last one sent.

        For a transport fast path (``netboot/servers/_tftp_fast.c``): in this state an ACK of block
        ``sent`` from the client, when that is not ``last``, has exactly one correct answer, the next
        window (blocks ``sent + 1`` up to ``sent + windowsize``, never past ``last``; one block in
        lock-step). The fast path may answer such ACKs itself and report them through
        :meth:`fast_path_acked`; every other datagram must still come to :meth:`receive`. None in any
        other state (not started, OACK pending, finished).
        """
        if self._phase == _SENDING and self._next > self._base:
            return self._next - 1, self._last, self._blksize, self._windowsize
        return None

    def fast_path_acked(self, acked: int, now: float) -> None:
        """A fast path answered ACKs of whole windows, the last of them for block ``acked``.

        Leaves the machine exactly where :meth:`_on_ack` would have for the same ACKs: progress made
        (fresh retries, base timeout), the window after ``acked`` outstanding with its deadline from
        ``now``, and a duplicate of this ACK honoured once (RFC 7440) unless only one window was
        answered and it was a retransmission.
        """
        position = self.fast_path_position()
        if position is None:
            raise RuntimeError(f"fast path reported block {acked} while no DATA was outstanding")
        sent, last, _, windowsize = position
        if not sent <= acked < last or (acked - sent) % windowsize:
            raise RuntimeError(f"fast path reported block {acked} in state {position}")
        self._dup_ok = windowsize > 1 and (acked > sent or not self._resent)
        self._resent = False
        self.acked_blocks = acked
        self._base = acked + 1
        self._next = min(acked + 1 + windowsize, last + 1)
        self._progress()
        self.deadline = now + self._rto

    def abort(self, code: ErrorCode | int, message: str) -> list[Send]:
        """End the transfer from the server side (shutdown, internal error) and tell the client why."""
        if self.finished:
            return []
        self._finish(Outcome.FAILED, (int(code), message))
        return [(error_datagram(code, message), self._client, 0)]

    # ------------------------------------------------------------------------------------ internals

    def _stranger(self, datagram: Buffer, addr: Address) -> list[Send]:
        """RFC 1350: wrong TID gets ERROR 5 and leaves the transfer alone; never answer an ERROR with one."""
        if len(datagram) >= 2 and datagram[0] == 0 and datagram[1] == OP_ERROR:
            return []
        return [(error_datagram(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr, 0)]

    def _on_ack(self, wire_block: int, now: float) -> list[Send]:
        if self._phase != _SENDING:
            return self._on_oack_ack(wire_block, now)
        # Unwrap the 16-bit number into base-1 .. base+65534; anything not yet sent is stale or bogus.
        base = self._base
        block = base - 1 + ((wire_block - base + 1) & 0xFFFF)
        if block >= self._next:
            self.ignored += 1
            return []
        if block < base:  # a duplicate of the previous ACK
            if not self._dup_ok:
                return []
            self._dup_ok, self._resent = False, True
            self._next = base
            return self._send_window(now)
        self.acked_blocks = block
        if block == self._last:
            self._finish(Outcome.COMPLETE, None)
            return []
        rewind = block + 1 < self._next  # a gap inside the window: resend from the first missing block
        self._dup_ok = self._windowsize > 1 and not (self._resent or rewind)
        self._resent = rewind
        self._base = self._next = block + 1
        self._progress()
        return self._send_window(now)

    def _on_oack_ack(self, wire_block: int, now: float) -> list[Send]:
        if self._phase != _OACK_SENT or wire_block != 0:
            self.ignored += 1
            return []
        self._phase = _SENDING
        self._progress()
        return self._send_window(now)

    def _progress(self) -> None:
        """The client is alive: a fresh retry budget and the base timeout again."""
        self._retries_left = self._retries
        self._rto = self._base_rto

    def _send_window(self, now: float) -> list[Send]:
        """DATA from ``_next`` to the end of the window starting at ``_base``, from one read of the source.

        A window leaves as one buffer of back-to-back DATA datagrams (one copy of the file data, made by
        the join), so the transport can send it with one system call. Runs once per window: plain
        conditionals instead of min()/max() calls are measurably cheaper here.
        """
        start, blksize = self._next, self._blksize
        end = self._base + self._windowsize
        if end > self._last:
            end = self._last + 1
        offset = (start - 1) * blksize
        length = (end - start) * blksize
        if length > self.size - offset:
            length = self.size - offset  # never negative: block ``_last`` starts at or before the end
        data = self._source.read(offset, length) if length else b""
        if len(data) != length:
            return self.abort(ErrorCode.NOT_DEFINED, "file changed while being sent")
        self._next = end
        self.deadline = now + self._rto
        if end - start == 1:
            return [(HEADER.pack(OP_DATA, start & 0xFFFF) + data, self._client, 0)]
        pack, view = HEADER.pack, memoryview(data)
        parts: list[Buffer] = []
        pos = 0
        for block in range(start, end):
            parts.append(pack(OP_DATA, block & 0xFFFF))
            parts.append(view[pos : pos + blksize])
            pos += blksize
        return [(b"".join(parts), self._client, blksize + 4)]

    def _finish(self, outcome: Outcome, error: tuple[int, str] | None) -> None:
        self._phase = _DONE
        self.finished = True
        self.deadline = None
        self.outcome = outcome
        self.error = error
