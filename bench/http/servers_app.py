"""The apps bench/http/servers.sh serves: 2 KiB from raw WSGI, and the same through a Flask route.

What an HTTP server costs before netboot does any work: the ceiling each server puts on netboot's
machine routes (docs/performance.md, "Which HTTP server").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response

BODY = b"x" * 2048


def raw(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "2048")])
    return [BODY]


flask_app = Flask(__name__)


@flask_app.get("/f")
def two_kib() -> Response:
    return Response(BODY, mimetype="application/octet-stream")
