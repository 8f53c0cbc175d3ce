"""Refusals that must happen, each pinned so a check that quietly lets everything through fails.

* CSRF: with the session cookie, an unsafe API call needs *this session's* token in ``X-CSRF-Token``: a
  wrong, near, empty, missing or other session's value is refused, on the API and on the UI forms.
* ``Authorization`` on the API: anything but a valid ``Bearer`` token is 401 and never falls back to the
  session cookie sent beside it (also a valid token under another scheme, or a prefix of a valid token).
* The sign-in limiter through the app, with the limiter's clock injected: a delay ends, an hour forgets,
  and a right password forgets the name's failures.
* ``NETBOOT_COOKIE_SECURE``: ``never`` leaves ``Secure`` off even over HTTPS, ``always`` sets it even over
  HTTP, ``auto`` follows the request; read from the environment when the app is made; on both cookies.
"""

from __future__ import annotations

import base64

import pytest
from fakeclock import Clock
from flask import Flask
from werkzeug.test import TestResponse

from netboot.runtime import Runtime
from netboot.webapp import create_app
from netboot.webapp.login_limit import LoginLimiter

from .conftest import ADMIN, VIEWER, WebClient, _token

NEW = {"mac": "52:54:00:00:00:09", "profile": "debian12-preseed"}
HTTPS = "https://netboot.example"
COOKIES = ("netboot_session", "netboot_device")


# ------------------------------------------------------------------------------------------------ CSRF


def _near(token: str) -> dict[str, str]:
    return {
        "wrong": "wrong-token-wrong-token-wrong-token-0",
        "empty": "",
        "all but the last character": token[:-1],
        "one character more": token + "x",
        "other case": token.swapcase(),
    }


CSRF_CASES = ["wrong", "empty", "all but the last character", "one character more", "other case"]


@pytest.mark.parametrize("case", CSRF_CASES)
def test_an_api_call_with_the_cookie_and_a_wrong_csrf_header_is_refused(
    admin: WebClient, runtime: Runtime, case: str
) -> None:
    assert admin.csrf is not None
    value = _near(admin.csrf)[case]
    resp = admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": value})
    assert resp.status_code == 403, case
    assert resp.json is not None and "CSRF" in resp.json["error"]["message"]
    assert runtime.store.systems.list() == []
    # the right one passes, and then a wrong one cannot change or delete what it made
    ok = admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": admin.csrf})
    assert ok.status_code == 201
    url = f"/api/v1/systems/{NEW['mac']}"
    patched = admin.client.patch(url, json={"hostname": "evil"}, headers={"X-CSRF-Token": value})
    assert patched.status_code == 403
    assert admin.client.delete(url, headers={"X-CSRF-Token": value}).status_code == 403
    (system,) = runtime.store.systems.list()
    assert system.hostname is None


def test_an_api_call_with_the_cookie_and_no_csrf_header_is_refused(
    admin: WebClient, runtime: Runtime
) -> None:
    for call in (
        lambda: admin.client.post("/api/v1/systems", json=NEW),
        lambda: admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": ""}),
    ):
        resp = call()
        assert resp.status_code == 403 and resp.json is not None and "CSRF" in resp.json["error"]["message"]
    assert runtime.store.systems.list() == []


def test_the_csrf_token_of_another_session_is_refused(app: Flask, admin: WebClient, runtime: Runtime) -> None:
    other = WebClient(app.test_client())
    assert other.login(*ADMIN).status_code == 302
    assert other.csrf is not None and admin.csrf is not None and other.csrf != admin.csrf
    resp = admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": other.csrf})
    assert resp.status_code == 403
    resp = admin.post("/ui/systems/new", {**NEW, "csrf_token": other.csrf}, csrf=False)
    assert resp.status_code == 400
    assert runtime.store.systems.list() == []


@pytest.mark.parametrize("case", CSRF_CASES)
def test_a_ui_form_with_a_wrong_csrf_header_is_refused(admin: WebClient, runtime: Runtime, case: str) -> None:
    """The header is read on the UI too (before the form field): a wrong one must not pass there either."""
    assert admin.csrf is not None
    resp = admin.post("/ui/systems/new", NEW, csrf=False, headers={"X-CSRF-Token": _near(admin.csrf)[case]})
    assert resp.status_code == 400 and "CSRF" in resp.text
    assert runtime.store.systems.list() == []
    resp = admin.post("/ui/systems/new", NEW, csrf=False, headers={"X-CSRF-Token": admin.csrf})
    assert resp.status_code == 302 and len(runtime.store.systems.list()) == 1


