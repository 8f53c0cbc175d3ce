"""Fixtures for the web app: a fresh data dir and database per test, the sample profiles, two users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from fakeclock import Clock
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import netboot.store.accounts as accounts
from netboot.config import Config
from netboot.runtime import Runtime, build_runtime
from netboot.webapp import create_app
from netboot.webapp.login_limit import LoginLimiter

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
ADMIN = ("admin", "admin-password-1")
VIEWER = ("viewer", "viewer-password-1")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests make many users: a cheap scrypt cost (the format and the code path stay the same)."""
    monkeypatch.setattr(accounts, "SCRYPT_N", 2**8)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", None)


def make_runtime(data: Path, **config: Any) -> Runtime:
    cfg = Config(data_dir=data, profiles_dir=PROFILES, server_ip=IPv4Address("10.0.0.1"), **config)
    return build_runtime(cfg)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path / "data")
    rt.store.users.add(*ADMIN, role="admin")
    rt.store.users.add(*VIEWER, role="viewer")
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    made = create_app(runtime)
    made.config["TESTING"] = True
    return made


class WebClient:
    """A Flask test client that signs in through the form and sends each form's CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.csrf: str | None = None

    def get(self, url: str, **kw: Any) -> TestResponse:
        resp = self.client.get(url, **kw)
        found = CSRF_RE.search(resp.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return resp

    def post(
        self, url: str, data: dict[str, str] | None = None, *, csrf: bool = True, **kw: Any
    ) -> TestResponse:
        form = dict(data or {})
        if csrf:
            if self.csrf is None:
                self.get("/ui/login")
            assert self.csrf is not None
            form.setdefault("csrf_token", self.csrf)
        resp = self.client.post(url, data=form, **kw)
        found = CSRF_RE.search(resp.get_data(as_text=True))
        if found:
            self.csrf = found.group(1)
        return resp

    def login(self, name: str, password: str) -> TestResponse:
        self.get("/ui/login")
        resp = self.post("/ui/login", {"name": name, "password": password})
        if resp.status_code == 302:
            self.get("/ui/systems")
        return resp


@pytest.fixture
def web(app: Flask) -> WebClient:
    """Not signed in."""
    return WebClient(app.test_client())


@pytest.fixture
def admin(app: Flask) -> WebClient:
    client = WebClient(app.test_client())
    assert client.login(*ADMIN).status_code == 302
    return client


@pytest.fixture
def viewer(app: Flask) -> WebClient:
    client = WebClient(app.test_client())
    assert client.login(*VIEWER).status_code == 302
    return client


@dataclass
class ApiClient:
    client: FlaskClient
    token: str | None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        return {**headers, **(extra or {})}

    def get(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.get(url, headers=self._headers(headers), **kw)

    def post(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> TestResponse:
        return self.client.post(url, json=json, headers=self._headers(headers), **kw)

    def patch(
        self, url: str, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> TestResponse:
        return self.client.patch(url, json=json, headers=self._headers(headers), **kw)

    def delete(self, url: str, headers: dict[str, str] | None = None, **kw: Any) -> TestResponse:
        return self.client.delete(url, headers=self._headers(headers), **kw)


def _token(runtime: Runtime, name: str) -> str:
    user = runtime.store.users.get(name)
    assert user is not None
    return runtime.store.tokens.create(user, f"{name}-test")[1]


@pytest.fixture
def admin_api(app: Flask, runtime: Runtime) -> ApiClient:
    return ApiClient(app.test_client(), _token(runtime, ADMIN[0]))


@pytest.fixture
def viewer_api(app: Flask, runtime: Runtime) -> ApiClient:
    return ApiClient(app.test_client(), _token(runtime, VIEWER[0]))


@pytest.fixture
def anon_api(app: Flask) -> ApiClient:
    return ApiClient(app.test_client(), None)


@pytest.fixture
def web_artifacts(request: pytest.FixtureRequest) -> Path:
    """``artifacts/web/<test>/``: screenshots and logs kept after the run."""
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    path = REPO / "artifacts" / "web" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The app's sign-in limiter on a clock the test moves."""
    made = Clock()
    app.extensions["netboot_login_limiter"] = LoginLimiter(clock=made)
    return made
