"""DNS over TCP: one thread, a selector, a deadline per connection and a cap on how many are open.

dnslib's TCP server (``socketserver.ThreadingTCPServer``) gives every connection a thread blocked in
``recv()`` with no timeout, and has no setting for one or for a cap, so a client on the install network that
opens connections and sends nothing holds threads (and descriptors) for ever. A socket timeout in a
subclassed handler would still cost a thread per connection and restart with every byte received. Here
connections cost a socket and a small buffer, all served by one thread:

* each connection has a deadline, ``timeout`` seconds after it was opened or after its last answer: its
  whole query must have arrived by then (sending a byte at a time does not extend it), else it is closed;
* at most ``max_connections`` are open: one more closes the connection that has waited longest for its
  query, so a flood of idle connections delays no real client (its query arrives within milliseconds of
  connecting) and costs no more than ``max_connections`` sockets;
* queries on one connection are answered in order (RFC 7766 lets a client send several).

Answers come from the same resolver as UDP; they are small (one A or PTR record), so a reply the kernel
will not take at once means a client that does not read, and it is closed rather than buffered.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from dnslib import DNSError, DNSRecord

from netboot.dns import HostResolver
from netboot.logutil import RateLimited

log = logging.getLogger("netboot.dns")
limited = RateLimited(log)

#: seconds the loop sleeps at most, so a shutdown or an expired deadline is noticed this late at worst
POLL_INTERVAL = 0.5
#: TCP DNS messages start with their length in two bytes (RFC 1035 4.2.2)
LENGTH = struct.Struct("!H")


@dataclass
class _Connection:
    address: str
    deadline: float
    received: bytearray = field(default_factory=bytearray)


class TcpDnsServer:
    """Answers DNS over TCP on ``host:port`` from ``resolver`` within a timeout and a connection cap."""

    def __init__(self, resolver: HostResolver, host: str, port: int, *, timeout: float = 10.0,
                 max_connections: int = 64) -> None:
        self._resolver = resolver
        self._timeout = timeout
        self._max_connections = max(1, max_connections)
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._connections: dict[socket.socket, _Connection] = {}
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def open_connections(self) -> int:
        """Client connections open now (for tests and diagnostics)."""
        return len(self._connections)

    def serve_forever(self) -> None:
        self._stopped.clear()
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                self._expire(now)
                wait = min([POLL_INTERVAL] + [c.deadline - now for c in self._connections.values()])
                for key, _events in self._selector.select(max(0.0, wait)):
                    try:
                        if key.fileobj is self._listener:
                            self._accept()
                        else:
                            self._read(key.fileobj)  # type: ignore[arg-type]
                    except Exception as e:  # a bug met by one client must not end TCP DNS for all
                        limited.warning("DNS TCP: unexpected error: %r", e)
                        if key.fileobj is not self._listener:
                            self._drop(key.fileobj)  # type: ignore[arg-type]
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (within :data:`POLL_INTERVAL`) and wait until it has returned."""
        self._stopping.set()
        self._stopped.wait()

    def close(self) -> None:
        """Close the listener and every client connection (after :meth:`shutdown`)."""
        for sock in list(self._connections):
            self._drop(sock)
        self._selector.close()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, a reset before accept: keep serving the others
                limited.warning("DNS TCP accept failed: %s", e)
                return
            if len(self._connections) >= self._max_connections:
                oldest = min(self._connections, key=lambda s: self._connections[s].deadline)
                limited.warning("DNS TCP: %d connections open, closing the one from %s waiting longest",
                                len(self._connections), self._connections[oldest].address)
                self._drop(oldest)
            sock.setblocking(False)
            self._connections[sock] = _Connection(peer[0], time.monotonic() + self._timeout)
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        connection = self._connections.get(sock)
        if connection is None:
            return
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        connection.received += data
        while len(connection.received) >= LENGTH.size:
            (length,) = LENGTH.unpack_from(connection.received)
            end = LENGTH.size + length
            if len(connection.received) < end:
                return
            message = bytes(connection.received[LENGTH.size:end])
            del connection.received[:end]
            if not self._answer(sock, connection, message):
                self._drop(sock)
                return
            connection.deadline = time.monotonic() + self._timeout

    def _answer(self, sock: socket.socket, connection: _Connection, message: bytes) -> bool:
        """Send the reply to one query; False when the connection must be closed."""
        try:
            request = DNSRecord.parse(message)
            log.debug("query from %s (tcp): %s", connection.address, request.q)
            reply = self._resolver.resolve(request, None).pack()
        except DNSError as e:
            limited.warning("bad DNS request from %s (tcp): %s", connection.address, e)
            return False
        except Exception as e:  # a store error must not end the loop that serves every other client
            limited.warning("DNS TCP: no answer for %s: %r", connection.address, e)
            return False
        frame = LENGTH.pack(len(reply)) + reply
        try:
            return sock.send(frame) == len(frame)
        except OSError:
            return False

    def _expire(self, now: float) -> None:
        for sock in [s for s, c in self._connections.items() if c.deadline <= now]:
            log.debug("DNS TCP: closing the connection from %s, no query within %.0f s",
                      self._connections[sock].address, self._timeout)
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        self._connections.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):  # already gone when the selector was closed
            self._selector.unregister(sock)
        sock.close()
