"""The DNS transport: dnslib's UDP and TCP servers around :class:`netboot.dns.HostResolver`."""

from __future__ import annotations

import logging
import threading
from typing import Any

from dnslib.server import DNSLogger, DNSServer

from netboot.dns import HostResolver

log = logging.getLogger("netboot.dns")


class _Logger(DNSLogger):  # type: ignore[misc]
    """dnslib prints every query to stdout by default; log errors only, per query at DEBUG."""

    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-data,-recv,-send", prefix=False)

    def log_request(self, handler: Any, request: Any) -> None:
        log.debug("query from %s: %s", handler.client_address[0], request.q)

    def log_error(self, handler: Any, e: Any) -> None:
        log.warning("bad DNS request from %s: %s", handler.client_address[0], e)


class DnsServer:
    def __init__(self, resolver: HostResolver, host: str, port: int) -> None:
        logger = _Logger()
        self._udp = DNSServer(resolver, address=host, port=port, logger=logger)
        self._tcp = DNSServer(resolver, address=host, port=self._udp.server.server_address[1], tcp=True,
                              logger=logger)
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return int(self._udp.server.server_address[1])

    def serve_forever(self) -> None:
        self._tcp.start_thread()
        self._udp.server.serve_forever(poll_interval=0.5)

    def shutdown(self) -> None:
        self._udp.server.shutdown()
        self._tcp.server.shutdown()

    def close(self) -> None:
        self._udp.server.server_close()
        self._tcp.server.server_close()