# --------------------------------------------------------------------------------------- Authorization


def _basic(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


NOT_BEARER = {
    "basic with the admin's password": _basic(*ADMIN),
    "token scheme": "Token xyz",
    "digest scheme": 'Digest username="admin"',
    "no scheme": "xyz",
    "empty": "",
    "bearer, nothing after": "Bearer ",
    "bearer, wrong": "Bearer nbt_wrong",
}


@pytest.mark.parametrize("case", list(NOT_BEARER))
def test_a_non_bearer_header_beside_the_cookie_is_401_not_the_session(
    admin: WebClient, runtime: Runtime, case: str
) -> None:
    header = NOT_BEARER[case]
    assert admin.client.get("/api/v1/me").status_code == 200  # the cookie alone is signed in
    for url in ("/api/v1/me", "/api/v1/systems"):
        resp = admin.client.get(url, headers={"Authorization": header})
        assert resp.status_code == 401, (case, url)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert admin.csrf is not None
    resp = admin.client.post(
        "/api/v1/systems", json=NEW, headers={"Authorization": header, "X-CSRF-Token": admin.csrf}
    )
    assert resp.status_code == 401, case
    assert runtime.store.systems.list() == []


@pytest.mark.parametrize("scheme", ["Token", "Basic", "Bearer-Token", "nbt"])
def test_a_valid_token_under_another_scheme_is_401(app: Flask, runtime: Runtime, scheme: str) -> None:
    secret = _token(runtime, ADMIN[0])
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.get("/api/v1/me", headers={"Authorization": f"{scheme} {secret}"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": secret}).status_code == 401


def test_a_prefix_or_extension_of_a_valid_api_token_is_401(app: Flask, runtime: Runtime) -> None:
    secret = _token(runtime, ADMIN[0])
    (made,) = runtime.store.tokens.list()
    client = app.test_client()
    for near in (
        secret[:-1],
        secret[: len(made.hint)],  # the hint shown in the token list
        made.hint + "x" * (len(secret) - len(made.hint)),  # the hint, then anything, at full length
        secret + "x",
        secret[:-1] + ("B" if secret[-1] != "B" else "C"),
    ):
        assert near != secret
        resp = client.get("/api/v1/me", headers={"Authorization": f"Bearer {near}"})
        assert resp.status_code == 401, near
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


# ----------------------------------------------------------------------------------- sign-in limiter


def _attempt(app: Flask, peer: str, name: str, password: str, web: WebClient | None = None) -> TestResponse:
    """A sign-in from ``peer`` by a browser that never signed in before (unless ``web`` is given)."""
    web = web or WebClient(app.test_client())
    web.get("/ui/login", environ_base={"REMOTE_ADDR": peer})
    return web.post("/ui/login", {"name": name, "password": password}, environ_base={"REMOTE_ADDR": peer})


def test_a_delay_ends_and_then_the_right_password_signs_in(app: Flask, clock: Clock) -> None:
    for _ in range(4):  # three free failures, the fourth starts a delay of 1 s
        assert _attempt(app, "192.0.2.1", ADMIN[0], "wrong-password").status_code == 401
    limiter: LoginLimiter = app.extensions["netboot_login_limiter"]
    wait = limiter.retry_after(["ip:192.0.2.1", f"user:{ADMIN[0]}"])
    assert wait == 1.0
    resp = _attempt(app, "192.0.2.1", *ADMIN)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1"
    clock.now += wait - 0.01  # not yet
    assert _attempt(app, "192.0.2.1", *ADMIN).status_code == 429
    clock.now += 0.01  # the delay is over
    assert _attempt(app, "192.0.2.1", *ADMIN).status_code == 302


def test_a_longer_delay_ends_too_and_refused_tries_do_not_extend_it(app: Flask, clock: Clock) -> None:
    for n in range(8):  # waits out each delay: the address now waits 16 s after its eighth failure
        if n:
            clock.now += app.extensions["netboot_login_limiter"].retry_after(["ip:192.0.2.1"])
        assert _attempt(app, "192.0.2.1", "nobody", "wrong-password").status_code == 401
    for _ in range(5):  # refused tries while waiting do not count
        clock.now += 1
        assert _attempt(app, "192.0.2.1", *ADMIN).status_code == 429
    clock.now += 11  # 16 s after the last failure
    assert _attempt(app, "192.0.2.1", *ADMIN).status_code == 302


def test_an_hour_after_the_last_failure_the_failures_are_forgotten(app: Flask, clock: Clock) -> None:
    limiter: LoginLimiter = app.extensions["netboot_login_limiter"]
    keys = ["ip:192.0.2.1", f"user:{ADMIN[0]}"]
    for n in range(10):
        if n:
            clock.now += limiter.retry_after(keys)
        assert _attempt(app, "192.0.2.1", ADMIN[0], "wrong-password").status_code == 401
    clock.now += 3601
    assert limiter.failures("ip:192.0.2.1") == 0 and limiter.failures(f"user:{ADMIN[0]}") == 0
    for _ in range(3):  # free typos again, not one failure away from the 5 minute cap
        assert _attempt(app, "192.0.2.1", ADMIN[0], "wrong-password").status_code == 401
    assert _attempt(app, "192.0.2.1", *ADMIN).status_code == 302


def test_a_right_password_forgets_the_names_failures(app: Flask, clock: Clock) -> None:
    """Failures and sign-ins from distinct addresses and new browsers, so only the name's key is shared."""
    for n in range(3):
        assert _attempt(app, f"10.1.0.{n + 1}", ADMIN[0], "wrong-password").status_code == 401
    assert _attempt(app, "10.2.0.1", *ADMIN).status_code == 302
    limiter: LoginLimiter = app.extensions["netboot_login_limiter"]
    assert limiter.failures(f"user:{ADMIN[0]}") == 0
    for n in range(3):  # three free failures again, not a delay after the fourth of six
        assert _attempt(app, f"10.3.0.{n + 1}", ADMIN[0], "wrong-password").status_code == 401
    assert _attempt(app, "10.4.0.1", *ADMIN).status_code == 302


def test_a_right_password_does_not_forget_other_names(app: Flask, clock: Clock) -> None:
    for n in range(4):
        assert _attempt(app, f"10.1.0.{n + 1}", VIEWER[0], "wrong-password").status_code == 401
    assert _attempt(app, "10.2.0.1", *ADMIN).status_code == 302
    assert _attempt(app, "10.2.0.2", *VIEWER).status_code == 429


# ------------------------------------------------------------------------------ NETBOOT_COOKIE_SECURE


def _sign_in(app: Flask, base_url: str) -> TestResponse:
    web = WebClient(app.test_client())
    web.get("/ui/login", base_url=base_url)
    resp = web.post("/ui/login", {"name": ADMIN[0], "password": ADMIN[1]}, base_url=base_url)
    assert resp.status_code == 302
    return resp


def _secure_flags(resp: TestResponse) -> dict[str, bool]:
    out = {}
    for header in resp.headers.getlist("Set-Cookie"):
        name = header.split("=", 1)[0]
        attributes = [a.strip().lower() for a in header.split(";")[1:]]
        out[name] = "secure" in attributes
    assert set(COOKIES) <= set(out), resp.headers.getlist("Set-Cookie")
    return {name: out[name] for name in COOKIES}


@pytest.mark.parametrize(
    ("mode", "over_https", "secure"),
    [
        ("never", True, False),
        ("never", False, False),
        ("NEVER", True, False),
        ("always", False, True),
        ("always", True, True),
        ("Always", False, True),
        ("auto", True, True),
        ("auto", False, False),
    ],
)
def test_cookie_secure_setting(app: Flask, mode: str, over_https: bool, secure: bool) -> None:
    app.config["NETBOOT_COOKIE_SECURE"] = mode
    resp = _sign_in(app, HTTPS if over_https else "http://localhost")
    assert _secure_flags(resp) == dict.fromkeys(COOKIES, secure)


@pytest.mark.parametrize(
    ("env", "over_https", "secure"),
    [("never", True, False), ("always", False, True), (None, True, True), (None, False, False)],
)
def test_cookie_secure_is_read_from_the_environment(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, env: str | None, over_https: bool, secure: bool
) -> None:
    if env is None:
        monkeypatch.delenv("NETBOOT_COOKIE_SECURE", raising=False)  # the default: auto
    else:
        monkeypatch.setenv("NETBOOT_COOKIE_SECURE", env)
    app = create_app(runtime)
    app.config["TESTING"] = True
    resp = _sign_in(app, HTTPS if over_https else "http://localhost")
    assert _secure_flags(resp) == dict.fromkeys(COOKIES, secure)
