"""Issue 15, the authentication findings: API tokens are API-only, expire and carry a role; refusals,
sign-outs and limited sign-ins are audited; a control character in ``?next=`` redirects safely; behind a
trusted proxy the cookie is ``Secure`` and the audit log sees the client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update

from netboot import registration
from netboot.config import HttpConfig
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.store.accounts import AccountError
from netboot.store.schema import api_tokens
from netboot.webapp import create_app

from .conftest import ADMIN, VIEWER, ApiClient, WebClient, make_runtime

MAC = "52:54:00:12:34:56"
DISCOVERED = "52:54:00:99:88:77"
ARGS = {"mac": MAC, "name": "viewer", "token_id": "1", "filename": "netboot.css"}


def _url(rule_text: str, arguments: set[str]) -> str:
    path = rule_text
    for arg in arguments:
        for conv in ("", "int:", "path:", "string:"):
            path = path.replace(f"<{conv}{arg}>", ARGS.get(arg, "x"))
    return path


def _state(runtime: Runtime) -> tuple[object, ...]:
    """What an action through the UI could change: users, tokens, sessions, systems."""
    store = runtime.store
    system = store.systems.get(MacAddress.parse(MAC))
    return (
        [(u.name, u.role, u.generation) for u in store.users.list()],
        [(t.id, t.revoked) for t in store.tokens.list()],
        system,
        len(store.systems.list()),
    )


# -------------------------------------------------------------------------- finding 6: tokens: API only


def test_a_valid_admin_token_is_refused_on_every_ui_route(app: Flask, runtime: Runtime) -> None:
    registration.register(runtime, MAC, "debian12-preseed", "web1", None, None, "test")
    runtime.store.systems.seen(MacAddress.parse(DISCOVERED), arch="bios", uuid=None, now=time.time())
    admin = runtime.store.users.get(ADMIN[0])
    assert admin is not None
    token, secret = runtime.store.tokens.create(admin, "leaked")
    before = _state(runtime)
    client = app.test_client()  # no cookie at all
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/ui"):
            continue
        url = _url(rule.rule, set(rule.arguments))
        for method in sorted(rule.methods or ()):
            form = {
                "name": "minted", "role": "admin", "password": "mallory-pass-1",
                "password2": "mallory-pass-1", "mac": "52:54:00:00:00:42", "profile": "debian12-preseed",
                "lines": "52:54:00:00:00:43,h43,debian12-preseed", "state": "local", "user": "admin",
            }
            resp = client.open(
                url, method=method, headers={"Authorization": f"Bearer {secret}"},
                data=form if method not in ("GET", "HEAD", "OPTIONS") else None,
            )
            checked += 1
            if rule.endpoint == "static":  # the stylesheet, public to anybody: not a page, no action
                assert resp.status_code == 200, (method, url)
                continue
            assert resp.status_code == 403, (method, url, resp.status_code)
            if method != "HEAD":
                assert "API tokens work only on /api/v1/" in resp.text
                assert "Sign out" not in resp.text  # the page is not signed in as the token's user
    assert checked > 60
    assert _state(runtime) == before
    refused = [e for e in runtime.store.audit.list(limit=1000) if e.action == "refused"]
    assert refused and all(e.actor == f"admin (token {token.id})" and not e.ok for e in refused)
    assert {e.target for e in refused} >= {"POST /ui/tokens", "POST /ui/users", "GET /ui/users"}


def test_a_token_beside_a_session_cookie_does_nothing_on_the_ui(admin: WebClient, runtime: Runtime) -> None:
    user = runtime.store.users.get(ADMIN[0])
    assert user is not None
    _token, secret = runtime.store.tokens.create(user, "leaked")
    bearer = {"Authorization": f"Bearer {secret}"}
    admin.get("/ui/tokens")
    resp = admin.post("/ui/tokens", {"name": "minted"}, headers=bearer)
    assert resp.status_code == 403
    resp = admin.post(
        "/ui/users",
        {"name": "mallory", "role": "admin", "password": "mallory-pass", "password2": "mallory-pass"},
        headers=bearer,
    )
    assert resp.status_code == 403
    assert [t.name for t in runtime.store.tokens.list()] == ["leaked"]
    assert runtime.store.users.get("mallory") is None
    assert admin.get("/ui/systems").status_code == 200  # the session itself still works without it


def test_a_proxy_basic_auth_header_does_not_break_the_ui(admin: WebClient) -> None:
    """Only the Bearer scheme is refused on /ui: a TLS proxy's own Basic auth header passes through."""
    resp = admin.get("/ui/systems", headers={"Authorization": "Basic YWRtaW46cHJveHk="})
    assert resp.status_code == 200 and "Sign out" in resp.text


