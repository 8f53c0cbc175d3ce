"""A system's ``boot_chain`` through the API and the UI: set, changed, cleared (inherit), shown with where it
comes from, and a bad value refused with the field named (API 400, form 400 with the field's message),
never stored and never a 500."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from flask import Flask

from netboot import registration
from netboot.config import Config
from netboot.mac import MacAddress
from netboot.runtime import Runtime, build_runtime
from netboot.webapp import create_app
from netboot.webapp.openapi import document

from .conftest import ADMIN, ApiClient, WebClient

MAC = "52:54:00:12:34:56"
URL = f"/api/v1/systems/{MAC}"


def stored_chain(runtime: Runtime) -> str | None:
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None
    return system.boot_chain


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error"[^>]*data-field="{field}">([^<]*)</p>', html)
    return found.group(1) if found else None


def listed_chain(html: str) -> str:
    """The systems list's boot chain cell of the one system, its tooltip and badges left out."""
    found = re.search(r'<td data-label="Boot chain"[^>]*>([^<]*)', html)
    assert found, html[:2000]
    return found.group(1).strip()


def chain_shown(html: str) -> str:
    """The text of the page's "Boot chain" fact, tags removed."""
    found = re.search(r'<dd id="boot-chain">(.*?)</dd>', html, re.S)
    assert found, html[:2000]
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


# ------------------------------------------------------------------------------------------------ API


def test_api_sets_changes_and_clears_it(admin_api: ApiClient, runtime: Runtime) -> None:
    resp = admin_api.post("/api/v1/systems", json={"mac": MAC, "profile": "debian12-preseed",
                                                    "boot_chain": "shim-grub"})
    assert resp.status_code == 201 and resp.json["boot_chain"] == "shim-grub", resp.json
    assert stored_chain(runtime) == "shim-grub"
    assert admin_api.get(URL).json["boot_chain"] == "shim-grub"
    assert [s["boot_chain"] for s in admin_api.get("/api/v1/systems").json["systems"]] == ["shim-grub"]
    assert admin_api.patch(URL, json={"hostname": "web2"}).json["boot_chain"] == "shim-grub"  # kept
    assert admin_api.patch(URL, json={"boot_chain": "ipxe"}).json["boot_chain"] == "ipxe"
    assert admin_api.patch(URL, json={"boot_chain": None}).json["boot_chain"] is None
    assert stored_chain(runtime) is None
    edits = [e.detail for e in runtime.store.audit.list() if e.action == "edit"]
    assert {"boot_chain": {"from": "ipxe", "to": None}} in edits  # the audit says what changed


def test_api_refuses_a_bad_value_naming_the_field(admin_api: ApiClient, runtime: Runtime) -> None:
    resp = admin_api.post("/api/v1/systems", json={"mac": MAC, "profile": "debian12-preseed",
                                                    "boot_chain": "shim-grbu"})
    assert resp.status_code == 400
    error = resp.json["error"]
    assert error["field"] == "boot_chain"
    assert "did you mean 'shim-grub'" in error["fields"]["boot_chain"]
    assert runtime.store.systems.list() == []
    plain = {"mac": MAC, "profile": "debian12-preseed"}
    assert admin_api.post("/api/v1/systems", json=plain).status_code == 201
    for bad in ("grub", 1, ["ipxe"]):
        resp = admin_api.patch(URL, json={"boot_chain": bad})
        assert resp.status_code == 400 and resp.json["error"]["field"] == "boot_chain", (bad, resp.json)
    assert stored_chain(runtime) is None


def test_openapi_documents_the_choices(app: Flask) -> None:
    schemas = document()["components"]["schemas"]
    for name in ("SystemCreate", "SystemPatch", "System"):
        prop = schemas[name]["properties"]["boot_chain"]
        assert {"type": "string", "enum": ["ipxe", "shim-grub"]} in prop["anyOf"], (name, prop)
    assert "Secure Boot" in schemas["SystemCreate"]["properties"]["boot_chain"]["description"]


# ------------------------------------------------------------------------------------------------- UI


def register(admin: WebClient, **form: str) -> object:
    admin.get("/ui/systems/new")
    data = {"mac": MAC, "profile": "debian12-preseed", "hostname": "web1", "ip": "", "vars": "", **form}
    return admin.post("/ui/systems/new", data)


def test_the_form_offers_inherit_ipxe_and_shim_grub(admin: WebClient) -> None:
    html = admin.get("/ui/systems/new").text
    select = re.search(r'<select id="f-boot_chain" name="boot_chain".*?</select>', html, re.S)
    assert select, html
    assert re.findall(r'<option value="([^"]*)"', select.group(0)) == ["", "ipxe", "shim-grub"]
    assert "inherit" in select.group(0)
    assert "the Microsoft-signed shim loads signed GRUB, for machines with UEFI Secure Boot on" in html


