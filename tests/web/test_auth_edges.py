"""Edges of web auth the refusal tests pass over: the CSRF token is renewed at sign-in and must be a real
one, a redirect to sign in keeps where the user was going (a GET's query, a POST's path only), a refused
UI page is HTML with its status, and a signed-in session outlives the browser's session."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .conftest import ADMIN, VIEWER, WebClient

NEW = {"mac": "52:54:00:00:00:19", "profile": "debian12-preseed"}


def next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


def test_the_csrf_token_is_renewed_at_sign_in(web: WebClient) -> None:
    web.get("/ui/login")
    before = web.csrf
    assert web.login(*ADMIN).status_code == 302
    assert web.csrf is not None and before is not None and web.csrf != before  # no fixation


def test_a_session_without_a_real_csrf_token_refuses_every_value(admin: WebClient) -> None:
    for stored in (None, "short-token", "x" * 31):
        with admin.client.session_transaction() as session:
            if stored is None:
                session.pop("csrf", None)
            else:
                session["csrf"] = stored
        given = stored or "y" * 40
        resp = admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": given})
        assert resp.status_code == 403, stored
    with admin.client.session_transaction() as session:
        session["csrf"] = "z" * 32  # the shortest a real one is
    ok = admin.client.post("/api/v1/systems", json=NEW, headers={"X-CSRF-Token": "z" * 32})
    assert ok.status_code == 201


def test_a_redirect_to_sign_in_keeps_a_gets_query_and_a_posts_path(web: WebClient) -> None:
    got = web.client.get("/ui/systems?q=web1")
    assert got.status_code == 302 and next_of(got.headers["Location"]) == "/ui/systems?q=web1"
    bare = web.client.get("/ui/systems")
    assert next_of(bare.headers["Location"]) == "/ui/systems"  # no dangling '?'
    posted = web.client.post("/ui/systems/new?from=list", data={"mac": "x"})
    assert posted.status_code == 302 and next_of(posted.headers["Location"]) == "/ui/systems/new"


def test_a_refused_ui_page_is_html_and_says_its_status(viewer: WebClient) -> None:
    resp = viewer.client.get("/ui/users")
    assert resp.status_code == 403
    assert resp.mimetype == "text/html"
    assert "403" in resp.get_data(as_text=True)


def test_a_signed_in_session_cookie_has_a_lifetime(web: WebClient) -> None:
    web.get("/ui/login")
    resp = web.post("/ui/login", {"name": VIEWER[0], "password": VIEWER[1]})
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("netboot_session="))
    assert "Expires=" in cookie  # permanent: not dropped when the browser closes
