"""The TFTP wire codec, with no I/O: a datagram to one frozen packet dataclass and back.

:func:`decode` turns a datagram into a packet (or raises :class:`~netboot.protocol.errors.DecodeError`, the
only error it raises); :func:`encode` is its inverse. What a transfer sends is a :data:`Send`: one datagram,
or a window of them laid out back to back for the transport to give the kernel at once (:func:`datagrams`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, TypeAlias

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

#: every packet's first four bytes: opcode and block number (or error code)
HEADER = struct.Struct("!HH")
#: plain ints on the per-block path: IntEnum arithmetic is slower
OP_DATA, OP_ACK, OP_ERROR = 3, 4, 5


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
            return HEADER.pack(Opcode.DATA, block) + payload
        case Ack(block):
            return HEADER.pack(Opcode.ACK, block)
        case Error(code, message):
            return HEADER.pack(Opcode.ERROR, code) + message.encode("utf-8", "replace") + b"\0"
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
