"""``netboot user ...`` and ``netboot token ...``: web and API accounts, from the server's shell.

Every command takes ``--config``/``--data-dir`` like ``netboot serve`` so it acts on the daemon's database.
Each change is written to the audit log as ``cli:<unix user>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from netboot.cli.common import actor, echo_json, fail, state_options, store_of, when
from netboot.store.accounts import ROLES, AccountError, parse_duration


@click.group()
def user() -> None:
    """Web UI and API users (roles: admin may change everything, viewer may only read)."""


@user.command("add")
@state_options
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (first line) instead of prompting.",
)
def user_add(
    config_file: Path | None, data_dir: Path | None, name: str, role: str, password_stdin: bool
) -> None:
    """Create user NAME; asks for the password twice (or reads it with --password-stdin).

    \b
    Examples:
      netboot user add admin
      printf '%s\\n' "$PASSWORD" | netboot user add ci --role viewer --password-stdin
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = store_of(config_file, data_dir)
    try:
        made = store.users.add(name, password, role)
        store.audit.write(actor(), "user-add", f"user {made.name}", {"role": made.role})
    except AccountError as exc:
        fail(f"{exc.field}: {exc}")
    finally:
        store.close()
    click.echo(f"added user {made.name} ({made.role}); sign in at http://<server>:<http-port>/ui/")


@user.command("list")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """List users."""
    store = store_of(config_file, data_dir)
    try:
        users = store.users.list()
    finally:
        store.close()
    if as_json:
        rows = [{"name": u.name, "role": u.role, "created": u.created} for u in users]
        echo_json(rows)
        return
    if not users:
        click.echo("no users (create one with: netboot user add NAME)")
        return
    click.echo(f"{'NAME':<24}{'ROLE':<10}CREATED")
    for u in users:
        click.echo(f"{u.name:<24}{u.role:<10}{when(u.created, seconds=False)}")


@user.command("remove")
@state_options
@click.argument("name")
def user_remove(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    """Remove user NAME with their API tokens and sessions."""
    store = store_of(config_file, data_dir)
    try:
        if not store.users.remove(name):
            fail(f"no user {name!r}")
        store.audit.write(actor(), "user-remove", f"user {name}")
    finally:
        store.close()
    click.echo(f"removed user {name}")


@user.command("password")
@state_options
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def user_password(config_file: Path | None, data_dir: Path | None, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (ends their browser sessions)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    store = store_of(config_file, data_dir)
    try:
        store.users.set_password(name, password)
        store.audit.write(actor(), "password-change", f"user {name}")
    except AccountError as exc:
        fail(f"{exc.field}: {exc}")
    finally:
        store.close()
    click.echo(f"password of {name} changed")


@click.group()
def token() -> None:
    """API bearer tokens (Authorization: Bearer ...), for /api/v1 only (never the UI).

    A token acts with its own role when it has one (--role), never with more than its user's, and stops
    working when it expires (--expires) or is revoked.
    """


def _lifetime(text: str | None) -> float | None:
    """--expires: seconds, or None for ``never`` (until revoked)."""
    if text is None or text.strip().lower() == "never":
        return None
    return parse_duration(text)


@token.command("create")
@state_options
@click.option("--user", "user_name", required=True, metavar="NAME", help="The user the token acts as.")
@click.option("--name", "label", default="cli", show_default=True, metavar="LABEL", help="What it is for.")
@click.option(
    "--expires",
    metavar="DURATION",
    help="Stop working after DURATION (30d, 12h, 1d12h, 90m, 2w; at most ten years) [default: never].",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    help="Act with this role, never more than the user's [default: the user's role, as it changes].",
)
def token_create(
    config_file: Path | None,
    data_dir: Path | None,
    user_name: str,
    label: str,
    expires: str | None,
    role: str | None,
) -> None:
    """Create a token and print it once (only its hash is stored).

    \b
    Example:
      TOKEN=$(netboot token create --user admin --name ansible --expires 30d --role viewer)
      curl -H "Authorization: Bearer $TOKEN" http://server:8080/api/v1/systems
    """
    store = store_of(config_file, data_dir)
    try:
        owner = store.users.get(user_name)
        if owner is None:
            fail(f"--user: no user {user_name!r} (see netboot user list)")
        made, secret = store.tokens.create(owner, label, lifetime=_lifetime(expires), role=role)
        detail = {"user": owner.name, "name": made.name, "expires": made.expires, "role": made.role}
        store.audit.write(actor(), "token-create", f"token {made.id}", detail)
    except AccountError as exc:
        fail(f"--{exc.field}: {exc}")
    finally:
        store.close()
    acting = made.role or f"{owner.role}, as its user"
    until = f"expires {when(made.expires, seconds=False)}" if made.expires else "never expires"
    click.echo(f"token {made.id} for {owner.name} (acts as {acting}; {until}); shown only now:", err=True)
    click.echo(secret)


@token.command("list")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """List tokens (never their secrets), with their role, expiry and status."""
    store = store_of(config_file, data_dir)
    try:
        tokens = store.tokens.list()
    finally:
        store.close()
    if as_json:
        echo_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "user": t.user,
                    "hint": t.hint,
                    "role": t.role,
                    "created": t.created,
                    "expires": t.expires,
                    "last_used": t.last_used,
                    "revoked": t.revoked,
                    "status": t.status,
                }
                for t in tokens
            ]
        )
        return
    if not tokens:
        click.echo("no tokens")
        return
    click.echo(
        f"{'ID':<5}{'LABEL':<20}{'USER':<16}{'STARTS WITH':<14}{'ROLE':<8}{'CREATED':<18}{'EXPIRES':<18}"
        f"{'LAST USED':<18}STATUS"
    )
    for t in tokens:
        expires = when(t.expires, seconds=False) if t.expires else "never"
        created, used = when(t.created, seconds=False), when(t.last_used, seconds=False)
        click.echo(
            f"{t.id:<5}{t.name[:19]:<20}{t.user[:15]:<16}{t.hint:<14}{t.role or 'user':<8}"
            f"{created:<18}{expires:<18}{used:<18}{t.status}"
        )


@token.command("revoke")
@state_options
@click.argument("token_id", metavar="ID", type=int)
def token_revoke(config_file: Path | None, data_dir: Path | None, token_id: int) -> None:
    """Revoke token ID: it stops working at once."""
    store = store_of(config_file, data_dir)
    try:
        found = store.tokens.get(token_id)
        if found is None:
            fail(f"no token {token_id} (see netboot token list)")
        if not store.tokens.revoke(token_id):
            fail(f"token {token_id} is already revoked")
        store.audit.write(actor(), "token-revoke", f"token {token_id}", {"user": found.user})
    finally:
        store.close()
    click.echo(f"revoked token {token_id}")


COMMANDS: list[click.Command] = [user, token]
