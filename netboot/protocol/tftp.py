"""TFTP wire codec and the server side of a read transfer, with no I/O.

Two layers, h11-style:

* the codec: :func:`decode` turns a datagram into one frozen packet dataclass (or raises
  :class:`~netboot.protocol.errors.DecodeError`, the only error it raises); :func:`encode` is its inverse.
* :class:`ReadTransfer`: one RRQ being served. The transport feeds it datagrams and the current time and
  sends what it returns; it never touches a socket, a clock or a logger, so every RFC rule (1350 TIDs and
  retransmission, 2347 OACK, 2348 ``blksize``, 2349 ``tsize``/``timeout``, 7440 ``windowsize``) is tested
  packet by packet without a network.

File data comes from a :class:`Source` the transport hands in (``bytes`` rendered on request, or a file read
with ``pread``); the machine only asks it for byte ranges.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from netboot.protocol.errors import DecodeError

Buffer: TypeAlias = bytes | bytearray | memoryview
#: A socket address as the socket module gives it: ``(host, port)`` or IPv6's 4-tuple.
Address: TypeAlias = tuple[Any, ...]
#: Something to send: ``(data, destination, segment)``. With ``segment`` 0, ``data`` is one datagram;
#: otherwise it is consecutive datagrams of ``segment`` bytes (the last may be shorter), laid out so the
#: transport can give a whole window to the kernel in one UDP GSO call (see :func:`datagrams`).
Send: TypeAlias = tuple[Buffer, Address, int]
#: Option (name, value) pairs in wire order; names lower-cased.
Options: TypeAlias = tuple[tuple[str, str], ...]

MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464
DEFAULT_BLKSIZE = 512
MAX_WINDOWSIZE = 65535
MIN_TIMEOUT, MAX_TIMEOUT = 1, 255

_HEADER = struct.Struct("!HH")
_DATA, _ACK, _ERROR = 3, 4, 5  # plain ints on the per-block path: IntEnum arithmetic is slower
_DIGITS = re.compile(r"[0-9]{1,10}")


class Opcode(enum.IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(enum.IntEnum):
    """RFC 1350 error codes, plus RFC 2347's 8 (option negotiation refused)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


# --------------------------------------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """RRQ. ``filename`` keeps undecodable bytes as surrogates so it round-trips to the same path bytes."""

    filename: str
    mode: str = "octet"
    options: Options = ()

    def option(self, name: str) -> str | None:
        """The first value sent for ``name`` (case-insensitive), as RFC 2347 leaves duplicates undefined."""
        return _first(self.options, name)


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """WRQ: netboot is read-only and answers every one with ERROR 2."""

    filename: str
    mode: str = "octet"
    options: Options = ()


