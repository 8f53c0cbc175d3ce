"""``netboot user`` and ``netboot token``: made from the shell, usable on the API, audited."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from netboot.cli import main

from .conftest import make_runtime


def run(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_user_and_token_lifecycle(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, _ = run(data, "user", "list")
    assert code == 0 and "netboot user add" in out
    code, out, err = run(data, "user", "add", "alice", "--password-stdin", stdin="alice-password\n")
    assert code == 0, err
    code, out, err = run(data, "user", "add", "bob", "--role", "viewer", stdin="bob-password\nbob-password\n")
    assert code == 0, err  # prompted twice
    code, out, _ = run(data, "user", "list", "--json")
    assert [(u["name"], u["role"]) for u in json.loads(out)] == [("alice", "admin"), ("bob", "viewer")]

    code, out, err = run(data, "token", "create", "--user", "bob", "--name", "ci")
    assert code == 0 and out.strip().startswith("nbt_") and "shown only now" in err
    secret = out.strip()
    code, out, _ = run(data, "token", "list")
    assert code == 0 and "ci" in out and secret not in out and "active" in out

    rt = make_runtime(data)
    try:
        from netboot.webapp import create_app

        client = create_app(rt).test_client()
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200 and me.json["name"] == "bob"
        token_id = rt.store.tokens.list()[0].id
        code, out, _ = run(data, "token", "revoke", str(token_id))
        assert code == 0
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        code, _, err = run(data, "token", "revoke", str(token_id))
        assert code == 2 and "already revoked" in err
        actions = [e.action for e in rt.store.audit.list()]
        assert actions == ["token-revoke", "token-create", "user-add", "user-add"]
        assert rt.store.audit.list()[0].actor.startswith("cli")
    finally:
        rt.close()

    code, out, _ = run(data, "user", "remove", "bob")
    assert code == 0
    code, _, err = run(data, "user", "remove", "bob")
    assert code == 2 and "no user" in err


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, _, err = run(data, "user", "add", "", "--password-stdin", stdin="long-enough\n")
    assert code == 2 and "name" in err
    code, _, err = run(data, "user", "add", "carol", "--password-stdin", stdin="-1\n")
    assert code == 2 and "password" in err and "8 characters" in err
    code, _, err = run(data, "user", "add", "carol", "--password-stdin", stdin="\n")
    assert code == 2 and "password" in err
    code, _, err = run(
        data, "user", "add", "carol", "--role", "root", "--password-stdin", stdin="long-enough\n"
    )
    assert code == 2 and "root" in err
    code, _, err = run(data, "token", "create", "--user", "nobody")
    assert code == 2 and "no user 'nobody'" in err
    code, _, err = run(data, "token", "revoke", "42")
    assert code == 2 and "no token 42" in err
