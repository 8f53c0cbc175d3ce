"""The REST API under ``/api/v1``: JSON in, JSON out, bearer tokens (or the UI's session plus CSRF header).

Errors are always ``{"error": {"message": "...", "field": "mac" | null}}`` with the HTTP status: 400 bad
input, 401 no or bad credentials, 403 role, 404, 405, 409 duplicate (MAC, hostname, IP), 413, 415, 503 the
user store cannot be read. The OpenAPI document (:mod:`netboot.webapp.openapi`) describes every route.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from netboot import registration
from netboot.inventory import System, SystemState
from netboot.registration import UNSET, Duplicate, FieldError, NotFound
from netboot.store.events import StoredEvent
from netboot.webapp import preview, runtime_of
from netboot.webapp.auth import (
    actor,
    check_request,
    current_principal,
    public,
    role_required,
    security_headers,
)

api = Blueprint("api", __name__, url_prefix="/api/v1")
api.before_request(check_request)
api.after_request(security_headers)

SYSTEM_KEYS = ("mac", "profile", "hostname", "ip", "vars", "labels")
PATCH_KEYS = ("profile", "hostname", "ip", "vars", "labels", "state")
STATES = tuple(s.value for s in SystemState)


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def error(status: int, message: str, field: str | None = None) -> Response:
    resp = jsonify({"error": {"message": message, "field": field}})
    resp.status_code = status
    return resp


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error(exc.status, exc.message, exc.field)


@api.errorhandler(FieldError)
def _field_error(exc: FieldError) -> Response:
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Duplicate) else 400
    return error(status, exc.message, exc.field)


def init_errors(app: Flask) -> None:
    """JSON errors under /api/, the UI's error page under /ui/, Werkzeug's defaults elsewhere."""

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            message = exc.description or exc.name
            if status == 500:
                message = "internal error (see the server log)"
            if status == 405:
                message = f"method {request.method} is not allowed here"
            resp = error(status, message)
            if status == 405 and exc.get_response().headers.get("Allow"):
                resp.headers["Allow"] = exc.get_response().headers["Allow"]
            return resp
        if request.path.startswith("/ui/"):
            message = "internal error (see the server log)" if status == 500 else exc.description or exc.name
            return render_template("error.html", status=status, message=message), status
        return exc


# --------------------------------------------------------------------------------------- input help


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "send a JSON object with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise ApiError(400, f"unknown field {key!r}; allowed: {', '.join(allowed)}", str(key)[:64])


def _opt_str(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string or null", key)
    return value


def _obj(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise ApiError(400, f"{key} must be an object or null", key)
    return value


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", name) from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}", name)
    return value


# ------------------------------------------------------------------------------------------- output


def system_json(system: System) -> dict[str, Any]:
    return system.as_json()


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.time,
        "mac": event.mac.colon if event.mac else None,
        "client_ip": event.client_ip,
        "phase": event.phase,
        "summary": event.summary,
        "detail": event.detail,
    }


def search_systems(systems: list[System], q: str) -> list[System]:
    needle = q.strip().lower()
    if not needle:
        return systems
    out = []
    for s in systems:
        hay = " ".join(
            x
            for x in (
                s.mac.colon,
                s.mac.hex,
                s.hostname or "",
                s.profile or "",
                str(s.ip) if s.ip else "",
                s.state.value,
            )
            if x
        )
        if needle in hay.lower():
            out.append(s)
    return out


# --------------------------------------------------------------------------------------------- routes


@api.get("/openapi.json")
@public
def openapi_document() -> Response:
    from netboot.webapp.openapi import document

    return jsonify(document())


@api.get("/me")
def me() -> Response:
    principal = current_principal()
    assert principal is not None
    return jsonify(
        {
            "name": principal.user.name,
            "role": principal.user.role,
            "via": principal.via,
            "token": principal.token.id if principal.token else None,
        }
    )


@api.get("/systems")
def list_systems() -> Response:
    runtime = runtime_of(current_app)
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, f"state must be one of {', '.join(STATES)}", "state")
    profile = request.args.get("profile") or None
    systems = runtime.store.systems.list(state=SystemState(state) if state else None, profile=profile)
    if state is None:
        systems = [s for s in systems if s.state is not SystemState.DISCOVERED]
    systems = search_systems(systems, request.args.get("q", ""))
    return jsonify({"systems": [system_json(s) for s in systems]})


@api.post("/systems")
def create_system() -> tuple[Response, int, dict[str, str]]:
    body = _json_body()
    _only(body, SYSTEM_KEYS)
    mac = body.get("mac")
    if not isinstance(mac, str):
        raise ApiError(400, "mac is required (a string such as 52:54:00:12:34:56)", "mac")
    profile = body.get("profile")
    if not isinstance(profile, str):
        raise ApiError(400, "profile is required (a string)", "profile")
    system = registration.register(
        runtime_of(current_app),
        mac,
        profile,
        _opt_str(body, "hostname"),
        _opt_str(body, "ip"),
        _obj(body, "vars"),
        actor(),
        labels=_obj(body, "labels"),
    )
    location = url_for("api.get_system", mac=system.mac.colon)
    return jsonify(system_json(system)), 201, {"Location": location}


@api.get("/systems/<mac>")
def get_system(mac: str) -> Response:
    return jsonify(system_json(registration.get(runtime_of(current_app), mac)))


@api.patch("/systems/<mac>")
def update_system(mac: str) -> Response:
    body = _json_body()
    _only(body, PATCH_KEYS)
    changes: dict[str, Any] = {}
    if "profile" in body:
        if not isinstance(body["profile"], str):
            raise ApiError(400, "profile must be a string", "profile")
        changes["profile"] = body["profile"]
    if "hostname" in body:
        changes["hostname"] = _opt_str(body, "hostname")
    if "ip" in body:
        changes["ip"] = _opt_str(body, "ip")
    if "vars" in body:
        changes["variables"] = _obj(body, "vars")
    if "labels" in body:
        changes["labels"] = _obj(body, "labels")
    if "state" in body:
        if not isinstance(body["state"], str):
            raise ApiError(400, "state must be a string", "state")
        changes["state"] = body["state"]
    system = registration.set_fields(
        runtime_of(current_app),
        mac,
        actor(),
        profile=changes.get("profile", UNSET),
        hostname=changes.get("hostname", UNSET),
        ip=changes.get("ip", UNSET),
        variables=changes.get("variables", UNSET),
        labels=changes.get("labels", UNSET),
        state=changes.get("state", UNSET),
    )
    return jsonify(system_json(system))


@api.delete("/systems/<mac>")
def delete_system(mac: str) -> Response:
    registration.remove(runtime_of(current_app), mac, actor())
    return Response(status=204)


@api.post("/systems/<mac>/reinstall")
def reinstall_system(mac: str) -> Response:
    return jsonify(system_json(registration.reinstall(runtime_of(current_app), mac, actor())))


@api.get("/systems/<mac>/events")
def system_events(mac: str) -> Response:
    runtime = runtime_of(current_app)
    address = registration.parse_mac(mac)
    since = _int_arg("since_id", 0, 0, 2**62)
    limit = _int_arg("limit", 200, 1, 1000)
    events = runtime.store.events.list(address, since_id=since, limit=limit)
    last = events[-1].id if events else since
    return jsonify({"mac": address.colon, "events": [event_json(e) for e in events], "last_id": last})


@api.get("/systems/<mac>/preview")
def system_preview(mac: str) -> Response:
    runtime = runtime_of(current_app)
    system = registration.get(runtime, mac)
    principal = current_principal()
    hide = principal is None or not principal.has("admin")
    files = preview.preview_system(runtime, system, hide_token=hide)
    return jsonify({"mac": system.mac.colon, "files": [f.as_json() for f in files]})


@api.get("/discovered")
def discovered() -> Response:
    runtime = runtime_of(current_app)
    machines = runtime.store.systems.list(state=SystemState.DISCOVERED)
    machines.sort(key=lambda s: -(s.last_seen or 0))
    return jsonify(
        {
            "machines": [
                {
                    "mac": s.mac.colon,
                    "arch": s.arch,
                    "uuid": s.uuid,
                    "first_seen": s.first_seen,
                    "last_seen": s.last_seen,
                }
                for s in machines
            ]
        }
    )


@api.get("/profiles")
def profiles() -> Response:
    summaries, errors = preview.profile_summaries(runtime_of(current_app))
    return jsonify({"profiles": [s.as_json() for s in summaries], "errors": errors})


@api.get("/profiles/<name>")
def profile(name: str) -> Response:
    summary = preview.profile_summary(runtime_of(current_app), name)
    if summary is None:
        raise ApiError(404, f"no profile {name!r}", "name")
    return jsonify(summary.as_json())


@api.get("/leases")
def leases() -> Response:
    runtime = runtime_of(current_app)
    show_all = request.args.get("all", "") in ("1", "true", "yes")
    now = time.time()
    rows = [x for x in runtime.store.leases.all() if show_all or x.active(now)]
    rows.sort(key=lambda x: int(x.ip))
    return jsonify(
        {
            "mode": runtime.config.dhcp.mode,
            "leases": [
                {
                    "ip": str(x.ip),
                    "mac": x.mac.colon,
                    "hostname": x.hostname,
                    "state": x.state,
                    "starts": x.starts,
                    "expires": x.expires,
                    "active": x.active(now),
                }
                for x in rows
            ],
        }
    )


@api.get("/audit")
@role_required("admin")
def audit() -> Response:
    runtime = runtime_of(current_app)
    limit = _int_arg("limit", 100, 1, 1000)
    before = _int_arg("before_id", 0, 0, 2**62) or None
    entries = runtime.store.audit.list(limit=limit, before_id=before)
    return jsonify(
        {
            "entries": [
                {
                    "id": e.id,
                    "time": e.time,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": e.detail,
                    "ok": e.ok,
                }
                for e in entries
            ]
        }
    )
