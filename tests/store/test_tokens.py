"""API tokens in the store (``netboot.store.tokens.TokenRepo``), over a real SQLite database.

With two users holding tokens, each token belongs to its own user (a join that matched the wrong row
would let one user's token act as another), revoking one revokes only that one, and a secret works only
whole, unexpired and unrevoked. ``last_used`` is written at most once a minute (a write per API call
would put the store on every request).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeclock import Clock

from netboot.store import Store, accounts, open_store
from netboot.store import tokens as tokens_module
from netboot.store.accounts import TOKEN_PREFIX, AccountError, User


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock(1_800_000_000.0)
    monkeypatch.setattr(tokens_module.time, "time", made)
    return made


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(accounts, "SCRYPT_N", 2**8)  # cheap hashes: the format and the path are the same
    made = open_store(f"sqlite:///{tmp_path / 'netboot.db'}")
    yield made
    made.close()


@pytest.fixture
def alice(store: Store) -> User:
    return store.users.add("alice", "alice-password-1", "admin")


@pytest.fixture
def bob(store: Store) -> User:
    return store.users.add("bob", "bob-password-12", "viewer")


def test_each_token_authenticates_as_its_own_user(store: Store, alice: User, bob: User, clock: Clock) -> None:
    a, a_secret = store.tokens.create(alice, "ci")
    b, b_secret = store.tokens.create(bob, "monitor")
    found_a = store.tokens.authenticate(a_secret)
    found_b = store.tokens.authenticate(b_secret)
    assert found_a is not None and found_b is not None
    assert (found_a[0].id, found_a[1].name, found_a[1].role, found_a[1].id) == (
        a.id,
        "alice",
        "admin",
        alice.id,
    )
    assert (found_b[0].id, found_b[1].name, found_b[1].role, found_b[1].id) == (b.id, "bob", "viewer", bob.id)
    assert found_b[1].created == bob.created and found_b[1].generation == bob.generation
    # the lists and lookups name the owner too
    assert [(t.name, t.user) for t in store.tokens.list()] == [("ci", "alice"), ("monitor", "bob")]
    assert [t.name for t in store.tokens.list(bob)] == ["monitor"]
    got = store.tokens.get(b.id)
    assert got is not None and (got.user, got.user_id, got.name) == ("bob", bob.id, "monitor")
    assert store.tokens.get(b.id + 100) is None


def test_a_made_token_is_described_as_stored(store: Store, alice: User, clock: Clock) -> None:
    made, secret = store.tokens.create(alice, "  ci  ", lifetime=3600, role="viewer")
    assert secret.startswith(TOKEN_PREFIX) and len(secret) == len(TOKEN_PREFIX) + 43  # 32 random bytes
    assert made.hint == secret[: len(TOKEN_PREFIX) + 6]
    assert (made.name, made.expires, made.role, made.created) == ("ci", clock.now + 3600, "viewer", clock.now)
    assert store.tokens.get(made.id) == made


def test_revoking_one_token_leaves_the_others(store: Store, alice: User, bob: User, clock: Clock) -> None:
    a, a_secret = store.tokens.create(alice, "ci")
    b, b_secret = store.tokens.create(bob, "monitor")
    assert store.tokens.revoke(a.id)
    assert not store.tokens.revoke(a.id)  # once
    assert store.tokens.authenticate(a_secret) is None
    assert store.tokens.authenticate(b_secret) is not None
    still = store.tokens.get(b.id)
    assert still is not None and still.revoked is None


def test_a_token_expires_at_its_time(store: Store, alice: User, clock: Clock) -> None:
    _, secret = store.tokens.create(alice, "short", lifetime=60)
    clock.now += 59
    assert store.tokens.authenticate(secret) is not None
    clock.now += 1
    assert store.tokens.authenticate(secret) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],
        lambda s: s + "x",
        lambda s: s[len(TOKEN_PREFIX) :],
        lambda s: "nbx_" + s[len(TOKEN_PREFIX) :],
        lambda s: s.upper(),
        lambda s: s + "A" * 200,
    ],
    ids=["cut", "longer", "no prefix", "other prefix", "upper case", "padded"],
)
def test_only_the_whole_secret_works(store: Store, alice: User, clock: Clock, mangle: object) -> None:
    _, secret = store.tokens.create(alice, "ci")
    assert store.tokens.authenticate(mangle(secret)) is None  # type: ignore[operator]


def test_a_secret_of_200_characters_is_looked_up_and_a_longer_one_is_not(
    store: Store, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    real = tokens_module.digest
    monkeypatch.setattr(tokens_module, "digest", lambda s: looked_up.append(s) or real(s))
    for length in (200, 201):
        store.tokens.authenticate(TOKEN_PREFIX + "a" * (length - len(TOKEN_PREFIX)))
    assert [len(s) for s in looked_up] == [200]


def test_last_used_is_written_at_most_once_a_minute(
    store: Store, alice: User, bob: User, clock: Clock
) -> None:
    a, secret = store.tokens.create(alice, "ci")
    b, _ = store.tokens.create(bob, "monitor")
    store.tokens.authenticate(secret)
    first = clock.now
    clock.now += 60
    store.tokens.authenticate(secret)  # 60 s later: not yet
    used = store.tokens.get(a.id)
    assert used is not None and used.last_used == first
    clock.now += 1
    store.tokens.authenticate(secret)
    used = store.tokens.get(a.id)
    assert used is not None and used.last_used == first + 61
    other = store.tokens.get(b.id)
    assert other is not None and other.last_used is None  # only the token used


@pytest.mark.parametrize(("name", "field"), [("", "name"), ("   ", "name"), ("x" * 129, "name")])
def test_a_token_needs_a_label(store: Store, alice: User, name: str, field: str) -> None:
    with pytest.raises(AccountError) as info:
        store.tokens.create(alice, name)
    assert (info.value.field, str(info.value)) == (field, "a token needs a label of 1-128 characters")


def test_labels_of_1_and_128_characters_are_fine(store: Store, alice: User) -> None:
    assert store.tokens.create(alice, "x")[0].name == "x"
    assert store.tokens.create(alice, "y" * 128)[0].name == "y" * 128


@pytest.mark.parametrize("lifetime", [0, -5])
def test_a_lifetime_must_be_positive(store: Store, alice: User, lifetime: float) -> None:
    with pytest.raises(AccountError) as info:
        store.tokens.create(alice, "ci", lifetime=lifetime)
    assert (info.value.field, str(info.value)) == ("expires", "a token's lifetime must be positive")
    assert store.tokens.create(alice, "ci", lifetime=1)[0].expires is not None