def test_tokens_and_users_are_managed_only_through_a_session(
    admin_api: ApiClient, runtime: Runtime
) -> None:
    for url in ("/api/v1/tokens", "/api/v1/users", "/api/v1/users/admin/tokens"):
        resp = admin_api.post(url, json={"name": "minted", "password": "x" * 12, "role": "admin"})
        assert resp.status_code in (404, 405), url
    assert len(runtime.store.tokens.list()) == 1 and len(runtime.store.users.list()) == 2


def test_an_expired_token_is_refused(app: Flask, runtime: Runtime) -> None:
    user = runtime.store.users.get(ADMIN[0])
    assert user is not None
    token, secret = runtime.store.tokens.create(user, "short", lifetime=3600)
    client = ApiClient(app.test_client(), secret)
    assert client.get("/api/v1/me").status_code == 200
    with runtime.store.engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(expires=time.time() - 1))
    resp = client.get("/api/v1/me")
    assert resp.status_code == 401 and resp.json is not None and "expired" in resp.json["error"]["message"]
    assert runtime.store.tokens.get(token.id).status == "expired"  # type: ignore[union-attr]


def test_a_viewer_token_of_an_admin_only_reads(app: Flask, runtime: Runtime) -> None:
    user = runtime.store.users.get(ADMIN[0])
    assert user is not None
    token, secret = runtime.store.tokens.create(user, "read-only", role="viewer")
    client = ApiClient(app.test_client(), secret)
    assert client.get("/api/v1/systems").status_code == 200
    resp = client.post("/api/v1/systems", json={"mac": MAC, "profile": "debian12-preseed"})
    assert resp.status_code == 403 and resp.json is not None
    assert "acts as viewer" in resp.json["error"]["message"]
    assert client.get("/api/v1/audit").status_code == 403
    assert runtime.store.systems.list() == []
    refused = [(e.action, e.actor, e.target, e.ok) for e in runtime.store.audit.list()]
    assert refused == [  # newest first
        ("refused", f"admin (token {token.id})", "GET /api/v1/audit", False),
        ("refused", f"admin (token {token.id})", "POST /api/v1/systems", False),
    ]


def test_a_token_never_acts_above_its_user(app: Flask, runtime: Runtime) -> None:
    viewer = runtime.store.users.get(VIEWER[0])
    assert viewer is not None
    with pytest.raises(AccountError) as err:
        runtime.store.tokens.create(viewer, "climb", role="admin")
    assert err.value.field == "role"
    # an admin's token with the admin role, its user demoted afterwards: the token is demoted too
    runtime.store.users.add("ops", "ops-password-1", "admin")
    ops = runtime.store.users.get("ops")
    assert ops is not None
    _token, secret = runtime.store.tokens.create(ops, "full", role="admin")
    client = ApiClient(app.test_client(), secret)
    assert client.get("/api/v1/audit").status_code == 200
    runtime.store.users.set_role("ops", "viewer")
    assert client.get("/api/v1/audit").status_code == 403
    assert client.post("/api/v1/systems", json={"mac": MAC, "profile": "debian12-preseed"}).status_code == 403


