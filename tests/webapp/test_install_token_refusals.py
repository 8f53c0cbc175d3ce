"""An install token authorises only as the whole token of a machine still being installed.

These fail if the check took a *prefix* (or an extension) of the machine's token for the token (a
one-character guess would get the answer file, with its secrets, and could end the install), or if a token
kept working after an admin cancelled the install (the system's state, not only its token, decides). Both
the answer file and the completion callback are asked, through the real routes and store.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from netboot import registration
from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import MAC, events_of, register, stored, tokens_in

ANSWER = f"/answer/{MAC}/preseed.cfg"
DONE = f"/done/{MAC}"

#: tokens that share a prefix with the real one (or contain it) but are not it
NEAR_MISSES = {
    "first character": lambda t: t[:1],
    "first half": lambda t: t[: len(t) // 2],
    "all but the last character": lambda t: t[:-1],
    "one character more": lambda t: t + "A",
    "twice over": lambda t: t + t,
    "last character changed": lambda t: t[:-1] + ("B" if t[-1] != "B" else "C"),
    "all but the first character": lambda t: t[1:],
}


def _install_state(rt: Runtime) -> tuple[SystemState, str | None]:
    system = stored(rt, MAC)
    assert system is not None
    return system.state, system.token


# ---------------------------------------------------------------------------------- the whole token


@pytest.mark.parametrize("near", list(NEAR_MISSES))
def test_a_near_miss_of_the_token_gets_no_answer_file(
    runtime: Runtime, client: FlaskClient, near: str
) -> None:
    token = register(runtime)
    guess = NEAR_MISSES[near](token)
    assert guess != token
    resp = client.get(ANSWER, query_string={"token": guess})
    assert resp.status_code == 403, near
    assert b"d-i " not in resp.data and token.encode() not in resp.data
    assert all(e.phase != "answer-file" for e in events_of(runtime, MacAddress.parse(MAC)))
    assert client.get(ANSWER, query_string={"token": token}).status_code == 200  # the real one still works


@pytest.mark.parametrize("near", list(NEAR_MISSES))
def test_a_near_miss_of_the_token_cannot_end_the_install(
    runtime: Runtime, client: FlaskClient, near: str
) -> None:
    token = register(runtime)
    guess = NEAR_MISSES[near](token)
    assert client.get(DONE, query_string={"token": guess}).status_code == 403, near
    assert client.post(DONE, data={"token": guess}).status_code == 403, near
    assert client.post(DONE, query_string={"token": guess}).status_code == 403, near
    assert _install_state(runtime) == (SystemState.INSTALL, token)
    assert "install-done" not in [e.phase for e in events_of(runtime, MacAddress.parse(MAC))]


def test_every_one_character_token_is_refused(runtime: Runtime, client: FlaskClient) -> None:
    """The attack itself: 64 guesses of one character (the token alphabet) must not find the answer file."""
    token = register(runtime)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert token[0] in alphabet
    codes = {c: client.get(ANSWER, query_string={"token": c}).status_code for c in alphabet}
    assert set(codes.values()) == {403}, [c for c, code in codes.items() if code != 403]


# ------------------------------------------------------------------------------- cancelled installs


def _cancel_in_store(rt: Runtime, state: str) -> None:
    registration.set_fields(rt, MAC, "admin", state=state)


@pytest.mark.parametrize("state", ["local", "installed"])
def test_a_cancelled_install_refuses_its_token(runtime: Runtime, client: FlaskClient, state: str) -> None:
    """An admin takes the machine out of install mode (the UI's "cancel install" sets ``local``): the token
    that was on its kernel line, from the machine's own address and within its lifetime, is refused."""
    token = register(runtime)
    assert client.get(ANSWER, query_string={"token": token}).status_code == 200  # armed and working
    _cancel_in_store(runtime, state)
    cancelled = stored(runtime, MAC)
    assert cancelled is not None and cancelled.state is SystemState(state)

    resp = client.get(ANSWER, query_string={"token": token})
    assert resp.status_code == 403 and b"d-i " not in resp.data
    assert client.get(DONE, query_string={"token": token}).status_code == 403
    assert client.post(DONE, data={"token": token}).status_code == 403
    after = stored(runtime, MAC)
    assert after is not None and after.state is SystemState(state)  # /done did not flip it to installed
    assert "install-done" not in [e.phase for e in events_of(runtime, MacAddress.parse(MAC))]
    # and its next boot carries no token: it boots its disk
    script = client.get("/boot.ipxe", query_string={"mac": MAC}).get_data(as_text=True)
    assert token not in script and not tokens_in(script)


def test_a_cancelled_install_then_reinstalled_takes_only_the_new_token(
    runtime: Runtime, client: FlaskClient
) -> None:
    old = register(runtime)
    _cancel_in_store(runtime, "local")
    system = registration.reinstall(runtime, MAC, "admin")
    assert system.token and system.token != old
    script = client.get("/boot.ipxe", query_string={"mac": MAC}).get_data(as_text=True)
    assert tokens_in(script) == {system.token}
    assert client.get(ANSWER, query_string={"token": old}).status_code == 403
    assert client.get(DONE, query_string={"token": old}).status_code == 403
    assert client.get(ANSWER, query_string={"token": system.token}).status_code == 200


def test_a_cancel_through_the_api_refuses_the_token(runtime: Runtime, client: FlaskClient) -> None:
    """The same through the admin's real path: PATCH state=local with an API token."""
    token = register(runtime)
    admin = runtime.store.users.add("admin", "admin-password-1", role="admin")
    _, secret = runtime.store.tokens.create(admin, "ops")
    resp = client.patch(
        f"/api/v1/systems/{MAC}", json={"state": "local"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert client.get(ANSWER, query_string={"token": token}).status_code == 403
    assert client.post(DONE, data={"token": token}).status_code == 403
    assert _install_state(runtime)[0] is SystemState.LOCAL
