"""The TFTP server's sockets: the request listener, one socket per transfer, what the loop waits with,
and the descriptor budget.

Linux only: IP_PKTINFO / IPV6_RECVPKTINFO tell which local address a request was sent to, so on a host
bound to the wildcard address each transfer (and each error reply) leaves from that same address; firmware
drops a reply from any other.
"""

from __future__ import annotations

import logging
import resource
import select
import socket
import struct
from typing import Protocol, TypeAlias

from netboot.protocol.tftp import Address, ErrorCode, error_datagram

log = logging.getLogger("netboot.tftp")

IP_PKTINFO = 8  # <linux/in.h>; Python's socket module does not export it
_PKTINFO = struct.Struct("=i4s4s")
#: ancillary space for one IP_PKTINFO or IPV6_PKTINFO message
PKTINFO_SPACE = socket.CMSG_SPACE(32)


#: what the loop's wait hands back: readable watched descriptors, and datagrams the C set did not answer
Woken: TypeAlias = tuple[list[int], list[tuple[int, bytes, tuple[str, int]]]]


class Poller(Protocol):
    """What the loop waits with: ``_tftp_fast.FastSet`` when built, else :class:`EpollPoller`."""

    def watch(self, fd: int) -> None: ...
    def remove(self, fd: int) -> None: ...
    def wait(self, timeout: float) -> Woken: ...
    def close(self) -> None: ...


class EpollPoller:
    """The pure-Python loop's wait: every transfer socket is watched, every datagram goes to Python."""

    def __init__(self) -> None:
        self._epoll = select.epoll()

    def watch(self, fd: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        self._epoll.unregister(fd)

    def wait(self, timeout: float) -> Woken:
        return [fd for fd, _ in self._epoll.poll(timeout)], []

    def close(self) -> None:
        self._epoll.close()


def open_listener(family: socket.AddressFamily, bind: tuple[str, int], receive_buffer: int,
                  reuse_port: bool) -> socket.socket:
    """The non-blocking request socket, reporting each request's destination address."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try_setsockopt(sock, socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if family == socket.AF_INET:
            try_setsockopt(sock, socket.IPPROTO_IP, IP_PKTINFO, 1)
        else:
            try_setsockopt(sock, socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.bind(bind)
    except BaseException:
        sock.close()
        raise
    return sock


def transfer_socket(family: socket.AddressFamily, host: str, fallback_host: str) -> socket.socket:
    """A non-blocking socket on a new port (the transfer's TID) on ``host``, else on ``fallback_host``."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        try:
            sock.bind((host, 0))
        except OSError:
            sock.bind((fallback_host, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def send_error(listener: socket.socket, addr: Address, source: str | None, code: ErrorCode,
               message: str) -> None:
    """ERROR from the well-known port; ``source`` (IPv4) sets the reply's source address."""
    ancillary = []
    if source:
        ancillary = [(socket.IPPROTO_IP, IP_PKTINFO, _PKTINFO.pack(0, socket.inet_aton(source), bytes(4)))]
    try:
        listener.sendmsg([error_datagram(code, message)], ancillary, 0, addr)
    except OSError as exc:
        log.debug("TFTP error reply to %s failed: %s", addr[0], exc)


def local_address(ancdata: list[tuple[int, int, bytes]]) -> str | None:
    """The address a request was sent to, from IP_PKTINFO / IPV6_PKTINFO."""
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= _PKTINFO.size:
            return socket.inet_ntoa(_PKTINFO.unpack_from(data)[1])
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            return socket.inet_ntop(socket.AF_INET6, data[:16])
    return None


def try_setsockopt(sock: socket.socket, level: int, option: int, value: int) -> None:
    """A socket option that helps but is not required (a receive buffer size, PKTINFO on odd kernels)."""
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
