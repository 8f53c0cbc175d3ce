"""Secret variables (issue 15, finding 5): nobody but the machine itself reads a root password hash.

A viewer walks every UI page and API read and finds no secret value anywhere (the profile's sample hash,
a system's own hash and token, a value named secret only by a group's ``secrets:``); previews are rendered
with ``<secret>``; the audit log holds no secret value (a changed one is "changed"); an admin who asks
``?reveal=secrets`` sees them and is audited, a viewer asking is refused (403, audited); the edit form and
a PATCH that send ``<secret>`` back keep the stored value; the machine's own answer file and TFTP boot
config have the real values.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.routing import Rule

import netboot.runtime
from netboot import registration, secretvars
from netboot.config import Config
from netboot.mac import MacAddress
from netboot.runtime import Runtime, build_runtime

from .conftest import ADMIN, PROFILES, VIEWER, ApiClient, WebClient

MAC = "52:54:00:12:34:56"
DISCOVERED = "52:54:00:99:88:77"
#: the sample profiles' root password hash (of "changeme"), distinctive tail
SAMPLE_HASH = (
    "$6$netbootsample$8bf//TzBOF7..JxOELc9U/MYbWBBlj/xxDDXa.9d02sQNGAw8o6e7CBB83.1B97mswbDgkFHQPoIjlGgI3sht0"
)
#: the system's own secrets: its hash (default name rule), a token (name rule) and one only a group names
SYS_HASH = "$6$ownsalt$Zq9systemhashvalue0123456789abcdefXYZ"
SYS_TOKEN = "tok-3f9a8c7e6d5b4a39"
GROUP_SECRET = "ldap-bind-pw-77aa55"
SECRETS = (SAMPLE_HASH, SYS_HASH, SYS_TOKEN, GROUP_SECRET)
#: a piece of each, as a page may break a long value over markup (and HTML escapes nothing in these)
NEEDLES = ("GgI3sht0", "Zq9systemhash", "3f9a8c7e6d5b", "bind-pw-77aa")
SYS_VARS = {
    "root_password_hash": SYS_HASH,
    "api_token": SYS_TOKEN,
    "ldap": {"bind": GROUP_SECRET, "host": "ldap.lab"},
    "disk": "/dev/vda",
}
GROUP = """\
description: the lab's machines bind to LDAP
profile: rocky9-kickstart
selector:
  mac: "52:54:00:12:34:56"
