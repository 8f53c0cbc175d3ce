"""The DNS transport: dnslib's UDP server and netboot's TCP server around :class:`netboot.dns.HostResolver`.

UDP is dnslib's (a short-lived thread per datagram); TCP is :class:`~netboot.servers.dns_tcp.TcpDnsServer`,
because dnslib's keeps a thread per connection for as long as the client likes.
"""

from __future__ import annotations

import errno
import logging
import threading
from typing import Any

from dnslib.server import DNSLogger, DNSServer

from netboot.dns import HostResolver
from netboot.servers.dns_tcp import TcpDnsServer

log = logging.getLogger("netboot.dns")

_PICKS = 8


class _Logger(DNSLogger):  # type: ignore[misc]
    """dnslib prints every query to stdout by default; log errors only, per query at DEBUG."""

    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-data,-recv,-send", prefix=False)

    def log_request(self, handler: Any, request: Any) -> None:
        log.debug("query from %s: %s", handler.client_address[0], request.q)

    def log_error(self, handler: Any, e: Any) -> None:
        log.warning("bad DNS request from %s: %s", handler.client_address[0], e)


class DnsServer:
    """UDP and TCP on ``host:port``; a TCP client gets ``tcp_timeout`` seconds for its query and at most
    ``tcp_connections`` are open at once (see :mod:`netboot.servers.dns_tcp`)."""

    def __init__(self, resolver: HostResolver, host: str, port: int, *, tcp_timeout: float = 10.0,
                 tcp_connections: int = 64) -> None:
        # Port 0 picks a free UDP port; the same TCP number may be taken (another server's connection), so
        # a pick is retried a few times. A fixed port that is taken is the admin's error and is raised.
        for attempt in range(_PICKS if port == 0 else 1):
            self._udp = DNSServer(resolver, address=host, port=port, logger=_Logger())
            try:
                self._tcp = TcpDnsServer(resolver, host, self._udp.server.server_address[1],
                                         timeout=tcp_timeout, max_connections=tcp_connections)
                break
            except OSError as e:
                self._udp.server.server_close()
                if e.errno != errno.EADDRINUSE or attempt == _PICKS - 1 or port != 0:
                    raise
        self._tcp_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._udp.server.server_address[1])

    def serve_forever(self) -> None:
        self._tcp_thread = threading.Thread(target=self._tcp.serve_forever, name="dns-tcp", daemon=True)
        self._tcp_thread.start()
        self._udp.server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        self._udp.server.shutdown()
        if self._tcp_thread is not None:
            self._tcp.shutdown()

    def close(self) -> None:
        self._udp.server.server_close()
        self._tcp.close()
