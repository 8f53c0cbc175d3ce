"""Type stub for the C fast path in _tftp_fast.c (read that file for the contract)."""

from typing_extensions import Buffer

UDP_SEGMENT: int
GSO_MAX_SEGMENTS: int
GSO_MAX_BYTES: int
GSO_REFUSED: tuple[int, ...]

def pump(
    sock_fd: int,
    file_fd: int,
    client_ip: bytes,
    client_port: int,
    blksize: int,
    windowsize: int,
    size: int,
    sent: int,
    last: int,
    rounds: int,
    gso: bool,
    rbuf: Buffer,
    sbuf: Buffer,
) -> tuple[int, int, int, tuple[str, int] | None, bool]: ...
