"""The HTTP transport: waitress serving the Flask app in the daemon's thread model, inside set limits.

waitress rather than Werkzeug's development server: it is a production WSGI server in pure Python, with a
bounded thread pool, and it stops cleanly from another thread. Its design already keeps slow clients off the
worker threads (a request reaches a thread only once it has fully arrived, and a file response is sent by
the I/O loop, not by a thread), so what an install network can exhaust is connections. The limits here
(:class:`~netboot.config.HttpConfig`) decide how many, for how long and how big:

* ``max_body``: a request whose ``Content-Length`` is larger gets 413 as soon as its headers are read;
  the body is never read or buffered (waitress's own default is 1 GiB, spooled to a temporary file).
* ``max_header``: a request line plus headers larger than this gets 431.
* ``connection_limit``: open connections at once; past it waitress stops accepting (new ones wait in the
  kernel's backlog), so it is set well above what booting machines need, and the descriptors it needs are
  made available (:func:`_descriptors_for`).
* ``idle_timeout``: a connection idle this long is closed (waitress's ``channel_timeout``), *and* a request
  that has not fully arrived this long after its first byte is cut (:class:`_Server`): waitress times only
  idleness, so a client sending one byte every few seconds ("slowloris") would otherwise hold its
  connection for ever.
"""

from __future__ import annotations

import logging
import resource
import time
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from netboot.config import HttpConfig
from netboot.servers.wsgi import WsgiApp

log = logging.getLogger("netboot.http")

#: seconds between two sweeps for idle or too slow connections: a cut happens at most this late
SWEEP_INTERVAL = 1
#: descriptors a connection may hold: its socket, a spooled request or response body, the file it is sent
DESCRIPTORS_PER_CONNECTION = 3
#: descriptors kept for everything else in the daemon (database, TFTP, DHCP, logs)
DESCRIPTORS_RESERVED = 256


class _TimedParser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's request parser, remembering when the request's first bytes arrived."""

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.time()


class _Channel(HTTPChannel):  # type: ignore[misc]
    parser_class = _TimedParser


class _Server(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server, also cutting a connection whose request is still arriving after the timeout."""

    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle connections
        cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            partial = channel.request
            # a channel with a request being served is left alone (as waitress does): cutting it would cut
            # the response; its next request is timed once that is done
            if partial is not None and not partial.completed and not channel.requests \
                    and partial.started < cutoff:
                log.info("closing the connection from %s: request not complete after %d s",
                         channel.addr[0] if channel.addr else "?", self.adj.channel_timeout)
                channel.will_close = True


def _descriptors_for(connection_limit: int) -> int:
    """Raise the soft descriptor limit so ``connection_limit`` connections fit; return the limit that fits.

    A connection refused for want of a descriptor fails late and far from its cause (an ``accept()`` error
    in a log), so the limit is raised up front, or the connection limit lowered with a warning that says so.
    """
    wanted = connection_limit * DESCRIPTORS_PER_CONNECTION + DESCRIPTORS_RESERVED
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return connection_limit
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    fits = max(1, (soft - DESCRIPTORS_RESERVED) // DESCRIPTORS_PER_CONNECTION)
    if fits < connection_limit:
        log.warning("http.connection-limit %d needs %d descriptors, RLIMIT_NOFILE allows %d: limiting to %d",
                    connection_limit, wanted, soft, fits)
        return fits
    return connection_limit


class HttpServer:
    """waitress on ``host:port`` serving ``app`` within ``limits`` (``threads`` overrides theirs)."""

    def __init__(self, app: WsgiApp, host: str, port: int, *, limits: HttpConfig | None = None,
                 threads: int | None = None) -> None:
        limits = limits or HttpConfig()
        self.app = app
        adj = Adjustments(
            host=host,
            port=port,
            threads=threads or limits.threads,
            ident="netboot",
            # waitress refuses a size equal to its limit: +1 makes the configured value the largest allowed
            max_request_body_size=limits.max_body + 1,
            max_request_header_size=limits.max_header + 1,
            connection_limit=_descriptors_for(limits.connection_limit),
            channel_timeout=limits.idle_timeout,
            cleanup_interval=SWEEP_INTERVAL,
            # With trusted proxies the app reads X-Forwarded-* from the ones it trusts (waitress can trust
            # only one address, not subnets), so the headers must reach it; without, they are dropped here.
            clear_untrusted_proxy_headers=not limits.trusted_proxies,
        )
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        self._server: Any = _Server(self.app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Close the listener and every open connection; :meth:`serve_forever` returns within a second."""
        wasyncore.close_all(self._server._map)
