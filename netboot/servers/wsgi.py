"""The one thing the HTTP transport needs of the web app: a WSGI callable (PEP 3333)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: ``app(environ, start_response) -> body``: what waitress serves (the Flask app from the factory)
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
