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


def test_token_create_with_expiry_and_role(tmp_path: Path) -> None:
    """``--expires 30d --role viewer``: the token reads but cannot write, stops after its time, and
    ``token list`` (table and JSON) shows both."""
    import time

    data = tmp_path / "data"
    assert run(data, "user", "add", "ops", "--password-stdin", stdin="ops-password-1\n")[0] == 0
    code, out, err = run(data, "token", "create", "--user", "ops", "--name", "ro", "--expires", "30d",
                         "--role", "viewer")
    assert code == 0, err
    assert "acts as viewer" in err and "expires" in err
    secret = out.strip()
    code, out, _ = run(data, "token", "list", "--json")
    [listed] = json.loads(out)
    assert listed["role"] == "viewer" and listed["status"] == "active"
    assert abs(listed["expires"] - (time.time() + 30 * 86400)) < 120
    code, out, _ = run(data, "token", "list")
    header, row = out.splitlines()
    assert "ROLE" in header and "EXPIRES" in header
    column = header.index("EXPIRES")
    assert row[header.index("ROLE"):].startswith("viewer ")
    assert row[column:].split()[0] == time.strftime("%Y-%m-%d", time.localtime(listed["expires"]))

    rt = make_runtime(data)
    try:
        from netboot.webapp import create_app

        client = create_app(rt).test_client()
        auth = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/systems", headers=auth).status_code == 200
        resp = client.post("/api/v1/systems", json={"mac": "52:54:00:00:00:01", "profile": "x"}, headers=auth)
        assert resp.status_code == 403  # the token is a viewer although its user is an admin
        created = rt.store.audit.list()[-2]
        assert created.action == "token-create" and created.detail["role"] == "viewer"
        assert created.detail["expires"] == listed["expires"]
    finally:
        rt.close()


def test_token_create_refuses_bad_expiry_and_role(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "user", "add", "vic", "--role", "viewer", "--password-stdin", stdin="vic-password-1\n")
    code, _, err = run(data, "token", "create", "--user", "vic", "--expires", "soon")
    assert code == 2 and "--expires" in err and "30d" in err
    code, _, err = run(data, "token", "create", "--user", "vic", "--expires", "0s")
    assert code == 2 and "--expires" in err
    code, _, err = run(data, "token", "create", "--user", "vic", "--role", "admin")
    assert code == 2 and "--role" in err  # never more than its user
    code, _, err = run(data, "token", "create", "--user", "vic", "--role", "root")
    assert code == 2 and "root" in err
    code, out, _ = run(data, "token", "list")
    assert out.strip() == "no tokens"
    code, out, err = run(data, "token", "create", "--user", "vic", "--expires", "never")
    assert code == 0 and "never expires" in err