def test_the_token_form_sets_expiry_and_role(admin: WebClient, runtime: Runtime) -> None:
    admin.get("/ui/tokens")
    resp = admin.post("/ui/tokens", {"name": "ci", "expires": "30d", "role": "viewer"})
    assert resp.status_code == 200 and 'id="new-token-secret"' in resp.text
    made = runtime.store.tokens.list()[-1]
    assert made.role == "viewer" and made.expires is not None
    assert abs(made.expires - (time.time() + 30 * 86400)) < 60
    page = admin.get("/ui/tokens").text
    assert 'name="expires"' in page and 'name="role"' in page

    for expires in ("never", ""):
        resp = admin.post("/ui/tokens", {"name": f"forever-{expires}", "expires": expires, "role": ""})
        assert resp.status_code == 200
        made = runtime.store.tokens.list()[-1]
        assert made.expires is None and made.role is None

    count = len(runtime.store.tokens.list())
    resp = admin.post("/ui/tokens", {"name": "bad", "expires": "soon"})
    assert resp.status_code == 400 and 'data-field="expires"' in resp.text
    resp = admin.post("/ui/tokens", {"name": "bad", "role": "root"})
    assert resp.status_code == 400 and 'data-field="role"' in resp.text
    resp = admin.post("/ui/tokens", {"name": "bad", "user": "viewer", "role": "admin"})
    assert resp.status_code == 400 and 'data-field="role"' in resp.text
    assert len(runtime.store.tokens.list()) == count


def test_the_token_list_shows_expiry_role_and_status(admin: WebClient, runtime: Runtime) -> None:
    user = runtime.store.users.get(ADMIN[0])
    assert user is not None
    old, _ = runtime.store.tokens.create(user, "old-one", lifetime=3600, role="viewer")
    with runtime.store.engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == old.id).values(expires=time.time() - 5))
    runtime.store.tokens.create(user, "forever")
    page = admin.get("/ui/tokens").text
    row_old = page[page.index("old-one"):].split("</tr>")[0]
    row_forever = page[page.index("forever"):].split("</tr>")[0]
    assert "expired" in row_old and "viewer" in row_old and "Revoke" not in row_old
    assert 'data-label="Expires">never<' in row_forever and 'data-label="Expires">never<' not in row_old
    assert "user's role" in row_forever and "active" in row_forever


# --------------------------------------------------------------------------------- finding 11: audit


def test_sign_out_is_audited(admin: WebClient, runtime: Runtime) -> None:
    assert admin.post("/ui/logout").status_code == 302
    entry = runtime.store.audit.list()[0]
    assert (entry.action, entry.actor, entry.ok) == ("logout", "admin", True)


def test_refused_ui_actions_are_audited(viewer: WebClient, runtime: Runtime) -> None:
    viewer.get("/ui/systems")
    assert viewer.post("/ui/systems/new", {"mac": MAC, "profile": "debian12-preseed"}).status_code == 403
    assert viewer.get("/ui/users").status_code == 403
    entries = runtime.store.audit.list()[:2]
    assert [(e.action, e.actor, e.target, e.ok) for e in entries] == [
        ("refused", "viewer", "GET /ui/users", False),
        ("refused", "viewer", "POST /ui/systems/new", False),
    ]
    assert entries[1].detail == {"reason": "needs admin"}


def test_refused_api_calls_name_the_token(viewer_api: ApiClient, runtime: Runtime) -> None:
    assert viewer_api.delete(f"/api/v1/systems/{MAC}").status_code == 403
    entry = runtime.store.audit.list()[0]
    token = runtime.store.tokens.list()[0]
    assert (entry.action, entry.actor, entry.target) == (
        "refused", f"viewer (token {token.id})", f"DELETE /api/v1/systems/{MAC}"
    )


def test_strangers_do_not_fill_the_audit_log(app: Flask, runtime: Runtime) -> None:
    client = app.test_client()
    for _ in range(50):
        client.get("/ui/users", headers={"Authorization": "Bearer nbt_forged"})
        client.post("/api/v1/systems", headers={"Authorization": "Bearer nbt_forged"}, json={})
        client.get("/ui/users")
    assert runtime.store.audit.list() == []


# ------------------------------------------------------------------------ finding 13: ?next= controls


