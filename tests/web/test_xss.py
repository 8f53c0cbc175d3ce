"""Stored XSS: a payload in every string field the pages show is escaped on every page.

Validation would refuse most of these (host names, user names); they are written straight into the store
here, as a bug elsewhere or a hostile machine might, to prove the pages escape whatever they are given.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from sqlalchemy import insert

from netboot.events import Event
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.store.accounts import hash_password, users
from netboot.store.leases import Lease

from .conftest import WebClient

PAYLOAD = "\"><script>alert(1)</script><img src=x onerror=alert(2)>'<svg/onload=alert(3)>"
RAW = ("<script>alert(1)", "<img src=x", "<svg/onload")
MAC = MacAddress.parse("52:54:00:66:66:66")
DISCOVERED = MacAddress.parse("52:54:00:77:77:77")


def plant(runtime: Runtime) -> None:
    store = runtime.store
    store.systems.add(
        System(
            mac=MAC,
            profile="debian12-preseed",
            state=SystemState.INSTALL,
            hostname=PAYLOAD,
            variables={PAYLOAD: PAYLOAD, "nested": {"k": [PAYLOAD]}},
            labels={PAYLOAD: PAYLOAD},
            token="tok-123",
            arch=PAYLOAD,
            uuid=PAYLOAD,
            first_seen=1.0,
            last_seen=2.0,
        )
    )
    store.systems.add(
        System(
            mac=MacAddress.parse("52:54:00:66:66:67"),
            profile=PAYLOAD,
            state=SystemState.LOCAL,
            hostname="other",
        )
    )
    store.systems.seen(DISCOVERED, arch=PAYLOAD, uuid=PAYLOAD, now=time.time())
    for phase in ("dhcp", PAYLOAD):
        runtime.recorder.record(
            Event(
                phase=phase,
                summary=PAYLOAD,
                mac=MAC,
                client_ip=PAYLOAD,
                detail={"file": PAYLOAD, "path": PAYLOAD},
            )
        )
    store.events.wait_idle()
    now = time.time()
    store.leases.stage(
        IPv4Address("10.0.0.100"), Lease(IPv4Address("10.0.0.100"), MAC, None, PAYLOAD, now, now + 600)
    )
    store.leases.flush()
    with store.engine.begin() as conn:
        conn.execute(
            insert(users).values(
                name=PAYLOAD, password=hash_password("x" * 10), role="viewer", created=now, generation=0
            )
        )
    viewer = store.users.get("viewer")
    assert viewer is not None
    store.tokens.create(viewer, PAYLOAD)
    store.audit.write(PAYLOAD, PAYLOAD, PAYLOAD, {PAYLOAD: PAYLOAD})


PAGES = [
    "/ui/systems",
    f"/ui/systems?q={PAYLOAD}",
    f"/ui/systems/{MAC}",
    f"/ui/systems/{MAC}/edit",
    f"/ui/systems/{MAC}/remove",
    "/ui/systems/52:54:00:66:66:67",
    "/ui/discovered",
    f"/ui/systems/{DISCOVERED}",
    "/ui/profiles",
    "/ui/leases",
    "/ui/users",
    "/ui/tokens",
    "/ui/audit",
    "/ui/account",
    "/ui/systems/new",
    "/ui/systems/bulk",
    f"/ui/profiles/{PAYLOAD}",
]


def assert_escaped(html: str, where: str) -> None:
    for raw in RAW:
        assert raw not in html, f"unescaped {raw!r} on {where}"


def test_payloads_are_escaped_on_every_page(admin: WebClient, runtime: Runtime) -> None:
    plant(runtime)
    shown = 0
    for url in PAGES:
        resp = admin.get(url)
        assert resp.status_code in (200, 404), (url, resp.status_code)
        html = resp.get_data(as_text=True)
        assert_escaped(html, url)
        shown += html.count("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert shown >= 15  # the payload really was on the pages, escaped


def test_payloads_in_form_errors_are_escaped(admin: WebClient) -> None:
    admin.get("/ui/systems/new")
    for field in ("mac", "profile", "hostname", "ip", "vars"):
        data = {
            "mac": "52:54:00:00:00:01",
            "profile": "debian12-preseed",
            "hostname": "",
            "ip": "",
            "vars": "",
            field: PAYLOAD,
        }
        resp = admin.post("/ui/systems/new", data)
        assert resp.status_code == 400, field
        assert_escaped(resp.get_data(as_text=True), f"form error {field}")
    resp = admin.post("/ui/systems/bulk", {"lines": f"{PAYLOAD},{PAYLOAD},{PAYLOAD}\n"})
    assert_escaped(resp.get_data(as_text=True), "bulk")
    admin.get("/ui/users")
    resp = admin.post("/ui/users", {"name": PAYLOAD, "role": PAYLOAD, "password": "x", "password2": "y"})
    assert_escaped(resp.get_data(as_text=True), "users form")
    resp = admin.post("/ui/tokens", {"name": PAYLOAD, "user": PAYLOAD})
    assert_escaped(resp.get_data(as_text=True), "tokens form")


def test_payload_as_user_name_on_the_login_page(web: WebClient) -> None:
    resp = web.login(PAYLOAD, "wrong-password")
    assert resp.status_code == 401
    assert_escaped(resp.get_data(as_text=True), "login")


def test_api_answers_json_never_html(admin: WebClient, runtime: Runtime) -> None:
    plant(runtime)
    for url in (
        f"/api/v1/systems/{MAC}",
        f"/api/v1/systems/{MAC}/events",
        "/api/v1/discovered",
        f"/api/v1/systems/{MAC}/preview",
        "/api/v1/leases",
        "/api/v1/audit",
    ):
        resp = admin.client.get(url)
        assert resp.status_code == 200 and resp.mimetype == "application/json", url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
