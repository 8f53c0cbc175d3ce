"""The HTTP transport: waitress serving the Flask app in the daemon's thread model, inside set limits.

waitress rather than Werkzeug's development server: it is a production WSGI server in pure Python, with a
bounded thread pool, and it stops cleanly from another thread. Its design already keeps slow clients off the
worker threads (a request reaches a thread only once it has fully arrived, and a file response is sent by
the I/O loop, not by a thread), so what an install network can exhaust is connections, and its defaults
(1 GiB bodies, 100 connections idle up to 120 s) let a few clients do that. The limits come from
:class:`~netboot.config.HttpConfig` (``http:`` in ``netboot.yaml``, documented in ``docs/configuration.md``)
and are waitress's own settings wherever waitress has one:

* ``max_body`` -> ``max_request_body_size``: a ``Content-Length`` above it gets 413 as soon as the headers
  are parsed and the connection is closed, so the body is never read (a chunked body is cut when it passes
  the limit).
* ``max_header`` -> ``max_request_header_size``: a request line plus headers above it gets 431.
* ``connection_limit`` -> ``connection_limit``: past it waitress stops accepting and new connections wait in
  the kernel's listen backlog.
* ``idle_timeout`` -> ``channel_timeout``: a connection with no byte in or out for this long is closed; the
  sweep runs every :data:`SWEEP_INTERVAL` (``cleanup_interval``, 30 s by default, would let a cut come
  that much late).
* ``asyncore_use_poll``: waitress's I/O loop uses ``select()`` by default, which fails outright on a
  descriptor numbered 1024 or more; with a connection limit in the thousands that is reached, so ``poll()``.
* ``clear_untrusted_proxy_headers`` off and no ``trusted_proxy``: the app's
  :class:`~netboot.webapp.proxy.TrustedProxies` alone decides whose ``X-Forwarded-*`` to believe (it knows
  subnets and chains; waitress trusts one address), and removes them from everyone else.

Left at waitress's defaults on purpose: ``inbuf_overflow`` (a body past 512 KiB is spooled to a temporary
file, so a connection holds at most ``max_body`` on disk, not in memory), ``outbuf_overflow`` and
``outbuf_high_watermark`` (the same for responses; files are sent from the file itself), ``backlog`` (1024
waiting connections) and ``channel_request_lookahead`` (0: no pipelined request is read ahead of its
predecessor's answer).

Three things waitress cannot do, done here:

* A file response (a kernel, an initrd, an image: what Flask's ``send_file`` hands waitress as its
  ``wsgi.file_wrapper``) goes out by ``sendfile(2)`` (:meth:`_Channel._flush_some`): the kernel copies
  from the page cache to the socket, where waitress reads each chunk into Python and writes it back. The
  loop is waitress's own (``HTTPChannel._flush_some``), with only the send of a file buffer changed; a
  Range answer, a generated body and the headers go as before.

* A request still arriving ``idle_timeout`` after its first byte is cut (:class:`_Server`). waitress times
  only idleness, so a client sending a header byte every few seconds ("slowloris") would hold its
  connection, and with enough of them every connection, for ever.
* The descriptors the connection limit needs are made available (:func:`_descriptors_for`): a connection
  refused for want of one fails late and far from its cause (an ``accept()`` error in a log).
"""

from __future__ import annotations

import logging
import os
import resource
import stat
import time
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from netboot.config import HttpConfig
from netboot.logutil import RateLimited
from netboot.servers.wsgi import WsgiApp

log = logging.getLogger("netboot.http")
limited = RateLimited(log)

#: seconds between two sweeps for idle or too slow connections: a cut happens at most this late
SWEEP_INTERVAL = 1
#: descriptors a connection may hold: its socket, a spooled request or response body, the file it is sent
DESCRIPTORS_PER_CONNECTION = 3
#: descriptors kept for everything else in the daemon (database, TFTP, DHCP, logs)
DESCRIPTORS_RESERVED = 256
#: seconds :meth:`HttpServer.shutdown` waits for requests being served to finish
SHUTDOWN_GRACE = 2
#: most bytes one sendfile call is asked for (it sends what the socket buffer takes, then returns)
SENDFILE_CHUNK = 4 << 20


class _TimedParser(HTTPRequestParser):  # type: ignore[misc]
    """waitress's request parser, remembering when the request's first bytes arrived.

    waitress makes one per request, when its first bytes are received (``HTTPChannel.received``).
    """

    def __init__(self, adj: Adjustments) -> None:
        super().__init__(adj)
        self.started = time.time()