@pytest.mark.parametrize(
    "raw_next",
    [
        "/ui/profiles%0d%0aSet-Cookie:%20evil=1",
        "/ui/profiles%0d%0a",
        "%0d%0a/ui/profiles",
        "/ui/profiles%0a",
        "/ui/profiles%0d",
        "/ui/pro%00files",
        "/ui/profiles%09",
        "/ui/profiles%7f",
        "/ui/profiles%1b[31m",
        "/ui/profiles%e2%80%a8",  # U+2028 LINE SEPARATOR
        "/ui/profiles%c2%85",  # U+0085 NEXT LINE
    ],
)
def test_control_characters_in_next_redirect_safely(web: WebClient, raw_next: str) -> None:
    page = web.get(f"/ui/login?next={raw_next}")
    assert page.status_code == 200
    resp = web.post(f"/ui/login?next={raw_next}", {"name": ADMIN[0], "password": ADMIN[1]})
    assert resp.status_code == 302 and resp.headers["Location"] == "/ui/systems"
    assert "evil" not in str(resp.headers)
    # the same through the form's hidden field (a hand-made form)
    web.client.delete_cookie("netboot_session")
    web.csrf = None
    web.get("/ui/login")
    from urllib.parse import unquote

    resp = web.post("/ui/login", {"name": ADMIN[0], "password": ADMIN[1], "next": unquote(raw_next)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/ui/systems"


def test_a_plain_next_still_works(web: WebClient) -> None:
    resp = web.post("/ui/login?next=/ui/profiles%3Fq%3Drocky", {"name": ADMIN[0], "password": ADMIN[1]})
    assert resp.status_code == 302 and resp.headers["Location"] == "/ui/profiles?q=rocky"


# ------------------------------------------------------------------------ finding 8: trusted proxies

PROXY = "192.0.2.10"
CLIENT = "198.51.100.7"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Flask, Runtime]]:
    rt = make_runtime(tmp_path / "data", http=HttpConfig(trusted_proxies=(IPv4Network(f"{PROXY}/32"),)))
    rt.store.users.add(*ADMIN, role="admin")
    made = create_app(rt)
    made.config["TESTING"] = True
    yield made, rt
    rt.close()


def _sign_in(app: Flask, peer: str, headers: dict[str, str], password: str = ADMIN[1]) -> object:
    web = WebClient(app.test_client())
    web.get("/ui/login", environ_base={"REMOTE_ADDR": peer}, headers=headers)
    return web.post(
        "/ui/login", {"name": ADMIN[0], "password": password}, environ_base={"REMOTE_ADDR": peer},
        headers=headers,
    )


def test_behind_a_trusted_proxy_the_cookie_is_secure_and_the_client_is_seen(
    proxied: tuple[Flask, Runtime],
) -> None:
    app, rt = proxied
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}
    resp = _sign_in(app, PROXY, forwarded)
    assert resp.status_code == 302  # type: ignore[attr-defined]
    cookies = resp.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    assert cookies and all("Secure" in c for c in cookies)
    assert rt.store.audit.list()[0].target == f"from {CLIENT}"
    resp = _sign_in(app, PROXY, forwarded, password="wrong-password")
    assert resp.status_code == 401  # type: ignore[attr-defined]
    assert rt.store.audit.list()[0].target == f"from {CLIENT}"
    assert app.extensions["netboot_login_limiter"].failures(f"ip:{CLIENT}") == 1
    assert app.extensions["netboot_login_limiter"].failures(f"ip:{PROXY}") == 0


def test_from_an_untrusted_address_the_proxy_headers_are_ignored(proxied: tuple[Flask, Runtime]) -> None:
    app, rt = proxied
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}
    resp = _sign_in(app, "203.0.113.66", forged)
    assert resp.status_code == 302  # type: ignore[attr-defined]
    cookies = resp.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    assert cookies and not any("Secure" in c for c in cookies)
    assert rt.store.audit.list()[0].target == "from 203.0.113.66"
    _sign_in(app, "203.0.113.66", forged, password="wrong-password")
    assert app.extensions["netboot_login_limiter"].failures("ip:203.0.113.66") == 1
    assert app.extensions["netboot_login_limiter"].failures(f"ip:{CLIENT}") == 0