@dataclass(frozen=True, slots=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    block: int


@dataclass(frozen=True, slots=True)
class Error:
    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class OptionAck:
    options: Options


Packet: TypeAlias = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck


def _first(options: Options, name: str) -> str | None:
    name = name.lower()
    return next((value for key, value in options if key == name), None)


def decode(datagram: Buffer) -> Packet:
    """Parse one TFTP datagram. Raises :class:`DecodeError` and nothing else."""
    data = bytes(datagram)
    if len(data) < 2:
        raise DecodeError(f"TFTP datagram of {len(data)} bytes is shorter than an opcode")
    opcode = int.from_bytes(data[:2], "big")
    body = data[2:]
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        return _decode_request(opcode, body)
    if opcode in (Opcode.DATA, Opcode.ACK):
        if len(body) < 2:
            raise DecodeError(f"TFTP {Opcode(opcode).name} without a block number")
        block = int.from_bytes(body[:2], "big")
        # Trailing bytes after an ACK's block number are padding some stacks add; ignore them.
        return Data(block, body[2:]) if opcode == Opcode.DATA else Ack(block)
    if opcode == Opcode.ERROR:
        if len(body) < 2:
            raise DecodeError("TFTP ERROR without an error code")
        message = body[2:].split(b"\0", 1)[0]
        return Error(int.from_bytes(body[:2], "big"), message.decode("utf-8", "replace"))
    if opcode == Opcode.OACK:
        return OptionAck(_decode_options(body.split(b"\0")))
    raise DecodeError(f"unknown TFTP opcode {opcode}")


def _decode_request(opcode: int, body: bytes) -> ReadRequest | WriteRequest:
    """Filename and mode must be NUL-terminated; options are best effort (RFC 2347: skip what is unusable)."""
    fields = body.split(b"\0")
    if len(fields) < 3:
        what = "filename" if len(fields) < 2 else "mode"
        raise DecodeError(f"TFTP request {what} is not NUL-terminated")
    filename = fields[0].decode("utf-8", "surrogateescape")
    mode = fields[1].decode("latin-1").lower()
    # fields[-1] is whatever follows the last NUL: empty when well formed, an unterminated fragment otherwise.
    options = _decode_options(fields[2:])
    cls = ReadRequest if opcode == Opcode.RRQ else WriteRequest
    return cls(filename, mode, options)


def _decode_options(fields: list[bytes]) -> Options:
    """Pair up NUL-separated name/value fields; drop an unterminated tail, a lone name and empty names."""
    complete = fields[:-1]
    pairs = []
    for i in range(0, len(complete) - 1, 2):
        name = complete[i].decode("latin-1").lower()
        if name:
            pairs.append((name, complete[i + 1].decode("latin-1")))
    return tuple(pairs)


def encode(packet: Packet) -> bytes:
    """Serialise a packet. Block numbers and error codes must fit 16 bits (``struct.error`` otherwise)."""
    match packet:
        case ReadRequest() | WriteRequest():
            opcode = Opcode.RRQ if isinstance(packet, ReadRequest) else Opcode.WRQ
            head = opcode.to_bytes(2, "big") + packet.filename.encode("utf-8", "surrogateescape") + b"\0"
            return head + packet.mode.encode("latin-1") + b"\0" + _encode_options(packet.options)
        case Data(block, payload):
            return _HEADER.pack(Opcode.DATA, block) + payload
        case Ack(block):
            return _HEADER.pack(Opcode.ACK, block)
        case Error(code, message):
            return _HEADER.pack(Opcode.ERROR, code) + message.encode("utf-8", "replace") + b"\0"
        case OptionAck(options):
            return Opcode.OACK.to_bytes(2, "big") + _encode_options(options)
    raise TypeError(f"not a TFTP packet: {packet!r}")


def _encode_options(options: Options) -> bytes:
    return b"".join(k.encode("latin-1") + b"\0" + v.encode("latin-1") + b"\0" for k, v in options)


def datagrams(send: Send) -> list[Buffer]:
    """The individual datagrams of a :data:`Send` (zero-copy slices when it holds a window)."""
    data, _, segment = send
    if not segment or len(data) <= segment:
        return [data]
    view = memoryview(data)
    return [view[pos : pos + segment] for pos in range(0, len(view), segment)]


def error_datagram(code: ErrorCode | int, message: str) -> bytes:
    """The bytes of an ERROR packet (the transport answers bad requests with these)."""
    return encode(Error(int(code), message))


def to_netascii(data: Buffer) -> bytes:
    """RFC 764 NVT line endings for ``netascii`` mode: CR becomes CR NUL, LF becomes CR LF."""
    return bytes(data).replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def blksize_for_mtu(mtu: int, *, ipv6: bool = False) -> int:
    """Largest ``blksize`` whose DATA fits one ``mtu``-sized IP packet (1500 -> 1468, what OVMF asks)."""
    overhead = (40 if ipv6 else 20) + 8 + 4
    return max(MIN_BLKSIZE, min(MAX_BLKSIZE, mtu - overhead))


# ----------------------------------------------------------------------------------------- negotiation


@dataclass(frozen=True, slots=True)
class Limits:
    """Server policy for every transfer.

    ``max_blksize`` is where a path-MTU clamp goes (see :func:`blksize_for_mtu`); ``timeout`` is the first
    retransmission delay when the client negotiates none, doubled per retry up to ``max_timeout`` (or the
    client's own value if larger), for at most ``retries`` retransmissions of the same packet or window.
    """

    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64
    timeout: float = 1.0
    max_timeout: float = 8.0
    retries: int = 5


@dataclass(frozen=True, slots=True)
class Negotiation:
    """What a transfer will use, and the options to acknowledge (none: no OACK, DATA 1 straight away)."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float = 1.0
    accepted: Options = ()


def _number(value: str, low: int, high: int) -> int | None:
    """A plain decimal in ``low..high`` or None: ``abc``, ``1_468``, `` 8`` and ``-1`` are all malformed."""
    if not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def negotiate(options: Options, size: int, limits: Limits) -> Negotiation:
    """Apply RFC 2347/2348/2349/7440 to a request's options. Unknown or malformed options are left out."""
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, limits.timeout
    accepted: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in options:
        if name in seen:
            continue
        seen.add(name)
        if name == "blksize" and (asked := _number(value, MIN_BLKSIZE, 10**10)) is not None:
            blksize = max(MIN_BLKSIZE, min(asked, MAX_BLKSIZE, limits.max_blksize))
            accepted.append((name, str(blksize)))
        elif name == "tsize" and size > 0 and _number(value, 0, 10**10) is not None:
            # Omitted for empty content: curl treats "tsize 0" in an OACK as illegal and aborts.
            accepted.append((name, str(size)))
        elif name == "timeout" and (seconds := _number(value, MIN_TIMEOUT, MAX_TIMEOUT)) is not None:
            timeout = float(seconds)
            accepted.append((name, str(seconds)))
        elif name == "windowsize" and (asked := _number(value, 1, MAX_WINDOWSIZE)) is not None:
            windowsize = max(1, min(asked, limits.max_windowsize))
            accepted.append((name, str(windowsize)))
    return Negotiation(blksize, windowsize, timeout, tuple(accepted))


# -------------------------------------------------------------------------------------- state machine


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
        if len(datagram) >= 4 and datagram[1] == _ACK and datagram[0] == 0:
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
        if len(datagram) >= 2 and datagram[0] == 0 and datagram[1] == _ERROR:
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
            return [(_HEADER.pack(_DATA, start & 0xFFFF) + data, self._client, 0)]
        pack, view = _HEADER.pack, memoryview(data)
        parts: list[Buffer] = []
        pos = 0
        for block in range(start, end):
            parts.append(pack(_DATA, block & 0xFFFF))
            parts.append(view[pos : pos + blksize])
            pos += blksize
        return [(b"".join(parts), self._client, blksize + 4)]

    def _finish(self, outcome: Outcome, error: tuple[int, str] | None) -> None:
        self._phase = _DONE
        self.finished = True
        self.deadline = None
        self.outcome = outcome
        self.error = error
