"""The web application factory: the machine-facing routes, then Flask's ``api`` (JSON) and ``ui`` (HTML).

The machine-facing routes (:mod:`netboot.webapp.machine`) are a WSGI app in front of Flask.
:func:`create_app` takes the daemon's :class:`~netboot.runtime.Runtime`, so the app, the CLI and the tests
share one composition; blueprints reach it only through :mod:`netboot.webapp.services`.
"""

from __future__ import annotations

from flask import Flask

from netboot.runtime import Runtime
from netboot.webapp.services import EXTENSION


def create_app(runtime: Runtime) -> Flask:
    from netboot._web import web_dir

    web = web_dir()
    app = Flask(__name__, template_folder=str(web / "templates"), static_folder=str(web / "static"),
                static_url_path="/ui/static")
    # the API's largest body (a bulk registration) is far below it; the server refuses more before reading
    app.config["MAX_CONTENT_LENGTH"] = runtime.config.http.max_body
    app.extensions[EXTENSION] = runtime
    from netboot.webapp.machine import MachineRoutes
    from netboot.webapp.proxy import TrustedProxies

    # the machine-facing routes answer before Flask (netboot.webapp.machine says why); X-Forwarded-* is
    # believed only from the configured proxies and removed from everyone else's requests, for both
    machine = MachineRoutes(runtime, app.wsgi_app, max_body=runtime.config.http.max_body)
    app.wsgi_app = TrustedProxies(machine, runtime.config.http.trusted_proxies)  # type: ignore[method-assign]
    from netboot.webapp import api, auth, ui

    auth.init_app(app, runtime.config.data_dir)
    api.init_errors(app)
    app.register_blueprint(api.api)
    app.register_blueprint(ui.ui)
    auth.warn_if_no_users(app)
    return app
