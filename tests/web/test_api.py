"""The REST API: systems CRUD with the CLI's validation, events, preview, discovered, profiles, leases."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

import pytest
from flask import Flask

from netboot.events import Event
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.store.leases import Lease as StoredLease
from netboot.webapp.openapi import ROUTES, document

from .conftest import ApiClient

MAC = "52:54:00:12:34:56"


def create(api: ApiClient, **body: object) -> object:
    payload = {"mac": MAC, "profile": "debian12-preseed", **body}
    return api.post("/api/v1/systems", json=payload)


def test_create_get_list_update_delete(admin_api: ApiClient, runtime: Runtime) -> None:
    resp = create(admin_api, hostname="Web1", ip="10.0.0.50", vars={"disk": "/dev/vda"})
    assert resp.status_code == 201, resp.json  # type: ignore[attr-defined]
    body = resp.json  # type: ignore[attr-defined]
    assert body["mac"] == MAC and body["hostname"] == "web1" and body["state"] == "install"
    assert body["vars"] == {"disk": "/dev/vda"} and body["ip"] == "10.0.0.50"
    assert "token" not in body
    assert resp.headers["Location"] == f"/api/v1/systems/{MAC}"  # type: ignore[attr-defined]
    stored = runtime.store.systems.get(MacAddress.parse(MAC))
    assert stored is not None and stored.token  # a fresh per-system token

    for spelling in ("52-54-00-12-34-56", "5254.0012.3456", "525400123456", "52:54:00:12:34:56".upper()):
        assert admin_api.get(f"/api/v1/systems/{spelling}").json["mac"] == MAC

    listed = admin_api.get("/api/v1/systems?q=web").json["systems"]
    assert [s["mac"] for s in listed] == [MAC]
    assert admin_api.get("/api/v1/systems?profile=local").json["systems"] == []
    assert admin_api.get("/api/v1/systems?state=install").json["systems"][0]["mac"] == MAC

    resp = admin_api.patch(
        f"/api/v1/systems/{MAC}", json={"hostname": None, "vars": {"a": 1}, "state": "local"}
    )
    assert resp.status_code == 200
    assert resp.json["hostname"] is None and resp.json["vars"] == {"a": 1} and resp.json["state"] == "local"

    resp = admin_api.post(f"/api/v1/systems/{MAC}/reinstall")
    assert resp.status_code == 200 and resp.json["state"] == "install"
    again = runtime.store.systems.get(MacAddress.parse(MAC))
    assert again is not None and again.token and again.token != stored.token

    assert admin_api.delete(f"/api/v1/systems/{MAC}").status_code == 204
    assert admin_api.get(f"/api/v1/systems/{MAC}").status_code == 404
    actions = [e.action for e in runtime.store.audit.list()]
    assert actions[:4] == ["remove", "reinstall", "edit", "register"]
    assert all(e.actor.startswith("admin (token ") for e in runtime.store.audit.list()[:4])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"mac": "52:54:00:zz:00:01"}, 400, "mac"),
        ({"mac": ""}, 400, "mac"),
        ({"mac": 12}, 400, "mac"),
        ({"profile": "no-such-profile"}, 400, "profile"),
        ({"profile": "debian12-presed"}, 400, "profile"),
        ({"profile": ""}, 400, "profile"),
        ({"profile": None}, 400, "profile"),
        ({"hostname": "-bad-"}, 400, "hostname"),
        ({"hostname": "a_b"}, 400, "hostname"),
        ({"hostname": "x" * 64}, 400, "hostname"),
        ({"hostname": "<script>"}, 400, "hostname"),
        ({"hostname": 5}, 400, "hostname"),
        ({"ip": "10.0.0.256"}, 400, "ip"),
        ({"ip": "fe80::1"}, 400, "ip"),
        ({"ip": "224.0.0.1"}, 400, "ip"),
        ({"ip": "0.0.0.0"}, 400, "ip"),
        ({"vars": [1, 2]}, 400, "vars"),
        ({"vars": "x"}, 400, "vars"),
        ({"vars": {"big": "x" * 70000}}, 400, "vars"),
        ({"labels": {"k": 1}}, 400, "labels"),
        ({"extra": 1}, 400, "extra"),
    ],
)
def test_bad_input_names_the_field(
    admin_api: ApiClient, runtime: Runtime, body: dict[str, object], status: int, field: str
) -> None:
    payload: dict[str, object] = {"mac": MAC, "profile": "debian12-preseed", **body}
    resp = admin_api.post("/api/v1/systems", json=payload)
    assert resp.status_code == status, resp.json
    assert resp.json["error"]["field"] == field and resp.json["error"]["message"]
    assert runtime.store.systems.list() == []


def test_unknown_profile_message_suggests_the_close_one(admin_api: ApiClient) -> None:
    resp = create(admin_api, profile="debian12-presed")
    assert "debian12-preseed" in resp.json["error"]["message"]  # type: ignore[attr-defined]


def test_duplicates_are_409_with_the_field(admin_api: ApiClient) -> None:
    assert create(admin_api, hostname="web1", ip="10.0.0.5").status_code == 201  # type: ignore[attr-defined]
    for body, field in [
        ({}, "mac"),
        ({"mac": "52:54:00:00:00:02", "hostname": "WEB1"}, "hostname"),
        ({"mac": "52:54:00:00:00:03", "ip": "10.0.0.5"}, "ip"),
    ]:
        resp = create(admin_api, **body)
        assert resp.status_code == 409 and resp.json["error"]["field"] == field  # type: ignore[attr-defined]


def test_non_json_bodies(admin_api: ApiClient) -> None:
    resp = admin_api.client.post(
        "/api/v1/systems",
        data="mac=x",
        headers={
            "Authorization": f"Bearer {admin_api.token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert resp.status_code == 415 and resp.json["error"]["message"]
    resp = admin_api.client.post(
        "/api/v1/systems",
        data="{not json",
        headers={"Authorization": f"Bearer {admin_api.token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    resp = admin_api.post("/api/v1/systems", json=[1, 2])
    assert resp.status_code == 400
    nested = '{"a": ' * 100_000 + "1" + "}" * 100_000  # deeper than the json module can recurse
    deep = '{"mac": "52:54:00:12:34:56", "profile": "local", "vars": ' + nested + "}"
    resp = admin_api.client.post(
        "/api/v1/systems",
        data=deep,
        headers={"Authorization": f"Bearer {admin_api.token}", "Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and "nests" in resp.json["error"]["message"]


def test_unknown_routes_and_methods_answer_json(admin_api: ApiClient) -> None:
    resp = admin_api.get("/api/v1/nothing")
    assert resp.status_code == 404 and resp.json["error"]["message"]
    resp = admin_api.client.put("/api/v1/systems", headers={"Authorization": f"Bearer {admin_api.token}"})
    assert resp.status_code == 405 and "PUT" in resp.json["error"]["message"]


def test_viewer_reads_but_cannot_change(viewer_api: ApiClient, admin_api: ApiClient) -> None:
    assert create(admin_api).status_code == 201  # type: ignore[attr-defined]
    assert viewer_api.get("/api/v1/systems").status_code == 200
    for resp in (
        create(viewer_api, mac="52:54:00:00:00:07"),
        viewer_api.patch(f"/api/v1/systems/{MAC}", json={"hostname": "x"}),
        viewer_api.post(f"/api/v1/systems/{MAC}/reinstall"),
        viewer_api.delete(f"/api/v1/systems/{MAC}"),
        viewer_api.get("/api/v1/audit"),
    ):
        assert resp.status_code == 403, resp  # type: ignore[attr-defined]
        assert "admin role" in resp.json["error"]["message"]  # type: ignore[attr-defined]


def test_events_since_id(admin_api: ApiClient, runtime: Runtime) -> None:
    create(admin_api)
    mac = MacAddress.parse(MAC)
    for phase in ("dhcp", "tftp", "http"):
        runtime.recorder.record(Event(phase=phase, summary=f"{phase} thing", mac=mac, client_ip="10.0.0.9"))
    runtime.recorder.record(
        Event(phase="dhcp", summary="someone else", mac=MacAddress.parse("52:54:00:00:00:01"))
    )
    runtime.store.events.wait_idle()
    data = admin_api.get(f"/api/v1/systems/{MAC}/events").json
    assert [e["phase"] for e in data["events"]] == ["admin", "dhcp", "tftp", "http"]
    assert data["events"][1]["client_ip"] == "10.0.0.9"
    newer = admin_api.get(f"/api/v1/systems/{MAC}/events?since_id={data['events'][1]['id']}").json
    assert [e["phase"] for e in newer["events"]] == ["tftp", "http"] and newer["last_id"] == data["last_id"]
    assert admin_api.get(f"/api/v1/systems/{MAC}/events?since_id={data['last_id']}").json["events"] == []
    for bad in ("-1", "x", "1e3"):
        resp = admin_api.get(f"/api/v1/systems/{MAC}/events?since_id={bad}")
        assert resp.status_code == 400 and resp.json["error"]["field"] == "since_id"
    assert admin_api.get("/api/v1/systems/nonsense/events").json["error"]["field"] == "mac"


def test_preview_hides_the_token_from_viewers(
    admin_api: ApiClient, viewer_api: ApiClient, runtime: Runtime
) -> None:
    create(admin_api, hostname="web1")
    token = runtime.store.systems.get(MacAddress.parse(MAC)).token  # type: ignore[union-attr]
    assert token
    files = admin_api.get(f"/api/v1/systems/{MAC}/preview").json["files"]
    assert [f["name"] for f in files][1:] == ["preseed.cfg"]
    assert files[0]["name"].startswith("boot.ipxe") and "#!ipxe" in files[0]["content"]
    assert token in files[0]["content"] and "web1" in files[1]["content"]
    seen = viewer_api.get(f"/api/v1/systems/{MAC}/preview").json["files"]
    assert all(token not in (f["content"] or "") for f in seen)
    assert "token-hidden-from-viewers" in seen[0]["content"]


def test_discovered_profiles_leases(admin_api: ApiClient, runtime: Runtime) -> None:
    runtime.store.systems.seen(
        MacAddress.parse("52:54:00:aa:00:01"), arch="uefi-x64", uuid=None, now=time.time()
    )
    machines = admin_api.get("/api/v1/discovered").json["machines"]
    assert machines[0]["mac"] == "52:54:00:aa:00:01" and machines[0]["arch"] == "uefi-x64"
    assert admin_api.get("/api/v1/systems").json["systems"] == []  # discovered ones are listed apart

    profiles = admin_api.get("/api/v1/profiles").json
    names = [p["name"] for p in profiles["profiles"]]
    assert "debian12-preseed" in names and "local" in names
    one = admin_api.get("/api/v1/profiles/debian12-preseed").json
    assert one["kind"] == "preseed" and one["ok"] and one["variables"]["suite"] == "bookworm"
    assert admin_api.get("/api/v1/profiles/nope").status_code == 404

    now = time.time()
    runtime.store.leases.stage(
        IPv4Address("10.0.0.100"),
        StoredLease(IPv4Address("10.0.0.100"), MacAddress.parse(MAC), None, "h1", now, now + 600),
    )
    runtime.store.leases.flush()
    leases = admin_api.get("/api/v1/leases").json
    assert leases["leases"][0]["ip"] == "10.0.0.100" and leases["leases"][0]["active"]


def test_register_a_discovered_machine_keeps_what_was_seen(admin_api: ApiClient, runtime: Runtime) -> None:
    mac = MacAddress.parse(MAC)
    runtime.store.systems.seen(mac, arch="bios", uuid="4c4c4544-0042-3510-8052-b4c04f384d32", now=100.0)
    resp = create(admin_api)
    assert resp.status_code == 201  # type: ignore[attr-defined]
    got = resp.json  # type: ignore[attr-defined]
    assert got["state"] == "install" and got["arch"] == "bios" and got["first_seen"] == 100.0
    assert runtime.store.audit.list()[0].action == "register-discovered"


def test_a_refused_body_names_every_field_at_fault(admin_api: ApiClient) -> None:
    resp = create(admin_api, mac=12, hostname=5, labels={"rack": 1, "ok": "x"}, local_boot="sanbot", extra=1)
    assert resp.status_code == 400  # type: ignore[attr-defined]
    error = resp.json["error"]  # type: ignore[attr-defined]
    assert error["field"] == "mac"
    assert set(error["fields"]) == {"mac", "hostname", "labels.rack", "local_boot", "extra"}
    assert "did you mean 'sanboot'" in error["fields"]["local_boot"]
    assert "allowed: mac, profile, hostname, ip, vars, labels, local_boot" in error["fields"]["extra"]
    assert all(f"{path}: {reason}" in error["message"] for path, reason in error["fields"].items())
    missing = admin_api.post("/api/v1/systems", json={}).json["error"]
    assert missing["fields"] == {"mac": "is required", "profile": "is required"}
    # a refusal by registration (the meaning, not the shape) keeps the one-field form
    resp = create(admin_api, ip="224.0.0.1")
    assert resp.json == {"error": {"message": resp.json["error"]["message"], "field": "ip"}}  # type: ignore[attr-defined]


def test_patch_changes_only_the_keys_sent_and_refuses_null_profile_or_state(admin_api: ApiClient) -> None:
    create(admin_api, hostname="web1", ip="10.0.0.50", labels={"rack": "r1"})
    url = f"/api/v1/systems/{MAC}"
    got = admin_api.patch(url, json={"ip": None}).json
    assert got["ip"] is None and got["hostname"] == "web1" and got["labels"] == {"rack": "r1"}
    refused = [({"profile": None}, "profile"), ({"state": None}, "state"), ({"state": "gone"}, "state")]
    for body, field in refused:
        resp = admin_api.patch(url, json=body)
        assert resp.status_code == 400 and resp.json["error"]["field"] == field, resp.json
    assert admin_api.get(url).json["profile"] == "debian12-preseed"


def test_local_boot_is_set_changed_and_cleared(admin_api: ApiClient, runtime: Runtime) -> None:
    resp = create(admin_api, local_boot="exit")
    assert resp.status_code == 201 and resp.json["local_boot"] == "exit"  # type: ignore[attr-defined]
    stored = runtime.store.systems.get(MacAddress.parse(MAC))
    assert stored is not None and stored.local_boot == "exit"
    url = f"/api/v1/systems/{MAC}"
    assert admin_api.patch(url, json={"local_boot": "sanboot"}).json["local_boot"] == "sanboot"
    assert admin_api.patch(url, json={"hostname": "web2"}).json["local_boot"] == "sanboot"
    assert admin_api.patch(url, json={"local_boot": None}).json["local_boot"] is None
    assert admin_api.get(url).json["local_boot"] is None
    resp = admin_api.patch(url, json={"local_boot": "grub"})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "local_boot"


def test_query_strings(admin_api: ApiClient) -> None:
    create(admin_api)
    assert len(admin_api.get("/api/v1/systems?state=&profile=&q=").json["systems"]) == 1  # empty = default
    assert admin_api.get("/api/v1/systems?state=discovered").json["systems"] == []
    resp = admin_api.get("/api/v1/systems?state=gone")
    assert resp.status_code == 400 and resp.json["error"]["field"] == "state"
    resp = admin_api.get("/api/v1/audit?limit=0")
    assert resp.status_code == 400 and resp.json["error"]["field"] == "limit"
    assert admin_api.get("/api/v1/leases?all=1&cachebuster=3").status_code == 200


def _served_api_operations(app: Flask) -> set[tuple[str, str]]:
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    return served


def _refs(node: object) -> set[str]:
    if isinstance(node, dict):
        return {node["$ref"]} if "$ref" in node else {r for v in node.values() for r in _refs(v)}
    if isinstance(node, list):
        return {r for v in node for r in _refs(v)}
    return set()


def test_openapi_document_covers_every_api_route(app: Flask) -> None:
    doc = document()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _served_api_operations(app)
    assert len({r.operation_id for r in ROUTES}) == len(ROUTES) == len(documented)
    rules = list(app.url_map.iter_rules())
    endpoints = {(rule.rule, method): rule.endpoint for rule in rules for method in rule.methods or ()}
    for route in ROUTES:  # documented as needing no token exactly when the view is marked public
        view = app.view_functions[endpoints[(route.path, route.method)]]
        assert getattr(view, "_netboot_public", False) == route.public, route.path
    for ref in _refs(doc):  # every schema and response the document points at is in it
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in doc["components"][section], ref
    resp = app.test_client().get("/api/v1/openapi.json")
    assert resp.json["openapi"].startswith("3.") and resp.json == doc


def test_each_view_checks_the_body_and_query_its_document_names(admin_api: ApiClient) -> None:
    """A view that validated with another model than the documented one would answer differently here."""
    create(admin_api)
    doc = document()
    schemas = doc["components"]["schemas"]
    checked = 0
    for path, ops in doc["paths"].items():
        url = path.replace("{mac}", MAC).replace("{name}", "debian12-preseed")
        for method, op in ops.items():
            if "requestBody" in op:
                model = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                resp = admin_api.client.open(
                    url, method=method.upper(), json={"not_a_field": 1}, headers=admin_api._headers(None)
                )
                assert resp.status_code == 400, (path, method)
                allowed = ", ".join(schemas[model]["properties"])
                assert f"allowed: {allowed}" in resp.json["error"]["fields"]["not_a_field"]
                checked += 1
            for param in op.get("parameters", []):
                schema = param["schema"]
                checkable = schema["type"] in ("integer", "boolean") or "enum" in schema
                if param["in"] != "query" or not checkable:
                    continue
                resp = admin_api.client.open(
                    f"{url}?{param['name']}=-bogus", method=method.upper(), headers=admin_api._headers(None)
                )
                assert resp.status_code == 400 and resp.json["error"]["field"] == param["name"], (path, param)
                checked += 1
    assert checked >= 8
