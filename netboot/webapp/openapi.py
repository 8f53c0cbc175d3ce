"""The OpenAPI 3.1 document of ``/api/v1``, generated from the models in :mod:`netboot.webapp.schemas`.

:data:`ROUTES` names each operation's method, path (in Flask's ``<param>`` spelling, so a test can hold it
against ``app.url_map``), summary, body, query and response models and status codes; the schemas come from
pydantic's JSON Schema of the same models the API validates and answers with. Served at
``/api/v1/openapi.json``; schemathesis fuzzes the API from it (``tests/web/test_schemathesis.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from netboot import __version__
from netboot.webapp import schemas

Method = Literal["GET", "POST", "PATCH", "DELETE"]
REF = "#/components/schemas/{model}"

#: every caller who is not public may meet these
COMMON_ERRORS = (401, 403, 503)
ERROR_TEXT = {
    400: "Bad input (the field at fault is named)",
    401: "No, wrong, revoked or malformed bearer token",
    403: "The caller's role may not do this (reveal=secrets: only admins)",
    404: "Not found",
    409: "MAC, host name or IP already used",
    413: "Body larger than 1 MiB",
    415: "Body is not JSON",
    503: "The user store cannot be read: nobody gets in",
}
#: the path parameters' descriptions (each is a string)
PATH_PARAMS = {"mac": schemas.MAC_HELP, "name": "a profile's name"}


@dataclass(frozen=True)
class Route:
    """One operation of the API as the document shows it."""

    method: Method
    path: str
    operation_id: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    #: more than the summary says (a paginated list says how it pages)
    description: str | None = None

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.path)


_BODY_ERRORS = (400, 413, 415)
#: what every answer carrying variables says about secret ones
SECRETS_HELP = (
    "Secret variables (by name: password, passwd, passphrase, pw, secret, token, key and their _hash forms; "
    "and those the profile's or group's `secrets:` names) are `<secret>` unless an admin asks "
    "`reveal=secrets` (audited; 403 for anyone else)."
)
ROUTES = (
    Route("GET", "/api/v1/me", "me", "Who the token belongs to", schemas.Me),
    Route(
        "GET",
        "/api/v1/systems",
        "listSystems",
        "Registered systems (discovered ones with state=discovered), a page at a time",
        schemas.SystemList,
        query=schemas.SystemsQuery,
        errors=(400,),
        description="By host name, then MAC (discovered ones: the one seen last first). "
        + schemas.PAGING_HELP
        + " "
        + SECRETS_HELP,
    ),
    Route(
        "POST",
        "/api/v1/systems",
        "createSystem",
        "Register a system (state install, fresh token)",
        schemas.System,
        201,
        body=schemas.SystemCreate,
        errors=(*_BODY_ERRORS, 409),
        description="The answer's secret variables are `<secret>`.",
    ),
    Route(
        "GET",
        "/api/v1/systems/<mac>",
        "getSystem",
        "One system",
        schemas.System,
        query=schemas.RevealQuery,
        errors=(400, 404),
        description=SECRETS_HELP,
    ),
    Route(
        "PATCH",
        "/api/v1/systems/<mac>",
        "updateSystem",
        "Change the fields given (null clears "
        "hostname, ip, vars, labels, local_boot, boot_chain; state install = reinstall)",
        schemas.System,
        body=schemas.SystemPatch,
        errors=(*_BODY_ERRORS, 404, 409),
        description="A `vars` value still `<secret>` where the stored system has a secret keeps the stored "
        "value, so a read, a change and a write back loses no secret; any other value replaces it. "
        "The answer's secret variables are `<secret>`.",
    ),
    Route("DELETE", "/api/v1/systems/<mac>", "deleteSystem", "Forget a system", None, 204, errors=(400, 404)),
    Route(
        "POST",
        "/api/v1/systems/<mac>/reinstall",
        "reinstallSystem",
        "Install again at the next netboot",
        schemas.System,
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/api/v1/systems/<mac>/events",
        "systemEvents",
        "Boot timeline, oldest first",
        schemas.EventList,
        query=schemas.EventsQuery,
        errors=(400,),
    ),
    Route(
        "GET",
        "/api/v1/systems/<mac>/preview",
        "systemPreview",
        "The boot script and answer files this system gets now",
        schemas.Preview,
        query=schemas.RevealQuery,
        errors=(400, 404),
        description="Rendered with every secret variable as `<secret>` (its install token hidden from "
        "viewers), unless an admin asks `reveal=secrets` (audited; 403 for anyone else).",
    ),
    Route(
        "GET",
        "/api/v1/discovered",
        "listDiscovered",
        "Unknown MACs seen booting, a page at a time",
        schemas.DiscoveredList,
        query=schemas.DiscoveredQuery,
        errors=(400,),
        description="The one seen last first. At most limits.discovered-max are kept (those seen longest "
        "ago are forgotten first) and limits.discovered-per-minute new ones are stored a minute. "
        + schemas.PAGING_HELP,
    ),
    Route(
        "GET",
        "/api/v1/profiles",
        "listProfiles",
        "Loaded profiles with their status",
        schemas.ProfileList,
        query=schemas.RevealQuery,
        errors=(400,),
        description=SECRETS_HELP,
    ),
    Route(
        "GET",
        "/api/v1/profiles/<name>",
        "getProfile",
        "One profile",
        schemas.Profile,
        query=schemas.RevealQuery,
        errors=(400, 404),
        description=SECRETS_HELP,
    ),
    Route(
        "GET",
        "/api/v1/leases",
        "listLeases",
        "DHCP leases (full mode)",
        schemas.LeaseList,
        query=schemas.LeasesQuery,
        errors=(400,),
    ),
    Route(
        "GET",
        "/api/v1/audit",
        "listAudit",
        "Audit log, newest first (admin)",
        schemas.AuditList,
        query=schemas.AuditQuery,
        errors=(400,),
    ),
    Route("GET", "/api/v1/openapi.json", "openapi", "This document", schemas.OpenApiDocument, public=True),
)


def _component_schemas() -> dict[str, Any]:
    """Every body (as it is checked) and response (as it is sent) model, sharing one ``$defs``."""
    wanted: dict[type[BaseModel], JsonSchemaMode] = {schemas.Error: "serialization"}
    for route in ROUTES:
        if route.body is not None:
            wanted[route.body] = "validation"
        if route.response is not None:
            wanted[route.response] = "serialization"
    _, top = models_json_schema(list(wanted.items()), ref_template=REF)
    defs: dict[str, Any] = top["$defs"]
    return defs


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema["properties"].items():
        # a query string cannot say null: an optional parameter is one that may be left out
        options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        param: dict[str, Any] = {"name": name, "in": "query", "schema": prop}
        if description := model.model_fields[name].description:
            param["description"] = description
        params.append(param)
    return params


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


def _operation(route: Route) -> dict[str, Any]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": PATH_PARAMS[name],
        }
        for name in re.findall(r"{(\w+)}", route.openapi_path)
    ]
    if route.query is not None:
        parameters += _query_parameters(route.query)
    ok: dict[str, Any] = (
        _json(route.response, route.summary) if route.response is not None else {"description": route.summary}
    )
    codes = sorted({*route.errors, *(() if route.public else COMMON_ERRORS)})
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": {
            str(route.status): ok,
            **{str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes},
        },
    }
    if route.description is not None:
        operation["description"] = route.description
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}},
        }
    if route.public:
        operation["security"] = []
    return operation


@cache
def document() -> dict[str, Any]:
    """The document (made once; callers must not change it)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "netboot API",
            "version": __version__,
            "description": "Register machines, watch their network installs and preview what they get. "
            "Authenticate with `Authorization: Bearer <token>` (tokens are made in the web UI "
            "under API tokens, or with `netboot token create --user NAME`). Viewers may only "
            "read; changes need the admin role. Errors are "
            '`{"error": {"message": ..., "field": ..., "fields": {...}}}`. Lists of systems and '
            "discovered machines come a page at a time (`limit`, `offset`; the answer's `total`).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token, nbt_..."}
            },
            "responses": {f"E{code}": _json(schemas.Error, text) for code, text in ERROR_TEXT.items()},
            "schemas": _component_schemas(),
        },
    }
