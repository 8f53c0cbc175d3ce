"""UI pages for the session itself: sign in and sign out.

Sign-in goes through the limiter (:mod:`netboot.webapp.login_limit`): while any of the caller's keys waits,
the answer is 429 without looking at the password (audited once per delay); a failure is counted and
audited; a success forgets the name's (or this browser's) failures and remembers the browser for the name
(:mod:`netboot.webapp.device`).
"""

from __future__ import annotations

import math

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from netboot.store.accounts import ROLES
from netboot.webapp.auth import (
    actor,
    any_role,
    audit_quietly,
    deny,
    limit_keys,
    limiter,
    public,
    safe_next,
    sign_in,
    sign_out,
)
from netboot.webapp.device import remember_device
from netboot.webapp.ui.blueprint import Page, _runtime, ui


def _first_run() -> bool | None:
    """True when no user exists yet; None when the user store cannot be read."""
    try:
        return bool(_runtime().store.users.count() == 0)
    except Exception:
        return None


def _limited(name: str, next_url: str, keys: list[str], wait: float) -> Response:
    """429: a key of this sign-in still waits; the password is not looked at."""
    seconds = max(1, math.ceil(wait))
    if limiter().first_refusal(keys):
        audit_quietly(name[:64] or "(empty)", "login-limited", f"from {request.remote_addr}",
               {"retry_after": seconds}, ok=False)
    resp = Response(
        render_template(
            "login.html",
            next=next_url,
            first_run=False,
            name=name,
            error=f"Too many failed sign-ins. Try again in {seconds} s.",
        ),
        status=429,
        mimetype="text/html",
    )
    resp.headers["Retry-After"] = str(seconds)
    return resp


@ui.route("/login", methods=["GET", "POST"])
@public
def login() -> Page:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=next_url, first_run=_first_run(), error=None, name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    keys = limit_keys(name)
    wait = limiter().retry_after(keys)
    if wait > 0:
        return _limited(name, next_url, keys, wait)
    store = _runtime().store
    try:
        user = store.users.verify(name, password) if name and password else None
    except Exception as exc:
        current_app.logger.error("sign-in refused: the user store cannot be read: %s", exc)
        return deny(
            503, "the user store cannot be read: nobody can sign in until it is repaired (see the server log)"
        )
    if user is None or user.role not in ROLES:
        limiter().failed(keys)
        audit_quietly(name[:64] or "(empty)", "login-failed", f"from {request.remote_addr}", ok=False)
        return render_template(
            "login.html",
            next=next_url,
            first_run=_first_run(),
            name=name,
            error="Wrong user name or password.",
        ), 401
    limiter().succeeded(keys)
    try:
        sign_in(user)
        store.audit.write(user.name, "login", f"from {request.remote_addr}")
    except Exception as exc:
        current_app.logger.error("sign-in failed: %s", exc)
        return deny(503, "cannot start a session: the user store cannot be written")
    resp = redirect(next_url)
    remember_device(request, resp, user.name)
    return resp


@ui.post("/logout")
@any_role
def logout() -> BaseResponse:
    who = actor()
    sign_out()
    audit_quietly(who, "logout", f"from {request.remote_addr}")
    flash("Signed out.")
    return redirect(url_for("ui.login"))
