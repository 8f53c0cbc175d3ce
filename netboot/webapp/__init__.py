"""The Flask application factory: ``boot`` (machine-facing), ``api`` (JSON, tokens) and ``ui`` (HTML).

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
    from netboot.webapp.proxy import TrustedProxies

    # X-Forwarded-* believed only from the configured proxies, removed from everyone else's requests
    app.wsgi_app = TrustedProxies(app.wsgi_app, runtime.config.http.trusted_proxies)  # type: ignore[method-assign]
    from netboot.webapp.boot import boot

    app.register_blueprint(boot)
    from netboot.webapp import api, auth, ui

    auth.init_app(app, runtime.config.data_dir)
    api.init_errors(app)
    app.register_blueprint(api.api)
    app.register_blueprint(ui.ui)
    auth.warn_if_no_users(app)
    return app
