"""The OpenAPI 3 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to :mod:`netboot.webapp.api`; ``tests/web/test_openapi.py`` checks that every API
route is documented and every documented operation exists, and schemathesis fuzzes the API from it.
"""

from __future__ import annotations

from typing import Any

from netboot import __version__

_MAC = {
    "type": "string",
    "description": "any common spelling: 52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456, 525400123456",
    "example": "52:54:00:12:34:56",
}
_NULLABLE_STR = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMMON = (401, 403, 503)
_MAC_PARAM = {
    "name": "mac",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": _MAC["description"],
}


def document() -> dict[str, Any]:
    error_text = {
        400: "Bad input (the field at fault is named)",
        401: "No, wrong, revoked or malformed bearer token",
        403: "The caller's role may not do this",
        404: "Not found",
        409: "MAC, host name or IP already used",
        415: "Body is not JSON",
        503: "The user store cannot be read: nobody gets in",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "netboot API",
            "version": __version__,
            "description": "Register machines, watch their network installs and preview what they get. "
            "Authenticate with `Authorization: Bearer <token>` (tokens are made in the web UI "
            "under API tokens, or with `netboot token create --user NAME`). Viewers may only "
            "read; changes need the admin role. Errors are "
            '`{"error": {"message": ..., "field": ...}}`.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/me": {
                "get": {
                    "operationId": "me",
                    "summary": "Who the token belongs to",
                    "responses": {"200": _json(_ref("Me"), "The caller"), **_errs(*_COMMON)},
                }
            },
            "/api/v1/systems": {
                "get": {
                    "operationId": "listSystems",
                    "summary": "Registered systems (discovered ones with state=discovered)",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["install", "installed", "local", "discovered"],
                            },
                        },
                        {"name": "profile", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "q",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "substring of MAC, host name, profile, IP or state",
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["systems"],
                                "properties": {"systems": {"type": "array", "items": _ref("System")}},
                            },
                            "Systems",
                        ),
                        **_errs(400, *_COMMON),
                    },
                },
                "post": {
                    "operationId": "createSystem",
                    "summary": "Register a system (state install, fresh token)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SystemCreate")}},
                    },
                    "responses": {
                        "201": _json(_ref("System"), "Registered"),
                        **_errs(400, 409, 415, *_COMMON),
                    },
                },
            },
            "/api/v1/systems/{mac}": {
                "parameters": [_MAC_PARAM],
                "get": {
                    "operationId": "getSystem",
                    "summary": "One system",
                    "responses": {"200": _json(_ref("System"), "The system"), **_errs(400, 404, *_COMMON)},
                },
                "patch": {
                    "operationId": "updateSystem",
                    "summary": "Change fields (null clears hostname, ip, vars, "
                    "labels; state install = reinstall)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SystemPatch")}},
                    },
                    "responses": {
                        "200": _json(_ref("System"), "Changed"),
                        **_errs(400, 404, 409, 415, *_COMMON),
                    },
                },
                "delete": {
                    "operationId": "deleteSystem",
                    "summary": "Forget a system",
                    "responses": {"204": {"description": "Removed"}, **_errs(400, 404, *_COMMON)},
                },
            },
            "/api/v1/systems/{mac}/reinstall": {
                "parameters": [_MAC_PARAM],
                "post": {
                    "operationId": "reinstallSystem",
                    "summary": "Install again at the next netboot",
                    "responses": {"200": _json(_ref("System"), "Marked"), **_errs(400, 404, *_COMMON)},
                },
            },
            "/api/v1/systems/{mac}/events": {
                "parameters": [_MAC_PARAM],
                "get": {
                    "operationId": "systemEvents",
                    "summary": "Boot timeline, oldest first",
                    "parameters": [
                        {
                            "name": "since_id",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0},
                            "description": "only events with a larger id (poll with the last_id you got)",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["mac", "events", "last_id"],
                                "properties": {
                                    "mac": {"type": "string"},
                                    "events": {"type": "array", "items": _ref("Event")},
                                    "last_id": {"type": "integer"},
                                },
                            },
                            "Events",
                        ),
                        **_errs(400, *_COMMON),
                    },
                },
            },
            "/api/v1/systems/{mac}/preview": {
                "parameters": [_MAC_PARAM],
                "get": {
                    "operationId": "systemPreview",
                    "summary": "The boot script and answer files this system gets now",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["mac", "files"],
                                "properties": {
                                    "mac": {"type": "string"},
                                    "files": {"type": "array", "items": _ref("Rendered")},
                                },
                            },
                            "Rendered files",
                        ),
                        **_errs(400, 404, *_COMMON),
                    },
                },
            },
            "/api/v1/discovered": {
                "get": {
                    "operationId": "listDiscovered",
                    "summary": "Unknown MACs seen booting",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["machines"],
                                "properties": {"machines": {"type": "array", "items": _ref("Discovered")}},
                            },
                            "Machines",
                        ),
                        **_errs(*_COMMON),
                    },
                }
            },
            "/api/v1/profiles": {
                "get": {
                    "operationId": "listProfiles",
                    "summary": "Loaded profiles with their status",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["profiles", "errors"],
                                "properties": {
                                    "profiles": {"type": "array", "items": _ref("Profile")},
                                    "errors": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                            "Profiles",
                        ),
                        **_errs(*_COMMON),
                    },
                }
            },
            "/api/v1/profiles/{name}": {
                "get": {
                    "operationId": "getProfile",
                    "summary": "One profile",
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _json(_ref("Profile"), "The profile"), **_errs(404, *_COMMON)},
                }
            },
            "/api/v1/leases": {
                "get": {
                    "operationId": "listLeases",
                    "summary": "DHCP leases (full mode)",
                    "parameters": [
                        {
                            "name": "all",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["0", "1"]},
                            "description": "1: include expired and declined leases",
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["mode", "leases"],
                                "properties": {
                                    "mode": {"type": "string"},
                                    "leases": {"type": "array", "items": _ref("Lease")},
                                },
                            },
                            "Leases",
                        ),
                        **_errs(*_COMMON),
                    },
                }
            },
            "/api/v1/audit": {
                "get": {
                    "operationId": "listAudit",
                    "summary": "Audit log, newest first (admin)",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "before_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["entries"],
                                "properties": {"entries": {"type": "array", "items": _ref("AuditEntry")}},
                            },
                            "Entries",
                        ),
                        **_errs(400, *_COMMON),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token, nbt_..."}
            },
            "responses": {f"E{code}": _json(_ref("Error"), text) for code, text in error_text.items()},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["message", "field"],
                            "properties": {
                                "message": {"type": "string"},
                                "field": {"type": ["string", "null"], "description": "the input at fault"},
                            },
                        }
                    },
                },
                "Me": {
                    "type": "object",
                    "required": ["name", "role", "via"],
                    "properties": {
                        "name": {"type": "string"},
                        "role": {"type": "string", "enum": ["admin", "viewer"]},
                        "via": {"type": "string", "enum": ["token", "session"]},
                        "token": {"type": ["integer", "null"]},
                    },
                },
                "System": {
                    "type": "object",
                    "required": ["mac", "profile", "hostname", "ip", "state", "vars"],
                    "properties": {
                        "mac": {"type": "string", "example": "52:54:00:12:34:56"},
                        "profile": _NULLABLE_STR,
                        "hostname": _NULLABLE_STR,
                        "ip": _NULLABLE_STR,
                        "state": {"type": "string", "enum": ["install", "installed", "local", "discovered"]},
                        "vars": {"type": "object"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "arch": _NULLABLE_STR,
                        "uuid": _NULLABLE_STR,
                        "first_seen": {"type": ["number", "null"]},
                        "last_seen": {"type": ["number", "null"]},
                    },
                },
                "SystemCreate": {
                    "type": "object",
                    "required": ["mac", "profile"],
                    "additionalProperties": False,
                    "properties": {
                        "mac": _MAC,
                        "profile": {"type": "string", "description": "a loaded profile's name"},
                        "hostname": {"type": ["string", "null"], "description": "RFC 1123"},
                        "ip": {"type": ["string", "null"], "description": "IPv4 address"},
                        "vars": {
                            "type": ["object", "null"],
                            "description": "variables over the profile's (at most 64 KiB)",
                        },
                        "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
                    },
                },
                "SystemPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "profile": {"type": "string"},
                        "hostname": {"type": ["string", "null"]},
                        "ip": {"type": ["string", "null"]},
                        "vars": {"type": ["object", "null"]},
                        "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
                        "state": {"type": "string", "enum": ["install", "installed", "local"]},
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["id", "time", "phase", "summary"],
                    "properties": {
                        "id": {"type": "integer"},
                        "time": {"type": "number"},
                        "mac": _NULLABLE_STR,
                        "client_ip": _NULLABLE_STR,
                        "phase": {
                            "type": "string",
                            "description": "dhcp, tftp, http, boot-script, answer-file, "
                            "install-done, discovered, admin",
                        },
                        "summary": {"type": "string"},
                        "detail": {"type": "object"},
                    },
                },
                "Rendered": {
                    "type": "object",
                    "required": ["name", "kind"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "content": _NULLABLE_STR,
                        "error": _NULLABLE_STR,
                    },
                },
                "Discovered": {
                    "type": "object",
                    "required": ["mac"],
                    "properties": {
                        "mac": {"type": "string"},
                        "arch": _NULLABLE_STR,
                        "uuid": _NULLABLE_STR,
                        "first_seen": {"type": ["number", "null"]},
                        "last_seen": {"type": ["number", "null"]},
                    },
                },
                "Profile": {
                    "type": "object",
                    "required": ["name", "kind", "ok"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "description": {"type": "string"},
                        "parent": _NULLABLE_STR,
                        "lineage": {"type": "array", "items": {"type": "string"}},
                        "variables": {"type": "object"},
                        "answer_files": {"type": "array", "items": {"type": "string"}},
                        "installs": {"type": "boolean"},
                        "ok": {"type": "boolean"},
                        "problems": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Lease": {
                    "type": "object",
                    "required": ["ip", "mac", "state", "active"],
                    "properties": {
                        "ip": {"type": "string"},
                        "mac": {"type": "string"},
                        "hostname": _NULLABLE_STR,
                        "state": {"type": "string"},
                        "starts": {"type": "number"},
                        "expires": {"type": "number"},
                        "active": {"type": "boolean"},
                    },
                },
                "AuditEntry": {
                    "type": "object",
                    "required": ["id", "time", "actor", "action", "target"],
                    "properties": {
                        "id": {"type": "integer"},
                        "time": {"type": "number"},
                        "actor": {"type": "string"},
                        "action": {"type": "string"},
                        "target": {"type": "string"},
                        "detail": {"type": "object"},
                        "ok": {"type": "boolean"},
                    },
                },
            },
        },
    }


def _errs(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}
