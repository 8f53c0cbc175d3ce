"""The HTTP transport: waitress serving the Flask app in the daemon's thread model.

waitress rather than Werkzeug's development server: it is a production WSGI server in pure Python, with a
bounded thread pool, and it stops cleanly from another thread.
"""

from __future__ import annotations

from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from netboot.servers.wsgi import WsgiApp


class HttpServer:
    def __init__(self, app: WsgiApp, host: str, port: int, *, threads: int = 16) -> None:
        self.app = app
        self._server: Any = create_server(
            self.app,
            host=host,
            port=port,
            threads=threads,
            ident="netboot",
            clear_untrusted_proxy_headers=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        self._server.run()

    def shutdown(self) -> None:
        """Close the listener and every open connection; :meth:`serve_forever` returns within a second."""
        wasyncore.close_all(self._server._map)
