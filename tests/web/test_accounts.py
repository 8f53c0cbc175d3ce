"""Users, tokens and sessions in the store: slow salted hashes, hashed tokens, refusals with the field."""

from __future__ import annotations

import sqlite3

import pytest

import netboot.store.accounts as accounts
from netboot.runtime import Runtime
from netboot.store.accounts import AccountError, check_password, hash_password


def test_password_hash_is_salted_scrypt_with_its_parameters() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b  # fresh salt each time
    scheme, n, r, p, _salt, _digest = a.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", accounts.SCRYPT_N, 8, 1)
    assert check_password(a, "correct horse") and check_password(b, "correct horse")
    assert not check_password(a, "correct horsE")
    assert not check_password(a, "")


def test_production_cost_is_n_2_15(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the autouse fixture lowered it for speed
    assert (accounts.SCRYPT_N, accounts.SCRYPT_R, accounts.SCRYPT_P) == (2**15, 8, 1)
    assert hash_password("x" * 8).startswith("scrypt$32768$8$1$")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "-1",
        "scrypt$",
        "plain",
        "scrypt$1$8$1$AA$AA",
        "scrypt$x$y$z$a$b",
        "md5$1$1$1$AA$AA",
        "scrypt$4194304$8$1$AA$AA",
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not check_password(stored, "")
    assert not check_password(stored, "-1")


@pytest.mark.parametrize(
    ("name", "password", "field"),
    [
        ("", "-1", "name"),  # CVE-2024-47533: user '' with password -1
        ("", "long-enough-password", "name"),
        ("admin2", "-1", "password"),
        ("admin2", "", "password"),
        ("admin2", "short", "password"),
        ("admin2", "        ", "password"),
        ("has space", "long-enough-password", "name"),
        ("<script>", "long-enough-password", "name"),
        ("admin", "long-enough-password", "name"),  # exists
    ],
)
def test_bad_users_are_refused_naming_the_field(
    runtime: Runtime, name: str, password: str, field: str
) -> None:
    with pytest.raises(AccountError) as err:
        runtime.store.users.add(name, password, "admin")
    assert err.value.field == field


def test_unknown_role_is_refused(runtime: Runtime) -> None:
    with pytest.raises(AccountError) as err:
        runtime.store.users.add("root", "long-enough-password", "root")
    assert err.value.field == "role"


def test_verify_and_empty_credentials(runtime: Runtime) -> None:
    users = runtime.store.users
    assert users.verify("admin", "admin-password-1") is not None
    assert users.verify("admin", "wrong-password") is None
    assert users.verify("", "-1") is None
    assert users.verify("", "") is None
    assert users.verify("nobody", "admin-password-1") is None


def test_tokens_are_stored_only_as_hashes_and_revocable(runtime: Runtime) -> None:
    user = runtime.store.users.get("admin")
    assert user is not None
    token, secret = runtime.store.tokens.create(user, "ci")
    assert secret.startswith("nbt_") and len(secret) > 40
    db = runtime.config.data_dir / "netboot.db"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert secret not in dump and secret[4:] not in dump
    found = runtime.store.tokens.authenticate(secret)
    assert found is not None and found[1].name == "admin" and found[0].id == token.id
    assert runtime.store.tokens.revoke(token.id)
    assert runtime.store.tokens.authenticate(secret) is None
    assert not runtime.store.tokens.revoke(token.id)  # already revoked
    for bad in ("", "nbt_", "nbt_" + "A" * 43, secret[:-1], "x" * 500):
        assert runtime.store.tokens.authenticate(bad) is None


def test_sessions_end_with_password_change_and_user_removal(runtime: Runtime) -> None:
    user = runtime.store.users.get("viewer")
    assert user is not None
    sid = runtime.store.sessions.create(user)
    assert runtime.store.sessions.user(sid) == user
    runtime.store.users.set_password("viewer", "another-password")
    assert runtime.store.sessions.user(sid) is None
    user = runtime.store.users.get("viewer")
    assert user is not None
    sid = runtime.store.sessions.create(user)
    _token, secret = runtime.store.tokens.create(user, "x")
    assert runtime.store.users.remove("viewer")
    assert runtime.store.sessions.user(sid) is None
    assert runtime.store.tokens.authenticate(secret) is None


def test_expired_sessions_do_not_count(runtime: Runtime) -> None:
    user = runtime.store.users.get("admin")
    assert user is not None
    sid = runtime.store.sessions.create(user, lifetime=-1)
    assert runtime.store.sessions.user(sid) is None
    assert runtime.store.sessions.user("") is None
