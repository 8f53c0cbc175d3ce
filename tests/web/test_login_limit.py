"""Issue 15, finding 7: the sign-in limiter slows guessers without locking the real admin out.

The limiter here is the real one; only its clock is ours, so waits of 30 s pass in no time.
"""

from __future__ import annotations

from fakeclock import Clock
from flask import Flask
from werkzeug.test import TestResponse

from netboot.runtime import Runtime
from netboot.webapp.login_limit import LoginLimiter

from .conftest import ADMIN, WebClient


def guess(app: Flask, clock: Clock, web: WebClient, peer: str, name: str) -> TestResponse:
    """A patient guesser: waits out the name's delay, then fails once more (counted)."""
    limiter: LoginLimiter = app.extensions["netboot_login_limiter"]
    clock.now += limiter.retry_after([f"user:{name}", f"ip:{peer}"]) + 0.01
    resp = attempt(web, peer, name, "not-the-password")
    assert resp.status_code == 401
    return resp


def attempt(web: WebClient, peer: str, name: str, password: str) -> TestResponse:
    web.get("/ui/login", environ_base={"REMOTE_ADDR": peer})
    return web.post("/ui/login", {"name": name, "password": password}, environ_base={"REMOTE_ADDR": peer})


# ---------------------------------------------------------------------------------------- the rule


def test_delays_grow_per_key_and_are_capped_per_kind() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    keys = ["ip:192.0.2.1", "user:admin"]
    for _ in range(3):  # typos are free
        limiter.failed(keys)
        assert limiter.retry_after(keys) == 0
    waits = []
    for _ in range(12):
        limiter.failed(keys)
        waits.append(limiter.retry_after(["user:admin"]))
        assert limiter.retry_after(keys) == limiter.retry_after(["ip:192.0.2.1"])
    assert waits[:6] == [1, 2, 4, 8, 16, 30] and set(waits[5:]) == {30}  # a name waits 30 s at most
    assert limiter.retry_after(["ip:192.0.2.1"]) == 300  # a source up to 5 minutes
    clock.now += 3601  # an hour after its last failure a key forgets
    assert limiter.retry_after(keys) == 0 and limiter.failures("user:admin") == 0


def test_junk_names_do_not_flush_the_state_of_a_name_under_attack() -> None:
    """The old limiter dropped the oldest keys when full: 5 000 junk failures erased the lock."""
    clock = Clock()
    limiter = LoginLimiter(clock=clock, max_keys=1000)
    for _ in range(10):
        limiter.failed(["ip:203.0.113.5", "user:admin"])
    before = limiter.retry_after(["user:admin"])
    assert before == 30
    for n in range(5000):
        clock.now += 0.001
        limiter.failed([f"ip:198.51.100.{n % 250}", f"user:junk-{n}"])
    assert limiter.failures("user:admin") == 10
    assert limiter.retry_after(["user:admin"]) > 0
    assert sum(len(t) for t in limiter._tables.values()) <= 1000 + 250  # bounded: junk evicted junk


def test_a_success_forgets_the_name_but_not_the_source() -> None:
    clock = Clock()
    limiter = LoginLimiter(clock=clock)
    for _ in range(6):
        limiter.failed(["ip:203.0.113.5", "user:admin"])
    clock.now += 60
    limiter.succeeded(["ip:192.0.2.1", "user:admin"])
    assert limiter.failures("user:admin") == 0 and limiter.retry_after(["user:admin"]) == 0
    # the guesser's address keeps its record: the owner's sign-in does not give it fresh guesses
    assert limiter.failures("ip:203.0.113.5") == 6


# ------------------------------------------------------------------------------- through the app


def test_the_admin_signs_in_during_an_attack_on_the_name(app: Flask, clock: Clock, runtime: Runtime) -> None:
    owner = WebClient(app.test_client())
    assert attempt(owner, "192.0.2.1", *ADMIN).status_code == 302  # yesterday: the browser is known now
    attacker = WebClient(app.test_client())
    for n in range(12):  # from 12 addresses, each guess as soon as the name lets it
        guess(app, clock, attacker, f"10.66.0.{n + 1}", ADMIN[0])
    assert app.extensions["netboot_login_limiter"].retry_after([f"user:{ADMIN[0]}"]) > 0

    # the owner's known browser is limited under its own key: in at once
    owner_again = WebClient(app.test_client())
    known = owner.client.get_cookie("netboot_device", path="/ui/")
    assert known is not None
    owner_again.client.set_cookie("netboot_device", known.value, path="/ui/")
    assert attempt(owner_again, "192.0.2.1", *ADMIN).status_code == 302

    # a browser the name never used waits at most the name's cap, then gets in
    fresh = WebClient(app.test_client())
    resp = attempt(fresh, "192.0.2.99", *ADMIN)
    assert resp.status_code == 429 and 0 < int(resp.headers["Retry-After"]) <= 30
    clock.now += 31
    assert attempt(fresh, "192.0.2.99", *ADMIN).status_code == 302
    actions = {e.action for e in runtime.store.audit.list(limit=500)}
    assert {"login", "login-failed", "login-limited"} <= actions


def test_a_flood_of_junk_names_through_the_app_keeps_the_attacked_name_slowed(
    app: Flask, runtime: Runtime
) -> None:
    clock = Clock()
    app.extensions["netboot_login_limiter"] = LoginLimiter(clock=clock, max_keys=50)
    web = WebClient(app.test_client())
    for n in range(8):
        guess(app, clock, web, f"10.77.0.{n + 1}", ADMIN[0])
    for n in range(300):
        clock.now += 0.01
        assert attempt(web, f"10.78.{n // 200}.{n % 200 + 1}", f"junk-{n}", "x-password").status_code == 401
    resp = attempt(WebClient(app.test_client()), "192.0.2.50", *ADMIN)
    assert resp.status_code == 429  # the name's delay survived the flood
