"""Behind a trusted proxy, through the real HTTP server, the app sees the proxy's headers (issue 15, #8).

waitress on its defaults (``clear_untrusted_proxy_headers`` with no ``trusted_proxy``) deletes every
``X-Forwarded-*`` header before the app runs, so :class:`netboot.webapp.proxy.TrustedProxies` never saw
them: behind a TLS proxy the session cookie was never ``Secure`` and sign-in limiting counted the proxy.
The Flask test client skips waitress, so only the real server on loopback shows this.
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from flask import Flask

from netboot.config import Config, HttpConfig
from netboot.runtime import build_runtime
from netboot.servers.http import HttpServer
from netboot.webapp import create_app

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "correct horse battery staple")
CLIENT = "198.51.100.7"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Flask, int]]:
    """The real server on 127.0.0.1, trusting 127.0.0.1 (the test) as its reverse proxy."""
    config = Config(data_dir=tmp_path / "data", profiles_dir=REPO / "profiles",
                    server_ip=IPv4Address("10.0.0.1"),
                    http=HttpConfig(trusted_proxies=(IPv4Network("127.0.0.1/32"),)))
    rt = build_runtime(config)
    rt.store.users.add(*ADMIN, role="admin")
    app = create_app(rt)
    server = HttpServer(app, "127.0.0.1", 0, limits=config.http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, server.port
    server.shutdown()
    thread.join(5)
    rt.close()


def sign_in(port: int, password: str) -> http.client.HTTPResponse:
    """The login form, then its POST, both as forwarded by a TLS proxy for ``CLIENT``."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/ui/login", headers=forwarded)
    form = conn.getresponse()
    page = form.read().decode()
    found = CSRF_RE.search(page)
    assert form.status == 200 and found, page[:500]
    cookies = "; ".join(c.split(";", 1)[0] for c in form.headers.get_all("Set-Cookie") or [])
    body = urllib.parse.urlencode({"name": ADMIN[0], "password": password, "csrf_token": found.group(1)})
    conn.request("POST", "/ui/login", body=body, headers={
        **forwarded, "Cookie": cookies, "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_forwarded_headers_from_the_trusted_proxy_reach_the_app(served: tuple[Flask, int]) -> None:
    app, port = served
    resp = sign_in(port, ADMIN[1])
    assert resp.status == 302
    cookies = resp.headers.get_all("Set-Cookie") or []
    assert cookies and all("Secure" in c for c in cookies), cookies
    assert sign_in(port, "wrong-password").status == 401
    limiter = app.extensions["netboot_login_limiter"]
    assert limiter.failures(f"ip:{CLIENT}") == 1
    assert limiter.failures("ip:127.0.0.1") == 0
