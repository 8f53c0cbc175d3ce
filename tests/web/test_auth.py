"""Sign-in, sessions, CSRF, the login rate limit, bearer tokens, and failing closed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.test import TestResponse

from netboot.runtime import Runtime
from netboot.webapp import create_app

from .conftest import ADMIN, VIEWER, ApiClient, WebClient, make_runtime


def set_cookie(resp: TestResponse, name: str) -> str:
    """The ``Set-Cookie`` header of an answer that sets cookie ``name``."""
    found = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert len(found) == 1, resp.headers.getlist("Set-Cookie")
    return found[0]


def test_sign_in_sets_a_httponly_samesite_cookie_and_lands_on_systems(web: WebClient) -> None:
    resp = web.login(*ADMIN)
    assert resp.status_code == 302 and resp.headers["Location"] == "/ui/systems"
    for name in ("netboot_session", "netboot_device"):
        cookie = set_cookie(resp, name)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain HTTP on a lab network (auto mode)
    page = web.get("/ui/systems")
    assert page.status_code == 200 and "Sign out" in page.text


def test_cookie_is_secure_over_https_and_when_forced(app: Flask, web: WebClient) -> None:
    web.get("/ui/login", base_url="https://netboot.example")
    resp = web.post("/ui/login", {"name": ADMIN[0], "password": ADMIN[1]}, base_url="https://netboot.example")
    assert resp.status_code == 302 and "Secure" in set_cookie(resp, "netboot_session")
    assert "Secure" in set_cookie(resp, "netboot_device")
    app.config["NETBOOT_COOKIE_SECURE"] = "always"
    other = WebClient(app.test_client())
    assert "Secure" in set_cookie(other.login(*ADMIN), "netboot_session")


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("", "-1"),
        ("", ""),
        ("admin", ""),
        ("admin", "-1"),
        ("admin", "wrong-password"),
        ("nobody", "x" * 10),
        ("ADMIN", ADMIN[1]),
        (" admin", "admin-password-1 "),
    ],
)
def test_wrong_credentials_are_refused(web: WebClient, name: str, password: str) -> None:
    resp = web.login(name, password)
    assert resp.status_code == 401
    assert "Wrong user name or password" in resp.text
    assert web.get("/ui/systems").status_code == 302


def test_sign_out_ends_the_session_server_side(app: Flask, admin: WebClient) -> None:
    cookie = admin.client.get_cookie("netboot_session")
    assert cookie is not None
    stolen = cookie.value
    resp = admin.post("/ui/logout")
    assert resp.status_code == 302
    assert admin.get("/ui/systems").status_code == 302
    replay = app.test_client()
    replay.set_cookie("netboot_session", stolen)
    assert replay.get("/ui/systems").status_code == 302
    assert replay.get("/api/v1/systems").status_code == 401


def test_password_change_signs_out_other_sessions(app: Flask, runtime: Runtime) -> None:
    first, second = WebClient(app.test_client()), WebClient(app.test_client())
    first.login(*VIEWER)
    second.login(*VIEWER)
    first.get("/ui/account")
    resp = first.post(
        "/ui/account", {"current": VIEWER[1], "password": "new-password-2", "password2": "new-password-2"}
    )
    assert resp.status_code == 302
    assert first.get("/ui/systems").status_code == 200  # the one that changed it stays in
    assert second.get("/ui/systems").status_code == 302
    assert runtime.store.users.verify("viewer", "new-password-2") is not None


def test_sign_in_redirects_only_to_local_ui_pages(web: WebClient) -> None:
    resp = web.get("/ui/profiles")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/ui/login?next=")
    for target, expected in [
        ("/ui/profiles", "/ui/profiles"),
        ("https://evil.example/", "/ui/systems"),
        ("//evil.example/ui/", "/ui/systems"),
        ("/\\evil.example", "/ui/systems"),
        ("/boot.ipxe", "/ui/systems"),
        ("/ui/login", "/ui/systems"),
    ]:
        web.client.delete_cookie("netboot_session")
        web.csrf = None
        web.get("/ui/login")
        resp = web.post("/ui/login", {"name": ADMIN[0], "password": ADMIN[1], "next": target})
        assert resp.status_code == 302 and resp.headers["Location"] == expected, target


# ------------------------------------------------------------------------------------------------ CSRF

UNSAFE_FORMS = [
    ("/ui/login", {"name": ADMIN[0], "password": ADMIN[1]}),
    ("/ui/logout", {}),
    ("/ui/systems/new", {"mac": "52:54:00:00:00:01", "profile": "debian12-preseed"}),
    ("/ui/systems/bulk", {"lines": "52:54:00:00:00:02,h2,debian12-preseed"}),
    (
        "/ui/users",
        {"name": "mallory", "role": "admin", "password": "mallory-pass", "password2": "mallory-pass"},
    ),
    ("/ui/tokens", {"name": "stolen"}),
    ("/ui/account", {"current": ADMIN[1], "password": "x" * 12, "password2": "x" * 12}),
]


@pytest.mark.parametrize(("url", "form"), UNSAFE_FORMS)
@pytest.mark.parametrize("token", [None, "", "wrong-token-wrong-token-wrong-token-0"])
def test_forms_without_the_csrf_token_are_refused(
    admin: WebClient, runtime: Runtime, url: str, form: dict[str, str], token: str | None
) -> None:
    data = dict(form)
    if token is not None:
        data["csrf_token"] = token
    before_users = len(runtime.store.users.list())
    resp = admin.post(url, data, csrf=False)
    assert resp.status_code == 400, (url, resp.status_code)
    assert "CSRF" in resp.text
    assert len(runtime.store.users.list()) == before_users
    assert runtime.store.systems.list() == []
    assert runtime.store.tokens.list() == []
    assert admin.get("/ui/systems").status_code == 200  # still signed in: logout was refused too


def test_system_forms_without_csrf_are_refused(admin: WebClient, runtime: Runtime) -> None:
    admin.post("/ui/systems/new", {"mac": "52:54:00:00:00:05", "profile": "debian12-preseed"})
    mac = "52:54:00:00:00:05"
    for url in (
        f"/ui/systems/{mac}/edit",
        f"/ui/systems/{mac}/reinstall",
        f"/ui/systems/{mac}/remove",
        f"/ui/systems/{mac}/state",
        "/ui/users/viewer/remove",
        "/ui/tokens/1/revoke",
        f"/ui/discovered/{mac}/register",
    ):
        resp = admin.post(url, {"hostname": "x", "state": "local", "profile": "local"}, csrf=False)
        assert resp.status_code == 400, url
    assert runtime.store.systems.list()[0].hostname is None
    assert runtime.store.users.get("viewer") is not None


def test_api_with_a_session_cookie_needs_the_csrf_header(admin: WebClient) -> None:
    body = {"mac": "52:54:00:00:00:09", "profile": "debian12-preseed"}
    resp = admin.client.post("/api/v1/systems", json=body)
    assert resp.status_code == 403 and resp.json is not None and "CSRF" in resp.json["error"]["message"]
    assert admin.csrf is not None
    resp = admin.client.post("/api/v1/systems", json=body, headers={"X-CSRF-Token": admin.csrf})
    assert resp.status_code == 201
    assert admin.client.get("/api/v1/systems").status_code == 200  # reads need no header


# ------------------------------------------------------------------------------------------ rate limit


def test_login_is_rate_limited_per_address_and_user(web: WebClient, app: Flask) -> None:
    """Three free failures (typos), the fourth starts a delay: then even the right password is 429 from
    that address and, for a browser that never signed in as the name, from anywhere; other names from
    other addresses are not slowed (tests/web/test_login_limit.py has the attacks)."""
    for _ in range(4):
        assert web.login(ADMIN[0], "wrong-password").status_code == 401
    resp = web.login(*ADMIN)  # even the right password, while limited
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in resp.text
    # another address trying the same user is limited too (per-user key) ...
    other = WebClient(app.test_client())
    other.get("/ui/login", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    resp = other.post(
        "/ui/login", {"name": ADMIN[0], "password": ADMIN[1]}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )
    assert resp.status_code == 429
    # ... while another user from another address is not
    resp = other.post(
        "/ui/login", {"name": VIEWER[0], "password": VIEWER[1]}, environ_base={"REMOTE_ADDR": "10.9.9.9"}
    )
    assert resp.status_code == 302


def test_failed_logins_are_audited(web: WebClient, runtime: Runtime) -> None:
    web.login("<b>mallory</b>", "guess-guess")
    entries = runtime.store.audit.list()
    assert entries[0].action == "login-failed" and entries[0].actor == "<b>mallory</b>" and not entries[0].ok


# ------------------------------------------------------------------------------------------- bearer


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nbt_wrong",
        "Bearer ",
        "Bearer",
        "",
        "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ==",
        "bearer  ",
        "Bearer nbt_" + "A" * 43,
        "Token abc",
        "Bearer -1",
    ],
)
def test_wrong_or_empty_bearer_tokens_are_refused(anon_api: ApiClient, header: str) -> None:
    resp = anon_api.get("/api/v1/systems", headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json == {"error": {"message": resp.json["error"]["message"], "field": None}}
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_bearer_header_does_not_fall_back_to_the_cookie(admin: WebClient) -> None:
    resp = admin.client.get("/api/v1/systems", headers={"Authorization": "Bearer nbt_nope"})
    assert resp.status_code == 401


def test_revoked_token_is_refused_at_once(admin_api: ApiClient, runtime: Runtime) -> None:
    assert admin_api.get("/api/v1/me").status_code == 200
    token = runtime.store.tokens.list()[0]
    runtime.store.tokens.revoke(token.id)
    assert admin_api.get("/api/v1/me").status_code == 401


def test_token_of_a_removed_user_is_refused(viewer_api: ApiClient, runtime: Runtime) -> None:
    assert viewer_api.get("/api/v1/me").json == {
        "name": "viewer",
        "role": "viewer",
        "via": "token",
        "token": runtime.store.tokens.list()[0].id,
    }
    runtime.store.users.remove("viewer")
    assert viewer_api.get("/api/v1/me").status_code == 401


# -------------------------------------------------------------------------------------- fail closed


def _corrupt(runtime: Runtime) -> None:
    db = runtime.config.data_dir / "netboot.db"
    runtime.store.events.wait_idle()
    runtime.store.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db) + suffix)
        if path.exists():
            path.write_bytes(os.urandom(4096))


def _drop_users(runtime: Runtime) -> None:
    with runtime.store.engine.begin() as conn:
        conn.execute(text("PRAGMA foreign_keys=OFF"))
        conn.execute(text("DROP TABLE users"))


@pytest.mark.parametrize("breakage", [_corrupt, _drop_users], ids=["corrupt", "missing"])
def test_a_broken_user_store_lets_nobody_in(app: Flask, runtime: Runtime, breakage: object) -> None:
    signed_in = WebClient(app.test_client())
    signed_in.login(*ADMIN)
    user = runtime.store.users.get("admin")
    assert user is not None
    _t, secret = runtime.store.tokens.create(user, "before")
    breakage(runtime)  # type: ignore[operator]

    fresh = WebClient(app.test_client())
    resp = fresh.login(*ADMIN)
    assert resp.status_code == 503 and "user store cannot be read" in resp.text
    assert fresh.client.get_cookie("netboot_session") is None or fresh.get("/ui/systems").status_code != 200
    resp = signed_in.get("/ui/systems")
    assert resp.status_code == 503
    resp = app.test_client().get("/api/v1/systems", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 503 and resp.json is not None and "user store" in resp.json["error"]["message"]
    assert signed_in.client.get("/api/v1/systems").status_code == 503
    assert app.test_client().get("/api/v1/systems").status_code == 401


def test_unknown_role_gets_nothing(app: Flask, runtime: Runtime) -> None:
    client = WebClient(app.test_client())
    client.login(*VIEWER)
    with runtime.store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET role='superuser' WHERE name='viewer'"))
    assert client.get("/ui/systems").status_code == 403
    assert WebClient(app.test_client()).login(*VIEWER).status_code == 401


def test_first_start_explains_how_to_make_a_user(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rt = make_runtime(tmp_path / "empty")
    try:
        with caplog.at_level("WARNING"):
            app = create_app(rt)
        assert "netboot user add" in caplog.text
        page = app.test_client().get("/ui/login")
        assert page.status_code == 200 and 'id="first-run"' in page.text and "netboot user add" in page.text
        assert app.test_client().get("/ui/systems").status_code == 302
    finally:
        rt.close()


def test_secret_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "d")
    try:
        first = create_app(rt).secret_key
        key = tmp_path / "d" / "web-secret-key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert create_app(rt).secret_key == first
    finally:
        rt.close()


def test_security_headers_on_ui_and_api(admin: WebClient, admin_api: ApiClient) -> None:
    for resp in (admin.get("/ui/systems"), admin_api.get("/api/v1/systems")):
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-store"