def test_ui_registers_edits_and_shows_it(admin: WebClient, runtime: Runtime) -> None:
    resp = register(admin, boot_chain="shim-grub")
    assert resp.status_code == 302, resp.text  # type: ignore[attr-defined]
    assert stored_chain(runtime) == "shim-grub"
    page = admin.get(f"/ui/systems/{MAC}").text
    assert chain_shown(page) == "shim-grub set on this system"
    listing = admin.get("/ui/systems").text
    assert "<th>Boot chain</th>" in listing and listed_chain(listing) == "shim-grub"

    form = admin.get(f"/ui/systems/{MAC}/edit").text
    assert '<option value="shim-grub" selected>' in form  # the form shows the system's own
    assert "inherit (now ipxe)" in form  # and what inheriting would give
    fields = {"profile": "debian12-preseed", "hostname": "web1", "ip": "", "vars": ""}
    # a form without the select keeps it
    assert admin.post(f"/ui/systems/{MAC}/edit", fields).status_code == 302
    assert stored_chain(runtime) == "shim-grub"
    assert admin.post(f"/ui/systems/{MAC}/edit", {**fields, "boot_chain": ""}).status_code == 302
    assert stored_chain(runtime) is None
    assert chain_shown(admin.get(f"/ui/systems/{MAC}").text) == "ipxe the site default (boot-chain)"
    assert listed_chain(admin.get("/ui/systems").text) == "ipxe"


def test_ui_refuses_a_bad_value_with_the_fields_message(admin: WebClient, runtime: Runtime) -> None:
    resp = register(admin, boot_chain="grub")
    assert resp.status_code == 400  # type: ignore[attr-defined]
    html = resp.get_data(as_text=True)  # type: ignore[attr-defined]
    assert field_error(html, "boot_chain") == "must be one of ipxe, shim-grub (or empty to inherit)"
    assert runtime.store.systems.list() == []
    assert register(admin).status_code == 302  # type: ignore[attr-defined]
    fields = {"profile": "debian12-preseed", "hostname": "web1", "ip": "", "vars": ""}
    resp = admin.post(f"/ui/systems/{MAC}/edit", {**fields, "boot_chain": "shim"})
    assert resp.status_code == 400
    assert field_error(resp.text, "boot_chain") == "must be one of ipxe, shim-grub (or empty to inherit)"
    assert stored_chain(runtime) is None


def test_profile_page_shows_the_profiles_chain(admin: WebClient) -> None:
    html = admin.get("/ui/profiles/debian12-preseed").text
    assert chain_shown(html).startswith("ipxe not set")


def test_pages_say_where_an_inherited_chain_comes_from(tmp_path: Path) -> None:
    # a site whose default is shim-grub, and a profile tree where a profile and a group say it
    profiles = tmp_path / "profiles"
    (profiles / "sb").mkdir(parents=True)
    (profiles / "sb" / "profile.yaml").write_text("kind: local\nboot_chain: shim-grub\n")
    (profiles / "child").mkdir()
    (profiles / "child" / "profile.yaml").write_text("parent: sb\n")
    (profiles / "plain").mkdir()
    (profiles / "plain" / "profile.yaml").write_text("kind: local\n")
    (profiles / "_groups").mkdir()
    lab = "profile: plain\nboot_chain: ipxe\nselector: {labels: {room: lab}}\n"
    (profiles / "_groups" / "lab.yaml").write_text(lab)
    runtime = build_runtime(
        replace(Config(), data_dir=tmp_path / "data", profiles_dir=profiles, boot_chain="shim-grub")
    )
    try:
        runtime.store.users.add(*ADMIN, role="admin")
        app = create_app(runtime)
        app.config["TESTING"] = True
        admin = WebClient(app.test_client())
        assert admin.login(*ADMIN).status_code == 302
        macs = {"52:54:00:00:00:01": ("child", {}), "52:54:00:00:00:02": ("plain", {"room": "lab"}),
                "52:54:00:00:00:03": ("plain", {})}
        for mac, (profile, labels) in macs.items():
            registration.register(runtime, mac, profile, labels=labels)
        shown = [chain_shown(admin.get(f"/ui/systems/{mac}").text) for mac in macs]
        assert shown == ["shim-grub from profile child", "ipxe from group lab",
                         "shim-grub the site default (boot-chain)"]
        child = chain_shown(admin.get("/ui/profiles/child").text)
        assert child == "shim-grub set in this profile or a parent"
        assert chain_shown(admin.get("/ui/profiles/plain").text).startswith("shim-grub not set")
        form = admin.get("/ui/systems/new").text
        assert "inherit (its group's, profile's or the site's: shim-grub)" in form
    finally:
        runtime.close()
