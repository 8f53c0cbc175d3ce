"""UI pages for admins and each user's own account: users, API tokens, the audit log."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from netboot.store.accounts import ROLES, AccountError, ApiToken, parse_duration
from netboot.webapp.auth import (
    actor,
    any_role,
    current_principal,
    role_required,
    sign_in,
)
from netboot.webapp.ui.blueprint import Page, _runtime, ui

# ------------------------------------------------------------------------------------ users and tokens


@ui.get("/users")
@role_required("admin")
def users() -> Page:
    return render_template(
        "users.html",
        users=_runtime().store.users.list(),
        roles=ROLES,
        errors={},
        values={"name": "", "role": "viewer"},
    )


@ui.post("/users")
@role_required("admin")
def user_add() -> Page:
    store = _runtime().store
    values = {"name": request.form.get("name", "").strip(), "role": request.form.get("role", "viewer")}
    password = request.form.get("password", "")
    try:
        if password != request.form.get("password2", ""):
            raise AccountError("password2", "the two passwords differ")
        user = store.users.add(values["name"], password, values["role"])
    except AccountError as exc:
        return render_template(
            "users.html", users=store.users.list(), roles=ROLES, errors={exc.field: str(exc)}, values=values
        ), 400
    store.audit.write(actor(), "user-add", f"user {user.name}", {"role": user.role})
    flash(f"Added user {user.name} ({user.role}).")
    return redirect(url_for("ui.users"))


@ui.post("/users/<name>/remove")
@role_required("admin")
def user_remove(name: str) -> Page:
    store = _runtime().store
    principal = current_principal()
    if principal is not None and principal.user.name == name:
        return render_template("error.html", status=400, message="You cannot remove yourself."), 400
    if not store.users.remove(name):
        return render_template("error.html", status=404, message=f"No user {name}."), 404
    store.audit.write(actor(), "user-remove", f"user {name}")
    flash(f"Removed user {name} with their tokens and sessions.")
    return redirect(url_for("ui.users"))


@ui.route("/account", methods=["GET", "POST"])
@any_role
def account() -> Page:
    principal = current_principal()
    assert principal is not None
    if request.method == "GET":
        return render_template("account.html", errors={})
    store = _runtime().store
    current = request.form.get("current", "")
    new = request.form.get("password", "")
    try:
        if store.users.verify(principal.user.name, current) is None:
            raise AccountError("current", "the current password is wrong")
        if new != request.form.get("password2", ""):
            raise AccountError("password2", "the two new passwords differ")
        store.users.set_password(principal.user.name, new)
    except AccountError as exc:
        return render_template("account.html", errors={exc.field: str(exc)}), 400
    store.audit.write(actor(), "password-change", f"user {principal.user.name}")
    user = store.users.get(principal.user.name)
    if user is not None:
        sign_in(user)  # the password change ended every session, this one included: start a new one
    flash("Password changed; other sessions of yours are signed out.")
    return redirect(url_for("ui.account"))


def _tokens_page(errors: dict[str, str] | None = None, new_secret: str | None = None,
                 new_token: ApiToken | None = None) -> str:
    """The tokens page as the signed-in user may see it: an admin sees every token and user, others
    their own tokens; optionally with form errors or the secret of a token just created (shown once)."""
    store = _runtime().store
    principal = current_principal()
    assert principal is not None
    admin = principal.has("admin")
    return render_template(
        "tokens.html",
        tokens=store.tokens.list(None if admin else principal.user),
        users=store.users.list() if admin else [],
        new_secret=new_secret,
        new_token=new_token,
        errors=errors or {},
        roles=ROLES,
        values=request.form if request.method == "POST" and errors else {},
    )


@ui.get("/tokens")
def tokens() -> Page:
    return _tokens_page()


def _lifetime(text: str) -> float | None:
    """Seconds from the form's expiry field ("30d", "12h", ...); None for "never" or nothing."""
    text = text.strip()
    return None if text.lower() in ("", "never") else parse_duration(text)


@ui.post("/tokens")
@any_role
def token_create() -> Page:
    store = _runtime().store
    principal = current_principal()
    assert principal is not None
    admin = principal.has("admin")
    owner_name = request.form.get("user", "") or principal.user.name
    owner = store.users.get(owner_name) if admin else principal.user
    if owner is None or (not admin and owner_name != principal.user.name):
        return _tokens_page({"user": f"no user {owner_name!r}"}), 400
    try:
        lifetime = _lifetime(request.form.get("expires", ""))
        role = request.form.get("role", "").strip() or None
        token, secret = store.tokens.create(owner, request.form.get("name", ""), lifetime=lifetime, role=role)
    except AccountError as exc:
        return _tokens_page({exc.field: str(exc)}), 400
    detail = {"user": owner.name, "name": token.name, "expires": token.expires, "role": token.role}
    store.audit.write(actor(), "token-create", f"token {token.id}", detail)
    return _tokens_page(new_secret=secret, new_token=token)


@ui.post("/tokens/<int:token_id>/revoke")
@any_role
def token_revoke(token_id: int) -> Page:
    store = _runtime().store
    principal = current_principal()
    assert principal is not None
    token = store.tokens.get(token_id)
    if token is None or (not principal.has("admin") and token.user_id != principal.user.id):
        return render_template("error.html", status=404, message=f"No token {token_id}."), 404
    if store.tokens.revoke(token_id):
        store.audit.write(
            actor(), "token-revoke", f"token {token_id}", {"user": token.user, "name": token.name}
        )
        flash(f"Revoked token {token_id} ({token.name}).")
    return redirect(url_for("ui.tokens"))


# ---------------------------------------------------------------------------------------------- audit


@ui.get("/audit")
@role_required("admin")
def audit() -> Page:
    try:
        before = int(request.args.get("before", "0")) or None
    except ValueError:
        before = None
    entries = _runtime().store.audit.list(limit=100, before_id=before)
    return render_template(
        "audit.html", entries=entries, older=entries[-1].id if len(entries) == 100 else None
    )
