"""The Flask application: ``boot`` (machine-facing) now; ``api`` and ``ui`` blueprints plug in here.

:func:`create_app` takes the daemon's :class:`~netboot.runtime.Runtime`, so the app, the CLI and the tests
share one composition of config, store and recorder.
"""

from __future__ import annotations

from flask import Flask

from netboot.runtime import Runtime


def create_app(runtime: Runtime) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    app.extensions["netboot"] = runtime
    from netboot.webapp.boot import boot

    app.register_blueprint(boot)
    return app


def runtime_of(app: Flask) -> Runtime:
    runtime: Runtime = app.extensions["netboot"]
    return runtime