secrets: [ldap.bind]
"""


def assert_no_secret(text: str, where: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"secret {needle!r} shown on {where}"


@pytest.fixture
def profiles_dir(tmp_path: Path) -> Path:
    """The sample profiles plus a group for MAC that marks ``ldap.bind`` secret."""
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES, target)
    (target / "_groups").mkdir(exist_ok=True)
    (target / "_groups" / "lab.yaml").write_text(GROUP)
    return target


@pytest.fixture
def runtime(tmp_path: Path, profiles_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """tests/web's runtime (its users), over the profiles with the group (re-read at every access); one
    registered system with secrets, booted once from 127.0.0.1 (the test client's address, so its token
    works from there), and one discovered machine."""
    monkeypatch.setattr(netboot.runtime, "PROFILE_CHECK_INTERVAL", 0.0)
    cfg = Config(data_dir=tmp_path / "data", profiles_dir=profiles_dir, server_ip=IPv4Address("10.0.0.1"))
    rt = build_runtime(cfg)
    rt.store.users.add(*ADMIN, role="admin")
    rt.store.users.add(*VIEWER, role="viewer")
    system = registration.register(rt, MAC, "rocky9-kickstart", "web1", None, SYS_VARS, "admin")
    rt.recorder.learn("127.0.0.1", system.mac)
    rt.core.boot_config("ipxe", system.mac, host=None, client_ip="127.0.0.1")
    rt.store.systems.seen(MacAddress.parse(DISCOVERED), arch="bios", uuid=None, now=1.0)
    yield rt
    rt.close()


def _fill(rule: Rule, runtime: Runtime) -> list[str]:
    """Every URL of ``rule`` with real values: each system (registered and discovered), each profile."""
    choices = {
        "mac": [MAC, DISCOVERED],
        "name": runtime.profiles.names(),
        "token_id": ["1"],
        "filename": ["netboot.css"],
    }
    urls = [""]
    for arg in sorted(rule.arguments):
        urls = [f"{u}|{arg}={v}" for u in urls for v in choices[arg]]
    out = []
    for combo in urls:
        values = dict(part.split("=", 1) for part in combo.split("|") if part)
        path = rule.rule
        for key, value in values.items():
            path = path.replace(f"<{key}>", value)
        out.append(path)
    return out


def _get_urls(app: Flask, runtime: Runtime, prefix: str) -> list[str]:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(prefix) and "GET" in (r.methods or ())]
    assert len(rules) >= 8, rules
    return [url for rule in rules for url in _fill(rule, runtime)]


# ------------------------------------------------------------------------------------------ viewers


def test_a_viewer_walking_every_ui_page_sees_no_secret(
    app: Flask, runtime: Runtime, viewer: WebClient
) -> None:
    urls = _get_urls(app, runtime, "/ui/")
    assert f"/ui/systems/{MAC}" in urls and f"/ui/systems/{MAC}/edit" in urls
    assert "/ui/profiles/rocky9-kickstart" in urls
    shown = 0
    for url in urls:
        resp = viewer.get(url, follow_redirects=True)
        assert resp.status_code in (200, 403, 404), (url, resp.status_code)
        html = resp.get_data(as_text=True)
        assert_no_secret(html, url)
        shown += html.count("&lt;secret&gt;")
    # the secrets were on the pages, as the placeholder: system vars, preview, edit form, profiles
    assert shown >= 8
    page = viewer.get(f"/ui/systems/{MAC}").get_data(as_text=True)
    assert "rootpw --iscrypted &lt;secret&gt;" in page  # the preview, rendered with the placeholder
    assert "ldap.lab" in page and "/dev/vda" in page  # what is not secret is still shown
    assert 'id="reveal"' not in page  # no reveal link for viewers


def test_a_viewer_on_every_api_read_sees_no_secret(
    app: Flask, runtime: Runtime, viewer_api: ApiClient
) -> None:
    urls = _get_urls(app, runtime, "/api/v1/")
    for url in urls:
        resp = viewer_api.get(url)
        assert resp.status_code in (200, 403), (url, resp.status_code)
        assert_no_secret(resp.get_data(as_text=True), url)
    system = viewer_api.get(f"/api/v1/systems/{MAC}").json
    assert system["vars"] == {
        "root_password_hash": "<secret>",
        "api_token": "<secret>",
        "ldap": {"bind": "<secret>", "host": "ldap.lab"},
        "disk": "/dev/vda",
    }
    listed = viewer_api.get("/api/v1/systems").json["systems"]
    assert [s["vars"] for s in listed if s["mac"] == MAC] == [system["vars"]]
    profile = viewer_api.get("/api/v1/profiles/rocky9-kickstart").json
    assert profile["variables"]["root_password_hash"] == "<secret>"
    for entry in viewer_api.get("/api/v1/profiles").json["profiles"]:
        hashes = {k: v for k, v in entry["variables"].items() if secretvars.is_secret_name(k)}
        assert all(v == "<secret>" for v in hashes.values()), entry["name"]
    files = viewer_api.get(f"/api/v1/systems/{MAC}/preview").json["files"]
    ks = next(f["content"] for f in files if f["name"] == "ks.cfg")
    assert "rootpw --iscrypted <secret>\n" in ks


def test_an_admin_without_reveal_sees_no_secret_either(
    app: Flask, runtime: Runtime, admin: WebClient, admin_api: ApiClient
) -> None:
    for url in _get_urls(app, runtime, "/ui/"):
        assert_no_secret(admin.get(url, follow_redirects=True).get_data(as_text=True), url)
    for url in _get_urls(app, runtime, "/api/v1/"):
        assert_no_secret(admin_api.get(url).get_data(as_text=True), url)
    assert 'id="reveal"' in admin.get(f"/ui/systems/{MAC}").get_data(as_text=True)


# --------------------------------------------------------------------------------------- the audit


def _audit_text(runtime: Runtime) -> str:
    return json.dumps([(e.actor, e.action, e.target, e.detail) for e in runtime.store.audit.list(limit=1000)])


def test_the_audit_log_holds_no_secret_and_says_a_secret_changed(
    runtime: Runtime, admin: WebClient, admin_api: ApiClient
) -> None:
    register = runtime.store.audit.list(limit=10)[-1]
    assert register.action == "register"
    assert register.detail["vars"]["root_password_hash"] == "<secret>"
    assert register.detail["vars"]["ldap"] == {"bind": "<secret>", "host": "ldap.lab"}
    changed = {**SYS_VARS, "root_password_hash": "$6$newsalt$Zq9systemhashNEW", "disk": "/dev/sda"}
    resp = admin_api.patch(f"/api/v1/systems/{MAC}", json={"vars": changed})
    assert resp.status_code == 200, resp.json
    edit = runtime.store.audit.list(limit=1)[0]
    assert edit.action == "edit"
    assert edit.detail == {
        "vars": {"root_password_hash": "changed", "disk": {"from": "/dev/vda", "to": "/dev/sda"}}
    }
    resp = admin_api.patch(f"/api/v1/systems/{MAC}", json={"vars": {"ldap": {"bind": "other-secret-9"}}})
    assert resp.status_code == 200, resp.json
    assert runtime.store.audit.list(limit=1)[0].detail["vars"]["ldap"] == {
        "bind": "changed",
        "host": {"from": "ldap.lab", "to": None},
    }
    registration.remove(runtime, MAC, "admin")
    text = _audit_text(runtime)
    assert_no_secret(text, "the audit log")
    assert "Zq9systemhashNEW" not in text and "other-secret-9" not in text
    for page in (admin.get("/ui/audit"), admin_api.get("/api/v1/audit")):
        assert page.status_code == 200
        assert_no_secret(page.get_data(as_text=True), "the audit page")
        assert "Zq9systemhashNEW" not in page.get_data(as_text=True)


# ----------------------------------------------------------------------------------------- reveal


def test_an_admin_who_asks_sees_the_secrets_and_is_audited(
    runtime: Runtime, admin: WebClient, admin_api: ApiClient
) -> None:
    body = admin_api.get(f"/api/v1/systems/{MAC}?reveal=secrets").json
    assert body["vars"] == SYS_VARS
    entry = runtime.store.audit.list(limit=1)[0]
    assert (entry.action, entry.target, entry.actor.startswith("admin (token ")) == (
        "reveal-secrets",
        f"system {MAC}",
        True,
    )
    assert entry.detail == {"view": "api system", "names": ["root_password_hash", "api_token", "ldap.bind"]}

    files = admin_api.get(f"/api/v1/systems/{MAC}/preview?reveal=secrets").json["files"]
    assert f"rootpw --iscrypted {SYS_HASH}\n" in next(f["content"] for f in files if f["name"] == "ks.cfg")
    entry = runtime.store.audit.list(limit=1)[0]
    assert entry.detail["view"] == "api preview" and "root_password_hash" in entry.detail["names"]

    listed = admin_api.get("/api/v1/systems?reveal=secrets").json["systems"]
    assert [s["vars"] for s in listed if s["mac"] == MAC] == [SYS_VARS]
    assert runtime.store.audit.list(limit=1)[0].detail["names"] == {
        MAC: ["root_password_hash", "api_token", "ldap.bind"]
    }
    profile = admin_api.get("/api/v1/profiles/rocky9-kickstart?reveal=secrets").json
    assert profile["variables"]["root_password_hash"] == SAMPLE_HASH
    entry = runtime.store.audit.list(limit=1)[0]
    assert (entry.target, entry.detail) == (
        "profile rocky9-kickstart",
        {"view": "api profile", "names": ["root_password_hash"]},
    )
    profiles = admin_api.get("/api/v1/profiles?reveal=secrets").json["profiles"]
    assert any(p["variables"].get("root_password_hash") == SAMPLE_HASH for p in profiles)
    assert runtime.store.audit.list(limit=1)[0].target == "profiles"

    page = admin.get(f"/ui/systems/{MAC}?reveal=secrets").get_data(as_text=True)
    assert SYS_HASH in page and f"rootpw --iscrypted {SYS_HASH}" in page and GROUP_SECRET in page
    entry = runtime.store.audit.list(limit=1)[0]
    assert (entry.actor, entry.action, entry.detail["view"]) == ("admin", "reveal-secrets", "ui system")
    page = admin.get("/ui/profiles/rocky9-kickstart?reveal=secrets").get_data(as_text=True)
    assert SAMPLE_HASH in page
    assert runtime.store.audit.list(limit=1)[0].detail == {
        "view": "ui profile",
        "names": ["root_password_hash"],
    }
    # the reveals say which variables, never their values
    assert_no_secret(_audit_text(runtime), "the audit log")


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/systems/{MAC}?reveal=secrets",
        "/api/v1/systems?reveal=secrets",
        f"/api/v1/systems/{MAC}/preview?reveal=secrets",
        "/api/v1/profiles?reveal=secrets",
        "/api/v1/profiles/rocky9-kickstart?reveal=secrets",
    ],
)
def test_a_viewer_asking_the_api_to_reveal_is_refused_and_audited(
    runtime: Runtime, viewer_api: ApiClient, url: str
) -> None:
    resp = viewer_api.get(url)
    assert resp.status_code == 403, resp.json
    assert "admin" in resp.json["error"]["message"]
    assert_no_secret(resp.get_data(as_text=True), url)
    entry = runtime.store.audit.list(limit=1)[0]
    assert (entry.action, entry.ok, entry.actor.startswith("viewer (token ")) == ("refused", False, True)
    assert entry.detail == {"reason": "reveal=secrets needs admin"}


@pytest.mark.parametrize(
    "url", [f"/ui/systems/{MAC}?reveal=secrets", "/ui/profiles/rocky9-kickstart?reveal=secrets"]
)
def test_a_viewer_asking_a_page_to_reveal_is_refused_and_audited(
    runtime: Runtime, viewer: WebClient, url: str
) -> None:
    resp = viewer.get(url)
    assert resp.status_code == 403
    assert_no_secret(resp.get_data(as_text=True), url)
    entry = runtime.store.audit.list(limit=1)[0]
    assert (entry.actor, entry.action, entry.ok) == ("viewer", "refused", False)


def test_reveal_takes_only_secrets(admin_api: ApiClient) -> None:
    resp = admin_api.get(f"/api/v1/systems/{MAC}?reveal=all")
    assert resp.status_code == 400 and resp.json["error"]["field"] == "reveal"
    assert_no_secret(resp.get_data(as_text=True), "reveal=all")


def test_openapi_documents_reveal(anon_api: ApiClient) -> None:
    doc = anon_api.get("/api/v1/openapi.json").json
    for path in (
        "/api/v1/systems",
        "/api/v1/systems/{mac}",
        "/api/v1/systems/{mac}/preview",
        "/api/v1/profiles",
        "/api/v1/profiles/{name}",
    ):
        params = {p["name"]: p for p in doc["paths"][path]["get"].get("parameters", [])}
        assert params["reveal"]["schema"]["const"] == "secrets", path
        assert "admin" in params["reveal"]["description"].lower(), path
        assert "audit" in params["reveal"]["description"], path


# ------------------------------------------------------------------------------ writing secrets back


def test_the_edit_form_keeps_the_stored_secret_and_takes_a_new_one(
    runtime: Runtime, admin: WebClient
) -> None:
    form = admin.get(f"/ui/systems/{MAC}/edit").get_data(as_text=True)
    assert_no_secret(form, "the edit form")
    assert "&lt;secret&gt;" in form
    shown = secretvars.redact(SYS_VARS, ["ldap.bind"])
    data = {"profile": "rocky9-kickstart", "hostname": "web1", "ip": ""}
    resp = admin.post(f"/ui/systems/{MAC}/edit", {**data, "vars": json.dumps({**shown, "disk": "/dev/sdb"})})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    stored = runtime.store.systems.get(MacAddress.parse(MAC))
    assert stored is not None
    assert dict(stored.variables) == {**SYS_VARS, "disk": "/dev/sdb"}  # the secrets kept, not "<secret>"
    assert runtime.store.audit.list(limit=1)[0].detail == {
        "vars": {"disk": {"from": "/dev/vda", "to": "/dev/sdb"}}
    }
    new = {**shown, "root_password_hash": "$6$typed$new", "ldap": {"bind": "<secret>", "host": "ldap2"}}
    resp = admin.post(f"/ui/systems/{MAC}/edit", {**data, "vars": json.dumps(new)})
    assert resp.status_code == 302
    stored = runtime.store.systems.get(MacAddress.parse(MAC))
    assert stored is not None
    assert stored.variables["root_password_hash"] == "$6$typed$new"
    assert stored.variables["ldap"] == {"bind": GROUP_SECRET, "host": "ldap2"}
    assert stored.variables["api_token"] == SYS_TOKEN
    assert runtime.store.audit.list(limit=1)[0].detail["vars"]["root_password_hash"] == "changed"


def test_a_patch_that_sends_the_placeholder_back_keeps_the_secret(
    runtime: Runtime, admin_api: ApiClient
) -> None:
    got = admin_api.get(f"/api/v1/systems/{MAC}").json["vars"]
    resp = admin_api.patch(f"/api/v1/systems/{MAC}", json={"vars": {**got, "disk": "/dev/sdc"}})
    assert resp.status_code == 200 and resp.json["vars"]["root_password_hash"] == "<secret>"
    stored = runtime.store.systems.get(MacAddress.parse(MAC))
    assert stored is not None and dict(stored.variables) == {**SYS_VARS, "disk": "/dev/sdc"}


# ------------------------------------------------------------------------------ the machine itself


def test_the_machine_gets_the_real_values(app: Flask, runtime: Runtime) -> None:
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None and system.token
    machine = app.test_client()  # the address it booted from (127.0.0.1), no sign-in
    resp = machine.get(f"/answer/{MAC}/ks.cfg?token={system.token}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert f"rootpw --iscrypted {SYS_HASH}\n" in resp.get_data(as_text=True)


def test_the_machine_gets_real_values_in_its_tftp_boot_config(
    tmp_path: Path, profiles_dir: Path, runtime: Runtime, viewer_api: ApiClient
) -> None:
    # a profile marking kernel_args secret: the boot configs carry it, the preview must not
    profile = profiles_dir / "debian12-preseed" / "profile.yaml"
    profile.write_text(profile.read_text() + "secrets: [kernel_args]\n")
    other = "52:54:00:12:34:57"
    system = registration.register(
        runtime,
        other,
        "debian12-preseed",
        "web2",
        None,
        {"kernel_args": "inst.sshpw=kern-secret-42"},
        "admin",
    )
    runtime.recorder.learn("127.0.0.2", system.mac)
    config = runtime.core.tftp_file("pxelinux.cfg/01-52-54-00-12-34-57", ("127.0.0.2", 2070))
    assert config is not None and b"inst.sshpw=kern-secret-42" in config
    files = viewer_api.get(f"/api/v1/systems/{other}/preview").json["files"]
    assert all("kern-secret-42" not in (f["content"] or "") for f in files)
    assert "<secret>" in files[0]["content"]
    assert viewer_api.get(f"/api/v1/systems/{other}").json["vars"] == {"kernel_args": "<secret>"}


# ------------------------------------------------------------------------------------ the functions


def test_scrub_hides_secrets_quoted_in_free_text() -> None:
    variables = {"root_password_hash": SYS_HASH, "disk": "/dev/vda", "users": [{"password": "abcdef"}]}
    secrets = secretvars.secret_strings(variables)
    assert secrets == {SYS_HASH, "abcdef"}
    text = f"ks.cfg:10: bad hash {SYS_HASH} for /dev/vda; abcdef"
    assert secretvars.scrub(text, secrets) == "ks.cfg:10: bad hash <secret> for /dev/vda; <secret>"


def test_restore_puts_back_only_placeholders_where_a_secret_was() -> None:
    stored = {"api_token": "t0k3n", "note": "x", "users": [{"password": "p4ss", "name": "a"}]}
    sent = {"api_token": "<secret>", "note": "<secret>", "users": [{"password": "<secret>", "name": "b"}]}
    assert secretvars.restore(sent, stored) == {
        "api_token": "t0k3n",
        "note": "<secret>",  # not a secret: taken as sent
        "users": [{"password": "p4ss", "name": "b"}],
    }
    assert secretvars.restore({"new_token": "<secret>"}, stored) == {"new_token": "<secret>"}


def test_a_render_error_quoting_a_secret_is_scrubbed_from_the_profile_problems(
    profiles_dir: Path, viewer: WebClient, viewer_api: ApiClient
) -> None:
    # a broken template whose error message names the hash (a missing key is quoted by Jinja)
    template = profiles_dir / "rocky9-kickstart" / "ks.cfg.j2"
    template.write_text(template.read_text() + "{{ {}[vars.root_password_hash] }}\n")
    problems = viewer_api.get("/api/v1/profiles/rocky9-kickstart").json["problems"]
    assert any("<secret>" in p and "ks.cfg.j2" in p for p in problems), problems
    assert_no_secret(json.dumps(problems), "the profile's problems")
    page = viewer.get("/ui/profiles/rocky9-kickstart").get_data(as_text=True)
    assert "&lt;secret&gt;" in page
    assert_no_secret(page, "the profile page")
    assert_no_secret(viewer.get("/ui/profiles").get_data(as_text=True), "the profiles page")
    validated = viewer.get("/ui/profiles/rocky9-kickstart?validate=1").get_data(as_text=True)
    assert "Validators" in validated and "&lt;secret&gt;" in validated
    assert_no_secret(validated, "the validators' output")


def test_a_render_error_of_the_machine_quoting_its_secret_is_scrubbed_from_its_timeline(
    app: Flask, runtime: Runtime, profiles_dir: Path, viewer: WebClient, viewer_api: ApiClient
) -> None:
    template = profiles_dir / "rocky9-kickstart" / "ks.cfg.j2"
    template.write_text(template.read_text() + "{{ {}[vars.root_password_hash] }}\n")
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None
    resp = app.test_client().get(f"/answer/{MAC}/ks.cfg?token={system.token}")
    assert resp.status_code == 500
    assert runtime.store.events.wait_idle(10)
    events = viewer_api.get(f"/api/v1/systems/{MAC}/events").get_data(as_text=True)
    assert "failed to render" in events and "<secret>" in events
    assert_no_secret(events, "the events API")
    assert_no_secret(viewer.get(f"/ui/systems/{MAC}").get_data(as_text=True), "the system page")
