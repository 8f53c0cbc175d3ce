"""The HTML pages: forms with the CLI's validation, one-click registration, bulk, users, tokens, audit."""

from __future__ import annotations

import re
import time

from netboot.events import Event
from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import WebClient

MAC = "52:54:00:12:34:56"


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error"[^>]*data-field="{field}">([^<]*)</p>', html)
    return found.group(1) if found else None


def register(admin: WebClient, **form: str) -> object:
    admin.get("/ui/systems/new")
    data = {"mac": MAC, "profile": "debian12-preseed", "hostname": "web1", "ip": "", "vars": "", **form}
    return admin.post("/ui/systems/new", data)


def test_register_through_the_form(admin: WebClient, runtime: Runtime) -> None:
    resp = register(admin, vars='{"disk": "/dev/vda"}')
    assert resp.status_code == 302 and resp.headers["Location"] == f"/ui/systems/{MAC}"  # type: ignore[attr-defined]
    page = admin.get(f"/ui/systems/{MAC}")
    assert "Registered 52:54:00:12:34:56 (web1)" in page.text
    assert "registered by admin with profile debian12-preseed" in page.text  # on the timeline
    assert "preseed.cfg" in page.text and "#!ipxe" in page.text  # preview
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert (
        system is not None
        and system.state is SystemState.INSTALL
        and system.variables == {"disk": "/dev/vda"}
    )
    listing = admin.get("/ui/systems?q=web1")
    assert "web1" in listing.text and MAC in listing.text
    assert MAC not in admin.get("/ui/systems?profile=local").text


def test_form_errors_name_the_field_and_keep_the_values(admin: WebClient, runtime: Runtime) -> None:
    cases = [
        ({"mac": "52:54:00:zz"}, "mac"),
        ({"profile": "no-such-profile"}, "profile"),
        ({"hostname": "bad_name"}, "hostname"),
        ({"ip": "300.1.1.1"}, "ip"),
        ({"vars": "{oops"}, "vars"),
        ({"vars": "[1]"}, "vars"),
    ]
    for form, field in cases:
        resp = register(admin, **form)
        assert resp.status_code == 400, form  # type: ignore[attr-defined]
        html = resp.get_data(as_text=True)  # type: ignore[attr-defined]
        assert field_error(html, field), (form, html[:3000])
        value = next(iter(form.values()))
        if field in ("mac", "profile", "hostname", "ip"):
            assert f'value="{value}"' in html
    assert "unknown profile" in (
        field_error(
            register(admin, profile="no-such-profile").get_data(as_text=True),  # type: ignore[attr-defined]
            "profile",
        )
        or ""
    )
    assert runtime.store.systems.list() == []


def test_edit_reinstall_cancel_and_remove(admin: WebClient, runtime: Runtime) -> None:
    register(admin)
    mac = MacAddress.parse(MAC)
    admin.get(f"/ui/systems/{MAC}/edit")
    resp = admin.post(
        f"/ui/systems/{MAC}/edit",
        {"profile": "rocky9-kickstart", "hostname": "db1", "ip": "10.0.0.7", "vars": ""},
    )
    assert resp.status_code == 302
    got = runtime.store.systems.get(mac)
    assert got is not None and (got.profile, got.hostname, str(got.ip)) == (
        "rocky9-kickstart",
        "db1",
        "10.0.0.7",
    )
    resp = admin.post(f"/ui/systems/{MAC}/edit", {"profile": "nope", "hostname": "db1", "ip": "", "vars": ""})
    assert resp.status_code == 400 and field_error(resp.text, "profile")

    admin.post(f"/ui/systems/{MAC}/state", {"state": "local"})
    assert runtime.store.systems.get(mac).state is SystemState.LOCAL  # type: ignore[union-attr]
    token = runtime.store.systems.get(mac).token  # type: ignore[union-attr]
    admin.post(f"/ui/systems/{MAC}/reinstall")
    again = runtime.store.systems.get(mac)
    assert again is not None and again.state is SystemState.INSTALL and again.token != token

    assert "Remove db1?" in admin.get(f"/ui/systems/{MAC}/remove").text
    resp = admin.post(f"/ui/systems/{MAC}/remove")
    assert resp.status_code == 302 and runtime.store.systems.get(mac) is None
    actions = [e.action for e in runtime.store.audit.list() if e.target == f"system {MAC}"]
    assert actions == ["remove", "reinstall", "edit", "edit", "register"]


