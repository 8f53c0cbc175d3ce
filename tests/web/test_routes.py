"""Every route, every role: nothing outside an explicit allowlist answers without auth.

The table below must name every endpoint of the app; a new route fails these tests until someone decides
who may use it.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from werkzeug.routing import Rule

from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import ApiClient, WebClient

#: reachable without signing in: the machine-facing blueprint, the sign-in page, static files, the API doc
PUBLIC_ENDPOINTS = {"static", "ui.login", "api.openapi_document"}
PUBLIC_BLUEPRINTS = {"boot"}

MAC = "52:54:00:12:34:56"
DISCOVERED = "52:54:00:99:88:77"
ARGS = {"mac": MAC, "name": "debian12-preseed", "token_id": "1", "filename": "netboot.css"}

# endpoint -> what a viewer gets for (safe, unsafe) methods: "ok" (allowed), "admin" (403 for viewers)
ACCESS: dict[str, tuple[str, str]] = {
    "api.me": ("ok", "-"),
    "api.list_systems": ("ok", "-"),
    "api.create_system": ("-", "admin"),
    "api.get_system": ("ok", "-"),
    "api.update_system": ("-", "admin"),
    "api.delete_system": ("-", "admin"),
    "api.reinstall_system": ("-", "admin"),
    "api.system_events": ("ok", "-"),
    "api.system_preview": ("ok", "-"),
    "api.discovered": ("ok", "-"),
    "api.profiles": ("ok", "-"),
    "api.profile": ("ok", "-"),
    "api.leases": ("ok", "-"),
    "api.audit": ("admin", "-"),
    "ui.index": ("ok", "-"),
    "ui.logout": ("-", "ok"),
    "ui.systems": ("ok", "-"),
    "ui.system_new": ("ok", "admin"),
    "ui.system_bulk": ("ok", "admin"),
    "ui.system": ("ok", "-"),
    "ui.system_edit": ("ok", "admin"),
    "ui.system_reinstall": ("-", "admin"),
    "ui.system_state": ("-", "admin"),
    "ui.system_remove": ("ok", "admin"),
    "ui.discovered": ("ok", "-"),
    "ui.discovered_register": ("-", "admin"),
    "ui.profiles": ("ok", "-"),
    "ui.profile": ("ok", "-"),
    "ui.leases": ("ok", "-"),
    "ui.users": ("admin", "-"),
    "ui.user_add": ("-", "admin"),
    "ui.user_remove": ("-", "admin"),
    "ui.account": ("ok", "ok"),
    "ui.tokens": ("ok", "-"),
    "ui.token_create": ("-", "ok"),
    "ui.token_revoke": ("-", "ok"),
    "ui.audit": ("admin", "-"),
}
SAFE = {"GET", "HEAD", "OPTIONS"}


def routes(app: Flask) -> list[tuple[Rule, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    return out


def url_for_rule(rule: Rule, **override: str) -> str:
    values = {arg: override.get(arg, ARGS.get(arg, "x")) for arg in rule.arguments}
    path = rule.rule
    for arg, value in values.items():
        for conv in ("", "int:", "path:", "string:"):
            path = path.replace(f"<{conv}{arg}>", value)
    return path


def is_public(rule: Rule) -> bool:
    return rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.split(".")[0] in PUBLIC_BLUEPRINTS


@pytest.fixture
def seeded(runtime: Runtime) -> Runtime:
    from netboot import registration

    registration.register(runtime, MAC, "debian12-preseed", "web1", None, None, "test")
    runtime.store.systems.seen(MacAddress.parse(DISCOVERED), arch="bios", uuid=None, now=time.time())
    return runtime


def test_every_endpoint_is_in_the_access_table(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if not is_public(rule)}
    assert endpoints == set(ACCESS), "update ACCESS (and think about who may use the route)"


def test_nothing_outside_the_allowlist_answers_without_auth(app: Flask, seeded: Runtime) -> None:
    client = app.test_client()
    checked = 0
    for rule, method in routes(app):
        if is_public(rule):
            continue
        url = url_for_rule(rule)
        for headers in ({}, {"Authorization": "Bearer nbt_forged"}, {"Authorization": ""}):
            resp = client.open(url, method=method, headers=headers, json={} if method != "GET" else None)
            if url.startswith("/api/"):
                assert resp.status_code == 401, (method, url, headers, resp.status_code)
            elif headers.get("Authorization", "").startswith("Bearer"):
                assert resp.status_code == 403, (method, url, resp.status_code)  # tokens: API only
            else:
                assert resp.status_code in (302, 401), (method, url, resp.status_code)
                if resp.status_code == 302:
                    assert resp.headers["Location"].startswith("/ui/login"), (method, url)
            checked += 1
    assert checked > 100
    # and nothing changed
    assert seeded.store.systems.get(MacAddress.parse(MAC)) is not None
    assert len(seeded.store.users.list()) == 2


def test_public_routes_are_exactly_the_allowlist(app: Flask) -> None:
    public = sorted({rule.endpoint for rule in app.url_map.iter_rules() if is_public(rule)})
    assert {e for e in public if not e.startswith("boot.")} == PUBLIC_ENDPOINTS
    client = app.test_client()
    assert client.get("/ui/login").status_code == 200
    assert client.get("/ui/static/netboot.css").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def _expected(endpoint: str, method: str, role: str) -> str:
    safe, unsafe = ACCESS[endpoint]
    rule = safe if method in SAFE else unsafe
    assert rule != "-", (endpoint, method)
    if role == "admin":
        return "ok"
    return "ok" if rule == "ok" else "forbidden"


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_role_matrix_for_every_route(
    app: Flask,
    seeded: Runtime,
    role: str,
    admin: WebClient,
    viewer: WebClient,
    admin_api: ApiClient,
    viewer_api: ApiClient,
) -> None:
    web = admin if role == "admin" else viewer
    api = admin_api if role == "admin" else viewer_api
    for rule, method in routes(app):
        if is_public(rule):
            continue
        expected = _expected(rule.endpoint, method, role)
        url = url_for_rule(rule)
        if url.startswith("/api/"):
            body = {"hostname": "changed"} if method == "PATCH" else {}
            resp = api.client.open(
                url,
                method=method,
                json=body if method != "GET" else None,
                headers={"Authorization": f"Bearer {api.token}"},
            )
        elif method == "GET":
            resp = web.get(url)
        else:
            resp = web.post(url, {})
        if expected == "forbidden":
            assert resp.status_code == 403, (role, method, url, resp.status_code)
        else:
            assert resp.status_code not in (401, 403), (role, method, url, resp.status_code)
            assert resp.status_code < 500, (
                role,
                method,
                url,
                resp.status_code,
                resp.get_data(as_text=True)[:500],
            )
        if rule.endpoint == "ui.logout" and expected == "ok":
            web.login(
                *(("admin", "admin-password-1") if role == "admin" else ("viewer", "viewer-password-1"))
            )
