"""The ``ui`` blueprint itself: its request hooks, template filters and the helpers every page uses.

The pages register on it from :mod:`netboot.webapp.ui.systems` (systems, discovered machines, profiles,
leases, sign-in) and :mod:`netboot.webapp.ui.accounts` (users, tokens, the audit log).
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
)
from werkzeug.wrappers.response import Response as BaseResponse

from netboot.webapp.auth import (
    AuthUnavailable,
    check_request,
    current_principal,
    deny,
    security_headers,
)
from netboot.webapp.services import services_of

ui = Blueprint("ui", __name__, url_prefix="/ui")
ui.before_request(check_request)

Page = str | Response | BaseResponse | tuple[str, int]

ui.after_request(security_headers)


# ------------------------------------------------------------------------------------------- filters


def fmt_time(value: float | None) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + " UTC"


def fmt_ago(value: float | None) -> str:
    if not value:
        return "never"
    delta = max(0, int(time.time() - value))
    if delta < 60:
        return f"{delta} s ago"
    if delta < 3600:
        return f"{delta // 60} min ago"
    if delta < 86400:
        return f"{delta // 3600} h ago"
    return f"{delta // 86400} d ago"


def fmt_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@ui.app_template_filter("when")
def _when(value: float | None) -> str:
    return fmt_time(value)


@ui.app_template_filter("ago")
def _ago(value: float | None) -> str:
    return fmt_ago(value)


@ui.app_template_filter("tojson_pretty")
def _tojson_pretty(value: Any) -> str:
    return fmt_json(value)


def _runtime() -> Any:
    return services_of(current_app)


def _is_admin() -> bool:
    principal = current_principal()
    return principal is not None and principal.has("admin")



@ui.errorhandler(AuthUnavailable)
def _auth_unavailable(_exc: AuthUnavailable) -> Response:
    return deny(503, "the user store cannot be read: nobody can sign in until it is repaired")