def _sendfile_descriptor(outbuf: object) -> int | None:
    """The descriptor of the regular file behind a file response's buffer; None for any other buffer."""
    if not isinstance(outbuf, ReadOnlyFileBasedBuffer):
        return None
    try:
        fd = int(outbuf.file.fileno())
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


class _Channel(HTTPChannel):  # type: ignore[misc]
    parser_class = _TimedParser

    def _flush_some(self, do_close: bool = True) -> bool:
        """Send what the socket takes now (waitress's loop; a file buffer goes by :meth:`_sendfile`)."""
        sent = 0
        while True:
            outbuf = self.outbufs[0]
            outbuflen = outbuf.__len__()  # not len(): a file's size may not fit a C ssize_t on 32 bits
            fd = _sendfile_descriptor(outbuf) if outbuflen else None
            stalled = False
            while outbuflen > 0:
                if fd is not None:
                    num_sent = self._sendfile(fd, outbuf, outbuflen, do_close)
                else:
                    num_sent = self.send(outbuf.get(self.sendbuf_len), do_close=do_close)
                    if num_sent:
                        outbuf.skip(num_sent, True)
                if not num_sent:
                    stalled = True  # the socket is full (or gone): the loop comes back when writable
                    break
                outbuflen -= num_sent
                sent += num_sent
                self.total_outbufs_len -= num_sent
            if stalled:
                break
            if len(self.outbufs) > 1:
                done = self.outbufs.pop(0)
                try:
                    done.close()
                except Exception:
                    self.logger.exception("Unexpected error when closing an outbuf")
            else:
                break  # the last outbuf is always the writable one: caught up
        if sent:
            self.last_activity = time.time()
            return True
        return False

    def _sendfile(self, fd: int, outbuf: Any, remaining: int, do_close: bool) -> int:
        """One ``sendfile`` of the buffer's next bytes; advances the buffer; 0 when nothing could go."""
        offset = outbuf.file.tell()
        try:
            num_sent = os.sendfile(self.socket.fileno(), fd, offset, min(remaining, SENDFILE_CHUNK))
        except BlockingIOError:
            return 0
        except OSError as why:
            if why.errno in wasyncore._DISCONNECTED:
                if do_close:
                    self.handle_close()
                return 0
            raise
        if num_sent == 0:  # end of file before Content-Length: the file shrank; the answer cannot be whole
            limited.warning("closing the HTTP connection to %s: the file being sent shrank",
                            self.addr[0] if self.addr else "?")
            self.handle_close()
            return 0
        outbuf.skip(num_sent, True)
        return int(num_sent)


class _Server(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server, also cutting a connection whose request is still arriving after the timeout."""

    channel_class = _Channel

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # waitress's own: connections idle for channel_timeout
        cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            partial = channel.request
            # a channel with a request being served is left alone (as waitress does): cutting it would cut
            # the response; its next request is timed from its own first byte
            if partial is not None and not partial.completed and not channel.requests \
                    and partial.started < cutoff and not channel.will_close:
                limited.warning("closing the HTTP connection from %s: request not complete after %d s",
                                channel.addr[0] if channel.addr else "?", self.adj.channel_timeout)
                channel.will_close = True


def _descriptors_for(connection_limit: int) -> int:
    """Raise the soft descriptor limit so ``connection_limit`` connections fit; return the limit that fits.

    Only the soft limit is raised, up to the hard one (no privilege needed); when even that is too low the
    connection limit is lowered, with a warning that says so, rather than failing accepts later.
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


def adjustments(host: str, port: int, limits: HttpConfig, threads: int | None = None) -> Adjustments:
    """waitress's settings for ``limits`` (see the module docs for each)."""
    return Adjustments(
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
        asyncore_use_poll=True,
        clear_untrusted_proxy_headers=False,
    )


class HttpServer:
    """waitress on ``host:port`` serving ``app`` within ``limits`` (``threads`` overrides theirs)."""

    def __init__(self, app: WsgiApp, host: str, port: int, *, limits: HttpConfig | None = None,
                 threads: int | None = None) -> None:
        self.app = app
        adj = adjustments(host, port, limits or HttpConfig(), threads)
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adj.threads)
        # built directly rather than by waitress.create_server, which has no way to pass the channel class
        self._server: Any = _Server(self.app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Close the listener and every open connection; :meth:`serve_forever` returns within a second."""
        wasyncore.close_all(self._server._map)
        self._server.task_dispatcher.shutdown(timeout=SHUTDOWN_GRACE)
