"""The admin UI under ``/ui``: server-rendered HTML, one form per action, CSRF on every form.

Everything is escaped by Jinja's autoescape (templates end in ``.html``; nothing is marked safe), and the
Content-Security-Policy allows scripts and styles only from this server, so a hostname, a variable or a
path a machine sent is shown as text, never run. The only JavaScript is ``static/timeline.js``, which polls
``/api/v1/systems/<mac>/events`` with the session cookie and adds rows with ``textContent``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers.response import Response as BaseResponse

from netboot import registration
from netboot.inventory import SystemState
from netboot.registration import FieldError, NotFound
from netboot.store.accounts import ROLES, AccountError, ApiToken
from netboot.webapp import preview, runtime_of
from netboot.webapp.api import event_json, search_systems
from netboot.webapp.auth import (
    AuthUnavailable,
    actor,
    any_role,
    check_request,
    current_principal,
    deny,
    limit_keys,
    limiter,
    public,
    role_required,
    safe_next,
    security_headers,
    sign_in,
    sign_out,
)

ui = Blueprint("ui", __name__, url_prefix="/ui")
ui.before_request(check_request)

Page = str | Response | BaseResponse | tuple[str, int]

ui.after_request(security_headers)


# ------------------------------------------------------------------------------------------- filters


def fmt_time(value: float | None) -> str:
    if not value:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) + " UTC"


def fmt_ago(value: float | None) -> str:
    if not value:
        return "never"
    delta = max(0, int(time.time() - value))
    if delta < 60:
        return f"{delta} s ago"
    if delta < 3600:
        return f"{delta // 60} min ago"
    if delta < 86400:
        return f"{delta // 3600} h ago"
    return f"{delta // 86400} d ago"


def fmt_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@ui.app_template_filter("when")
def _when(value: float | None) -> str:
    return fmt_time(value)


@ui.app_template_filter("ago")
def _ago(value: float | None) -> str:
    return fmt_ago(value)


@ui.app_template_filter("tojson_pretty")
def _tojson_pretty(value: Any) -> str:
    return fmt_json(value)


def _runtime() -> Any:
    return runtime_of(current_app)


def _is_admin() -> bool:
    principal = current_principal()
    return principal is not None and principal.has("admin")


# --------------------------------------------------------------------------------------- sign in/out


@ui.get("/")
def index() -> BaseResponse:
    return redirect(url_for("ui.systems"))


def _first_run() -> bool | None:
    """True when no user exists yet; None when the user store cannot be read."""
    try:
        return bool(_runtime().store.users.count() == 0)
    except Exception:
        return None


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
        resp = Response(
            render_template(
                "login.html",
                next=next_url,
                first_run=False,
                name=name,
                error=f"Too many failed sign-ins. Try again in {int(wait) + 1} s.",
            ),
            status=429,
            mimetype="text/html",
        )
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
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
        try:
            store.audit.write(name[:64] or "(empty)", "login-failed", f"from {request.remote_addr}", ok=False)
        except Exception:
            current_app.logger.exception("could not write the audit log")
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
    return redirect(next_url)


@ui.post("/logout")
@any_role
def logout() -> BaseResponse:
    sign_out()
    flash("Signed out.")
    return redirect(url_for("ui.login"))


# -------------------------------------------------------------------------------------------- systems


def _system_form_values(system: Any = None) -> dict[str, str]:
    if system is None:
        return {"mac": "", "hostname": "", "profile": "", "ip": "", "vars": ""}
    return {
        "mac": system.mac.colon,
        "hostname": system.hostname or "",
        "profile": system.profile or "",
        "ip": str(system.ip) if system.ip else "",
        "vars": fmt_json(dict(system.variables)) if system.variables else "",
    }


@ui.get("/systems")
def systems() -> Page:
    runtime = _runtime()
    state = request.args.get("state", "")
    profile = request.args.get("profile", "")
    q = request.args.get("q", "")
    chosen = SystemState(state) if state in ("install", "installed", "local") else None
    rows = runtime.store.systems.list(state=chosen, profile=profile or None)
    rows = [s for s in rows if s.state is not SystemState.DISCOVERED]
    rows = search_systems(rows, q)
    return render_template(
        "systems.html",
        systems=rows,
        state=state,
        profile=profile,
        q=q,
        profiles=preview.profile_names(runtime),
        discovered=len(runtime.store.systems.list(state=SystemState.DISCOVERED)),
    )


@ui.route("/systems/new", methods=["GET", "POST"])
def system_new() -> Page:
    runtime = _runtime()
    profiles = preview.installer_profile_names(runtime)
    if request.method == "GET":
        values = _system_form_values()
        values["mac"] = request.args.get("mac", "")
        return render_template("system_form.html", mode="new", values=values, errors={}, profiles=profiles)
    values = {k: request.form.get(k, "") for k in ("mac", "hostname", "profile", "ip", "vars")}
    try:
        variables = registration.parse_variables_text(values["vars"])
        system = registration.register(
            runtime,
            values["mac"],
            values["profile"],
            values["hostname"] or None,
            values["ip"] or None,
            variables,
            actor(),
        )
    except FieldError as exc:
        return render_template(
            "system_form.html", mode="new", values=values, errors={exc.field: exc.message}, profiles=profiles
        ), 400
    flash(f"Registered {system.mac} ({system.hostname or 'no host name'}) with profile {system.profile}.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.route("/systems/bulk", methods=["GET", "POST"])
def system_bulk() -> Page:
    runtime = _runtime()
    if request.method == "GET":
        return render_template("bulk.html", text="", errors=[], profiles=preview.profile_names(runtime))
    text = request.form.get("lines", "")
    done, errors = registration.register_lines(runtime, text, actor())
    if errors:
        return render_template(
            "bulk.html", text=text, errors=errors, done=done, profiles=preview.profile_names(runtime)
        ), 400
    flash(f"Registered {len(done)} system{'s' if len(done) != 1 else ''}.")
    return redirect(url_for("ui.systems"))


def _load_system(mac: str) -> Any:
    try:
        return registration.get(_runtime(), mac)
    except NotFound:
        return None
    except FieldError:
        return None


@ui.get("/systems/<mac>")
def system(mac: str) -> Page:
    runtime = _runtime()
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    runtime.store.events.wait_idle(0.25)  # so "registered by ..." is there right after registering
    events = runtime.store.events.list(found.mac, limit=200)
    files = preview.preview_system(runtime, found, hide_token=not _is_admin())
    return render_template(
        "system.html",
        system=found,
        events=[event_json(e) for e in events],
        last_id=events[-1].id if events else 0,
        files=files,
    )


@ui.route("/systems/<mac>/edit", methods=["GET", "POST"])
def system_edit(mac: str) -> Page:
    runtime = _runtime()
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    profiles = preview.installer_profile_names(runtime)
    if request.method == "GET":
        return render_template(
            "system_form.html",
            mode="edit",
            values=_system_form_values(found),
            errors={},
            profiles=profiles,
            system=found,
        )
    values = {k: request.form.get(k, "") for k in ("hostname", "profile", "ip", "vars")}
    values["mac"] = found.mac.colon
    try:
        variables = registration.parse_variables_text(values["vars"])
        registration.set_fields(
            runtime,
            found.mac,
            actor(),
            profile=values["profile"],
            hostname=values["hostname"] or None,
            ip=values["ip"] or None,
            variables=variables,
        )
    except FieldError as exc:
        return render_template(
            "system_form.html",
            mode="edit",
            values=values,
            errors={exc.field: exc.message},
            profiles=profiles,
            system=found,
        ), 400
    flash(f"Saved {found.mac}.")
    return redirect(url_for("ui.system", mac=found.mac.colon))


@ui.post("/systems/<mac>/reinstall")
def system_reinstall(mac: str) -> Page:
    try:
        system = registration.reinstall(_runtime(), mac, actor())
    except FieldError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    flash(f"{system.mac} will install at its next network boot.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.post("/systems/<mac>/state")
def system_state(mac: str) -> Page:
    try:
        system = registration.set_fields(_runtime(), mac, actor(), state=request.form.get("state", ""))
    except FieldError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    flash(f"{system.mac} is now {system.state.value}.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.route("/systems/<mac>/remove", methods=["GET", "POST"])
def system_remove(mac: str) -> Page:
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    if request.method == "GET":
        return render_template("confirm_remove.html", system=found)
    registration.remove(_runtime(), found.mac, actor())
    flash(f"Removed {found.mac}.")
    target = "ui.discovered" if found.state is SystemState.DISCOVERED else "ui.systems"
    return redirect(url_for(target))


# ----------------------------------------------------------------------------------------- discovered


@ui.get("/discovered")
def discovered() -> Page:
    runtime = _runtime()
    machines = runtime.store.systems.list(state=SystemState.DISCOVERED)
    machines.sort(key=lambda s: -(s.last_seen or 0))
    return render_template(
        "discovered.html", machines=machines, profiles=preview.installer_profile_names(runtime), error=None
    )


@ui.post("/discovered/<mac>/register")
def discovered_register(mac: str) -> Page:
    runtime = _runtime()
    try:
        system = registration.register(
            runtime,
            mac,
            request.form.get("profile", ""),
            request.form.get("hostname") or None,
            None,
            None,
            actor(),
        )
    except FieldError as exc:
        machines = runtime.store.systems.list(state=SystemState.DISCOVERED)
        return render_template(
            "discovered.html",
            machines=machines,
            profiles=preview.installer_profile_names(runtime),
            error=f"{mac}: {exc.field}: {exc.message}",
        ), 400
    flash(f"Registered {system.mac} with profile {system.profile}: it installs at its next network boot.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


# ------------------------------------------------------------------------------------------- profiles


@ui.get("/profiles")
def profiles() -> Page:
    summaries, errors = preview.profile_summaries(_runtime())
    return render_template("profiles.html", profiles=summaries, errors=errors)


@ui.get("/profiles/<name>")
def profile(name: str) -> Page:
    runtime = _runtime()
    summary = preview.profile_summary(runtime, name)
    if summary is None:
        return render_template("error.html", status=404, message=f"No profile {name}."), 404
    validated = preview.profile_validate(runtime, name) if request.args.get("validate") == "1" else None
    return render_template(
        "profile.html",
        profile=summary,
        validated=validated,
        kind_description=preview.kind_description(summary.kind),
    )


# --------------------------------------------------------------------------------------------- leases


@ui.get("/leases")
def leases() -> Page:
    runtime = _runtime()
    now = time.time()
    rows = sorted(runtime.store.leases.all(), key=lambda x: int(x.ip))
    return render_template("leases.html", leases=rows, now=now, mode=runtime.config.dhcp.mode)


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
    )


@ui.get("/tokens")
def tokens() -> Page:
    return _tokens_page()


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
        token, secret = store.tokens.create(owner, request.form.get("name", ""))
    except AccountError as exc:
        return _tokens_page({exc.field: str(exc)}), 400
    store.audit.write(actor(), "token-create", f"token {token.id}", {"user": owner.name, "name": token.name})
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


@ui.errorhandler(AuthUnavailable)
def _auth_unavailable(_exc: AuthUnavailable) -> Response:
    return deny(503, "the user store cannot be read: nobody can sign in until it is repaired")