def test_bulk_is_all_or_nothing_with_line_numbers(admin: WebClient, runtime: Runtime) -> None:
    admin.get("/ui/systems/bulk")
    text = (
        "# rack 4\n52:54:00:00:00:01,node1,debian12-preseed\n\n52:54:00:00:00:02,,rocky9-kickstart\n"
        "nonsense,node3,debian12-preseed\n52:54:00:00:00:04,node4,nope\n52:54:00:00:00:01,node5,local\n"
        "only,two\n"
    )
    resp = admin.post("/ui/systems/bulk", {"lines": text})
    assert resp.status_code == 400
    for expected in ("line 5: mac:", "line 6: profile:", "line 7: mac:", "line 8: line:"):
        assert expected in resp.text, expected
    assert runtime.store.systems.list() == []
    good = "52:54:00:00:00:01,node1,debian12-preseed\n52-54-00-00-00-02,,rocky9-kickstart\n"
    resp = admin.post("/ui/systems/bulk", {"lines": good})
    assert resp.status_code == 302
    assert sorted(s.mac.colon for s in runtime.store.systems.list()) == [
        "52:54:00:00:00:01",
        "52:54:00:00:00:02",
    ]


def test_discovered_machine_registers_with_one_click(admin: WebClient, runtime: Runtime) -> None:
    mac = MacAddress.parse("52:54:00:aa:bb:01")
    runtime.store.systems.seen(mac, arch="uefi-x64", uuid=None, now=time.time() - 120)
    runtime.store.systems.seen(mac, arch="uefi-x64", uuid=None, now=time.time())
    page = admin.get("/ui/discovered")
    assert "52:54:00:aa:bb:01" in page.text and "uefi-x64" in page.text and "2 min ago" in page.text
    assert "1 unknown machine seen booting" in admin.get("/ui/systems").text
    resp = admin.post(
        "/ui/discovered/52:54:00:aa:bb:01/register", {"profile": "debian12-preseed", "hostname": ""}
    )
    assert resp.status_code == 302
    got = runtime.store.systems.get(mac)
    assert got is not None and got.state is SystemState.INSTALL and got.profile == "debian12-preseed"
    assert got.arch == "uefi-x64" and got.token
    assert 'id="d-525400aabb01"' not in admin.get("/ui/discovered").text
    resp = admin.post("/ui/discovered/52:54:00:aa:bb:01/register", {"profile": "debian12-preseed"})
    assert resp.status_code == 400 and "already registered" in resp.text
    runtime.store.systems.seen(MacAddress.parse("52:54:00:aa:bb:02"), arch="bios", uuid=None, now=time.time())
    resp = admin.post("/ui/discovered/52:54:00:aa:bb:02/register", {"profile": "gone"})
    assert resp.status_code == 400 and "profile: unknown profile" in resp.text


def test_viewer_sees_pages_without_admin_controls(viewer: WebClient, admin: WebClient) -> None:
    register(admin)
    page = viewer.get(f"/ui/systems/{MAC}")
    assert page.status_code == 200 and "Mark for reinstall" not in page.text and "token-hidden" in page.text
    assert "Register a system" not in viewer.get("/ui/systems").text
    nav = viewer.get("/ui/systems").text
    assert "/ui/users" not in nav and "/ui/audit" not in nav


