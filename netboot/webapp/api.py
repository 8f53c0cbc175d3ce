"""The REST API under ``/api/v1``: JSON in, JSON out, bearer tokens (or the UI's session plus CSRF header).

Bodies and query strings are checked by the models in :mod:`netboot.webapp.schemas` (shape), then by
:mod:`netboot.registration` (meaning, shared with the UI and CLI); answers are built from the same models,
which are also the OpenAPI document's (:mod:`netboot.webapp.openapi`).

Errors are always ``{"error": {"message": "...", "field": "mac" | null}}`` with the HTTP status: 400 bad
input (a refused body or query string also has ``"fields": {"labels.rack": "reason", ...}`` with every
refusal), 401 no or bad credentials, 403 role, 404, 405, 409 duplicate (MAC, hostname, IP), 413, 415, 503
the user store cannot be read.

Secret variables (:mod:`netboot.secretvars`) are ``"<secret>"`` in every answer: systems (their own
variables, with their profile's and group's ``secrets:``), profiles and previews. An admin may ask
``?reveal=secrets`` on the reads (``GET`` systems, a system, its preview, profiles, a profile); each such
answer is audited (``reveal-secrets``: who, what, which variables), and anyone else asking gets 403
(audited as a refusal). A ``PATCH`` whose ``vars`` still hold ``"<secret>"`` where the stored system has
a secret keeps the stored value there, so reading, changing one variable and writing back loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request, url_for
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from netboot import registration
from netboot.inventory import System, SystemState
from netboot.registration import Duplicate, FieldError, NotFound
from netboot.secretvars import hidden_paths, restore, scrub, scrub_all
from netboot.store.events import StoredEvent
from netboot.webapp import preview, schemas
from netboot.webapp.auth import (
    actor,
    audit_refusal,
    check_request,
    current_principal,
    public,
    role_required,
    security_headers,
)
from netboot.webapp.services import services_of

api = Blueprint("api", __name__, url_prefix="/api/v1")
api.before_request(check_request)
api.after_request(security_headers)

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, field: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.fields = status, message, field, fields


def error(
    status: int, message: str, field: str | None = None, fields: dict[str, str] | None = None
) -> Response:
    """The one error shape (:class:`netboot.webapp.schemas.Error`); ``fields`` only when there are any."""
    detail: dict[str, Any] = {"message": message, "field": field}
    if fields:
        detail["fields"] = fields
    resp = jsonify({"error": detail})
    resp.status_code = status
    return resp


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return error(exc.status, exc.message, exc.field, exc.fields)


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


# --------------------------------------------------------------------------------------- input, output


def _checked(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, *schemas.refusals(exc, model)) from None


def body_of(model: type[M]) -> M:
    """The request's JSON object, checked by ``model`` (415 not JSON, 400 not an object or refused)."""
    if not request.is_json:
        raise ApiError(415, "send a JSON object with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the json module recurses per level: a 1 MiB body can nest past its limit
        raise ApiError(400, "the body nests too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return _checked(model, body)


def query_of(model: type[M]) -> M:
    """The query string checked by ``model``; an empty parameter means its default."""
    return _checked(model, {k: v for k, v in request.args.items() if v != ""})


def reply(model: BaseModel) -> Response:
    return jsonify(model.model_dump(mode="json"))


def event_json(event: StoredEvent, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """An event as the API sends it (the UI's timeline page uses the same), scrubbed of ``secrets``: an
    answer file that failed to render for the machine records the error, which may quote a value."""
    data: dict[str, Any] = schemas.Event.of(event).model_dump(mode="json")
    return {**data, "summary": scrub(event.summary, secrets), "detail": scrub_all(data["detail"], secrets)}


# ------------------------------------------------------------------------------------------- secrets

REVEAL = "secrets"


def reveal_asked() -> bool:
    """True when this request asks ``?reveal=secrets`` and its caller is an admin; anyone else gets 403
    (audited as a refusal, like every refusal of a signed-in caller). Any other value reveals nothing
    (the API's query models refuse it first). The UI's pages use the same."""
    if request.args.get("reveal") != REVEAL:
        return False
    principal = current_principal()
    if principal is None or not principal.has("admin"):
        if principal is not None:
            audit_refusal(principal, "reveal=secrets needs admin")
        abort(403, "reveal=secrets needs the admin role: secret variables are shown only to admins who ask")
    return True


def audit_reveal(target: str, view: str, names: Any) -> None:
    """Write a granted reveal to the audit log: who, which page or answer, which variables (never their
    values)."""
    services_of(current_app).store.audit.write(
        actor(), "reveal-secrets", target, {"view": view, "names": names}
    )


def shown(system: System, reveal: bool = False) -> schemas.System:
    """``system`` as the API answers with it: secret variables redacted unless ``reveal``."""
    runtime = services_of(current_app)
    profiles, _ = preview.profile_set(runtime)
    loaders = preview.system_loaders(runtime, system)
    return schemas.System.of(preview.shown_system(profiles, system, reveal=reveal), loaders)


def _kept_secrets(mac: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with the placeholders sent back in ``variables`` replaced by the stored secrets."""
    variables = changes.get("variables")
    if not isinstance(variables, dict):
        return changes
    runtime = services_of(current_app)
    stored = registration.get(runtime, mac)
    names = preview.system_secret_names(preview.profile_set(runtime)[0], stored)
    return {**changes, "variables": restore(variables, stored.variables, names)}


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
    return reply(
        schemas.Me.model_validate(
            {
                "name": principal.user.name,
                "role": principal.user.role,
                "via": principal.via,
                "token": principal.token.id if principal.token else None,
            }
        )
    )


@api.get("/systems")
def list_systems() -> Response:
    runtime = services_of(current_app)
    query = query_of(schemas.SystemsQuery)
    page = runtime.store.systems.page(
        state=SystemState(query.state) if query.state else None,
        profile=query.profile,
        q=query.q,
        limit=query.limit,
        offset=query.offset,
    )
    reveal = reveal_asked()
    profiles, _ = preview.profile_set(runtime)
    if reveal:
        names = {
            x.mac.colon: found
            for x in page.systems
            if (found := hidden_paths(x.variables, preview.system_secret_names(profiles, x)))
        }
        audit_reveal("systems", "api list", names)
    return reply(
        schemas.SystemList(
            systems=[
                schemas.System.of(
                    preview.shown_system(profiles, x, reveal=reveal), preview.system_loaders(runtime, x)
                )
                for x in page.systems
            ],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )
    )


@api.post("/systems")
def create_system() -> tuple[Response, int, dict[str, str]]:
    body = body_of(schemas.SystemCreate)
    system = registration.register(
        services_of(current_app),
        body.mac,
        body.profile,
        body.hostname,
        body.ip,
        body.vars,
        actor(),
        labels=body.labels,
        local_boot=body.local_boot,
        boot_chain=body.boot_chain,
    )
    location = url_for("api.get_system", mac=system.mac.colon)
    return reply(shown(system)), 201, {"Location": location}


@api.get("/systems/<mac>")
def get_system(mac: str) -> Response:
    query_of(schemas.RevealQuery)
    runtime = services_of(current_app)
    system = registration.get(runtime, mac)
    reveal = reveal_asked()
    if reveal:
        names = hidden_paths(
            system.variables, preview.system_secret_names(preview.profile_set(runtime)[0], system)
        )
        audit_reveal(f"system {system.mac}", "api system", names)
    return reply(shown(system, reveal))


@api.patch("/systems/<mac>")
def update_system(mac: str) -> Response:
    changes = _kept_secrets(mac, body_of(schemas.SystemPatch).changes())
    system = registration.set_fields(services_of(current_app), mac, actor(), **changes)
    return reply(shown(system))


@api.delete("/systems/<mac>")
def delete_system(mac: str) -> Response:
    registration.remove(services_of(current_app), mac, actor())
    return Response(status=204)


@api.post("/systems/<mac>/reinstall")
def reinstall_system(mac: str) -> Response:
    return reply(shown(registration.reinstall(services_of(current_app), mac, actor())))


@api.get("/systems/<mac>/events")
def system_events(mac: str) -> Response:
    runtime = services_of(current_app)
    address = registration.parse_mac(mac)
    query = query_of(schemas.EventsQuery)
    events = runtime.store.events.list(address, since_id=query.since_id, limit=query.limit)
    last = events[-1].id if events else query.since_id
    secrets = preview.system_secret_strings(runtime, runtime.store.systems.get(address)) if events else set()
    return reply(
        schemas.EventList(
            mac=address.colon,
            events=[schemas.Event.model_validate(event_json(e, secrets)) for e in events],
            last_id=last,
        )
    )


@api.get("/systems/<mac>/preview")
def system_preview(mac: str) -> Response:
    query_of(schemas.RevealQuery)
    runtime = services_of(current_app)
    system = registration.get(runtime, mac)
    principal = current_principal()
    hide = principal is None or not principal.has("admin")
    reveal = reveal_asked()
    if reveal:
        audit_reveal(f"system {system.mac}", "api preview", preview.system_secret_paths(runtime, system))
    files = preview.preview_system(runtime, system, hide_token=hide, reveal=reveal)
    return reply(
        schemas.Preview(
            mac=system.mac.colon, files=[schemas.Rendered.model_validate(f.as_json()) for f in files]
        )
    )


@api.get("/discovered")
def discovered() -> Response:
    runtime = services_of(current_app)
    query = query_of(schemas.DiscoveredQuery)
    page = runtime.store.systems.page(state=SystemState.DISCOVERED, limit=query.limit, offset=query.offset)
    return reply(
        schemas.DiscoveredList(
            machines=[schemas.Discovered.of(x) for x in page.systems],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )
    )


@api.get("/profiles")
def profiles() -> Response:
    query_of(schemas.RevealQuery)
    reveal = reveal_asked()
    summaries, errors = preview.profile_summaries(services_of(current_app), reveal=reveal)
    if reveal:
        audit_reveal(
            "profiles", "api list", {x.name: list(x.secret_paths) for x in summaries if x.secret_paths}
        )
    return reply(
        schemas.ProfileList(
            profiles=[schemas.Profile.model_validate(x.as_json()) for x in summaries], errors=errors
        )
    )


@api.get("/profiles/<name>")
def profile(name: str) -> Response:
    query_of(schemas.RevealQuery)
    reveal = reveal_asked()
    summary = preview.profile_summary(services_of(current_app), name, reveal=reveal)
    if summary is None:
        raise ApiError(404, f"no profile {name!r}", "name")
    if reveal:
        audit_reveal(f"profile {summary.name}", "api profile", list(summary.secret_paths))
    return reply(schemas.Profile.model_validate(summary.as_json()))


@api.get("/leases")
def leases() -> Response:
    runtime = services_of(current_app)
    show_all = query_of(schemas.LeasesQuery).all
    now = time.time()
    rows = [x for x in runtime.store.leases.all() if show_all or x.active(now)]
    rows.sort(key=lambda x: int(x.ip))
    return reply(
        schemas.LeaseList(mode=runtime.config.dhcp.mode, leases=[schemas.Lease.of(x, now) for x in rows])
    )


@api.get("/audit")
@role_required("admin")
def audit() -> Response:
    runtime = services_of(current_app)
    query = query_of(schemas.AuditQuery)
    entries = runtime.store.audit.list(limit=query.limit, before_id=query.before_id or None)
    return reply(schemas.AuditList(entries=[schemas.AuditEntry.of(e) for e in entries]))