def test_users_page_adds_and_removes(admin: WebClient, runtime: Runtime) -> None:
    admin.get("/ui/users")
    resp = admin.post(
        "/ui/users",
        {"name": "carol", "role": "viewer", "password": "carol-password", "password2": "carol-password"},
    )
    assert resp.status_code == 302 and runtime.store.users.get("carol") is not None
    resp = admin.post(
        "/ui/users", {"name": "dave", "role": "viewer", "password": "short", "password2": "short"}
    )
    assert resp.status_code == 400 and field_error(resp.text, "password")
    resp = admin.post("/ui/users", {"name": "", "role": "admin", "password": "-1", "password2": "-1"})
    assert resp.status_code == 400
    resp = admin.post(
        "/ui/users",
        {"name": "erin", "role": "admin", "password": "erin-password", "password2": "erin-passwort"},
    )
    assert resp.status_code == 400 and field_error(resp.text, "password2")
    assert admin.post("/ui/users/admin/remove").status_code == 400  # not yourself
    assert admin.post("/ui/users/carol/remove").status_code == 302
    assert runtime.store.users.get("carol") is None
    actions = [e.action for e in runtime.store.audit.list()]
    assert "user-add" in actions and "user-remove" in actions


def test_tokens_are_shown_once_and_revocable(
    admin: WebClient, viewer: WebClient, runtime: Runtime, app
) -> None:  # type: ignore[no-untyped-def]
    admin.get("/ui/tokens")
    resp = admin.post("/ui/tokens", {"name": "ansible", "user": "viewer"})
    secret = re.search(r'id="new-token-secret">([^<]+)<', resp.text)
    assert resp.status_code == 200 and secret
    token = secret.group(1)
    client = app.test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["name"] == "viewer" and me.json["role"] == "viewer"
    assert token not in admin.get("/ui/tokens").text  # never again
    # the viewer sees and can revoke their own token, not the admin's
    own = runtime.store.tokens.list()[0]
    admin_user = runtime.store.users.get("admin")
    assert admin_user is not None
    theirs, _ = runtime.store.tokens.create(admin_user, "admin-only")
    page = viewer.get("/ui/tokens")
    assert "ansible" in page.text and "admin-only" not in page.text
    assert viewer.post(f"/ui/tokens/{theirs.id}/revoke").status_code == 404
    assert viewer.post("/ui/tokens", {"name": "mine", "user": "admin"}).status_code == 400
    assert viewer.post(f"/ui/tokens/{own.id}/revoke").status_code == 302
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert runtime.store.tokens.get(theirs.id).active  # type: ignore[union-attr]


def test_audit_page_shows_who_changed_what(admin: WebClient) -> None:
    register(admin)
    page = admin.get("/ui/audit")
    assert page.status_code == 200
    assert "register" in page.text and f"system {MAC}" in page.text and "login" in page.text


def test_profiles_pages(admin: WebClient) -> None:
    page = admin.get("/ui/profiles")
    assert "debian12-preseed" in page.text and "rocky9-kickstart" in page.text and "badge ok" in page.text
    one = admin.get("/ui/profiles/debian12-preseed")
    assert "bookworm" in one.text and "preseed.cfg" in one.text
    assert admin.get("/ui/profiles/nope").status_code == 404


def test_timeline_shows_events_with_time_and_client_ip(admin: WebClient, runtime: Runtime) -> None:
    register(admin)
    mac = MacAddress.parse(MAC)
    runtime.recorder.record(Event(phase="dhcp", summary="ACK 10.0.0.50", mac=mac, client_ip="10.0.0.50"))
    runtime.recorder.record(
        Event(
            phase="tftp",
            summary="sent 74213 bytes",
            mac=mac,
            client_ip="10.0.0.50",
            detail={"file": "undionly.kpxe"},
        )
    )
    runtime.store.events.wait_idle()
    page = admin.get(f"/ui/systems/{MAC}").text
    assert "ACK 10.0.0.50" in page and "<code>undionly.kpxe</code>" in page and "UTC" in page
    assert 'data-url="/api/v1/systems/52:54:00:12:34:56/events"' in page


def test_leases_page_in_proxy_mode_explains(admin: WebClient) -> None:
    assert "hands out no addresses" in admin.get("/ui/leases").text


def test_missing_pages_are_404(admin: WebClient) -> None:
    assert admin.get("/ui/systems/52:54:00:00:00:99").status_code == 404
    assert admin.get("/ui/systems/not-a-mac").status_code == 404
    assert admin.get("/ui/nothing").status_code == 404
