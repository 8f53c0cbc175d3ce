"""Who is asking, and may they: sessions, bearer tokens, roles, CSRF and the sign-in limiter.

Rules (each one tested in ``tests/web``):

* **Deny by default.** The ``api`` and ``ui`` blueprints authenticate every request in a
  ``before_request`` hook; only views marked :func:`public` (sign-in page, OpenAPI document) skip it.
  Viewers may only read (GET/HEAD); every other method needs the ``admin`` role unless the view is marked
  :func:`any_role` (sign out, a user's own tokens). :func:`role_required` raises the bar for a view.
  Every refusal of a signed-in caller (403) is audited with the caller, the method and the path.
* **Fail closed.** Any error while reading users, sessions or tokens answers 503 and lets nobody in; a
  user with an unknown role gets nothing.
* **Bearer tokens are for the API only** (``Authorization: Bearer nbt_...``, looked up by SHA-256
  digest). On ``/ui`` a bearer header is refused (403) on every route, the sign-in page included, and is
  never read as an identity, with or without a cookie: a leaked token cannot mint another token or add a
  user, so revoking it ends the intrusion. On the API a present but wrong, revoked, expired, empty or
  non-Bearer header is 401, never a fallback to the cookie. A token acts with its own role when it has one,
  never with more than its user's (:func:`netboot.store.accounts.effective_role`).
* **Sessions**: the signed cookie carries a random session id whose hash is stored server-side (sign-out
  and password changes end it) and the CSRF token. Cookies are always HttpOnly and SameSite=Lax;
  ``Secure`` follows ``NETBOOT_COOKIE_SECURE``: ``auto`` (default: when the request came over HTTPS,
  directly or as a proxy in ``http.trusted-proxies`` says with ``X-Forwarded-Proto``, see
  :mod:`netboot.webapp.proxy`), ``always`` or ``never``.
* **CSRF**: every unsafe request made with the session cookie must carry the session's token, in the
  ``csrf_token`` form field (UI) or the ``X-CSRF-Token`` header (API calls from the page's JavaScript).
* **Sign-in limiter** (:mod:`netboot.webapp.login_limit`): growing delays per source address and per user
  name, never a lock; a browser that signed in as a name before carries a signed *device cookie* and is
  limited under its own key instead of the name's, so an attack on the name cannot keep its owner out.
  While a key waits, sign-in answers 429 with ``Retry-After`` whatever the password.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from netboot.store.accounts import ApiToken, User, effective_role
from netboot.webapp.device import device_of
from netboot.webapp.login_limit import LoginLimiter

log = logging.getLogger("netboot.web")
F = TypeVar("F", bound=Callable[..., Any])

ROLE_RANK = {"viewer": 0, "admin": 1}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECRET_FILE = "web-secret-key"
COOKIE_NAME = "netboot_session"


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(resp: Response) -> Response:
    """For every UI and API response: no foreign scripts, no framing, no sniffing, no caching."""
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


class AuthUnavailable(RuntimeError):
    """The user store cannot be read: nobody gets in until it can."""


@dataclass(frozen=True)
class Principal:
    user: User
    via: str  # "session" or "token"
    token: ApiToken | None = None

    @property
    def actor(self) -> str:
        """How audit lines name this caller."""
        return f"{self.user.name} (token {self.token.id})" if self.token else self.user.name

    @property
    def role(self) -> str | None:
        """The role this request acts with: a session its user's; a token its own role when it has one,
        never more than its user's; None when unknown (such a caller gets nothing)."""
        return effective_role(self.user.role, self.token.role if self.token else None)

    def has(self, role: str) -> bool:
        mine = ROLE_RANK.get(self.role or "")
        return mine is not None and mine >= ROLE_RANK[role]


# ------------------------------------------------------------------------------------- view markers


def public(view: F) -> F:
    """This view needs no sign-in (sign-in page, OpenAPI document)."""
    view._netboot_public = True  # type: ignore[attr-defined]
    return view


def any_role(view: F) -> F:
    """Any signed-in user may use this view with unsafe methods too (e.g. sign out)."""
    view._netboot_any_role = True  # type: ignore[attr-defined]
    return view


def role_required(role: str) -> Callable[[F], F]:
    """Only users with ``role`` (or above) may use this view, whatever the method."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(view: F) -> F:
        view._netboot_role = role  # type: ignore[attr-defined]
        return view

    return mark


def login_required(view: F) -> F:
    """Explicit marker; the blueprints already require sign-in for every view not marked :func:`public`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_principal() is None:
            return deny(401, "sign-in required")
        return view(*args, **kwargs)

    return cast(F, wrapper)


# ------------------------------------------------------------------------------------ who is asking


def _store() -> Any:
    from netboot.webapp.services import services_of

    return services_of(current_app).store


def _bearer() -> str | None:
    """The request's bearer secret ("" when the scheme is Bearer but nothing follows), else None."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def _token_principal(secret: str) -> Principal | None:
    try:
        found = _store().tokens.authenticate(secret)
    except Exception as exc:
        log.error("cannot read API tokens: %s", exc)
        raise AuthUnavailable(str(exc)) from None
    if found is None:
        return None
    token, user = found
    return Principal(user, "token", token)


def _resolve() -> Principal | None:
    # Tokens are read on the API only: anywhere else (the UI, its error pages) only the session counts,
    # so a page never acts for, or even names, a token's user.
    header = request.headers.get("Authorization")
    if header is not None and request.blueprint == "api":
        secret = _bearer()
        return _token_principal(secret) if secret else None
    sid = session.get("sid")
    if not isinstance(sid, str) or not sid:
        return None
    try:
        user = _store().sessions.user(sid)
    except Exception as exc:
        log.error("cannot read sessions/users: %s", exc)
        raise AuthUnavailable(str(exc)) from None
    return Principal(user, "session") if user is not None else None


def current_principal() -> Principal | None:
    """The authenticated caller of this request, or None. Raises :class:`AuthUnavailable`."""
    if "netboot_principal" not in g:
        g.netboot_principal = _resolve()
    principal: Principal | None = g.netboot_principal
    return principal


def current_user() -> User | None:
    principal = current_principal()
    return principal.user if principal else None


def actor() -> str:
    principal = current_principal()
    return principal.actor if principal else "anonymous"


# ---------------------------------------------------------------------------------------- answering


def _wants_json() -> bool:
    return request.blueprint == "api" or request.path.startswith("/api/")


def deny(status: int, message: str) -> Response:
    """401/403/429/503 in the caller's language: JSON for the API, a page or a redirect for the UI."""
    if _wants_json():
        resp = jsonify({"error": {"message": message, "field": None}})
        resp.status_code = status
        if status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="netboot"'
        return resp
    if status == 401:
        target = request.full_path if request.method == "GET" else request.path
        return cast(Response, redirect(url_for("ui.login", next=target.rstrip("?"))))
    body = render_template("error.html", status=status, message=message)
    return Response(body, status=status, mimetype="text/html")


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in (never another site, never a control character: a CR/LF
    would split the Location header)."""
    default = url_for("ui.systems")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if not target.isprintable():
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not parts.path.startswith("/ui/")
        or parts.path.startswith("/ui/login")
    ):
        return default
    return target


def audit_quietly(
    who: str, action: str, target: str, detail: dict[str, object] | None = None, *, ok: bool = True
) -> None:
    """Write an audit line about sign-in or a refusal; a failing store is logged, never the caller's error
    (the answer, a 401/403/429 or a sign-out, stands whether or not it could be recorded)."""
    try:
        _store().audit.write(who, action, target, detail, ok=ok)
    except Exception:
        log.exception("could not write the audit log")


def audit_refusal(principal: Principal, reason: str) -> None:
    """Write a refused action (403) of a known caller to the audit log: who, the method and the path.
    Only callers with valid credentials reach this, so strangers cannot fill the log."""
    audit_quietly(
        principal.actor, "refused", f"{request.method} {request.path}"[:512], {"reason": reason}, ok=False
    )


def _refuse_token_on_ui() -> Response:
    """A bearer token on ``/ui``: refused whatever it is, audited when it is a real one (it leaked, or a
    script is pointed at the wrong place)."""
    message = "API tokens work only on /api/v1/; sign in with a user name and password to use the UI"
    secret = _bearer()
    try:
        principal = _token_principal(secret) if secret else None
    except AuthUnavailable:
        principal = None
    if principal is not None:
        audit_refusal(principal, "API token on the UI")
    return deny(403, message)


def check_request() -> Response | None:
    """The ``before_request`` hook of ``api`` and ``ui``: sign-in, role and CSRF; None lets it through."""
    if request.blueprint == "ui" and _bearer() is not None:
        return _refuse_token_on_ui()
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:  # 404/405: nothing to protect; the error handler answers
        return None
    if getattr(view, "_netboot_public", False):
        if request.method not in SAFE_METHODS and not csrf_ok():
            return deny(
                400,
                "the form expired or was not sent by this site (CSRF token missing or wrong); "
                "reload the page and try again",
            )
        return None
    try:
        principal = current_principal()
    except AuthUnavailable:
        return deny(
            503, "the user store cannot be read: nobody can sign in until it is repaired (see the server log)"
        )
    if principal is None:
        if request.blueprint == "api" and request.headers.get("Authorization") is not None:
            return deny(401, "invalid, expired, revoked or malformed bearer token")
        return deny(401, "sign-in required")
    if principal.role is None:
        audit_refusal(principal, "unknown role")
        return deny(403, f"user {principal.user.name} has an unknown role")
    needed = getattr(view, "_netboot_role", None)
    if (
        needed is None
        and request.method not in SAFE_METHODS
        and not getattr(view, "_netboot_any_role", False)
    ):
        needed = "admin"
    if needed is not None and not principal.has(needed):
        acting = f"{principal.user.name} is {principal.role}"
        if principal.token is not None and principal.role != principal.user.role:
            acting = f"token {principal.token.id} of {principal.user.name} acts as {principal.role}"
        audit_refusal(principal, f"needs {needed}")
        return deny(403, f"this needs the {needed} role; {acting}")
    if principal.via == "session" and request.method not in SAFE_METHODS and not csrf_ok():
        return deny(
            400 if request.blueprint == "ui" else 403,
            "the form expired or was not sent by this site (CSRF token missing or wrong); "
            "reload the page and try again",
        )
    return None


# --------------------------------------------------------------------------------------------- CSRF


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok() -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or len(expected) < 32:
        return False
    given = request.headers.get("X-CSRF-Token")
    if given is None:
        given = request.form.get("csrf_token", "")
    return hmac.compare_digest(expected.encode(), given.encode())


# ------------------------------------------------------------------------------------- sign in / out


def limiter() -> LoginLimiter:
    found: LoginLimiter = current_app.extensions["netboot_login_limiter"]
    return found


def limit_keys(name: str) -> list[str]:
    """The limiter keys of a sign-in as ``name`` from this request: its source address, and the browser
    when it signed in as that name before, else the name itself."""
    device, names = device_of(request)
    who = f"device:{device}" if name and name in names else f"user:{name.lower()}"
    return [f"ip:{request.remote_addr}", who]


def sign_in(user: User) -> None:
    """Start a fresh session for ``user`` (new id and CSRF token: no session fixation)."""
    sid = _store().sessions.create(user)
    session.clear()
    session["sid"] = sid
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    g.netboot_principal = Principal(user, "session")


def sign_out() -> None:
    sid = session.get("sid")
    if isinstance(sid, str):
        try:
            _store().sessions.end(sid)
        except Exception as exc:  # the cookie is dropped anyway
            log.error("could not end a session: %s", exc)
    session.clear()


# ----------------------------------------------------------------------------------------- app setup


class NetbootSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with ``Secure`` decided per request (see module docs)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        mode = str(app.config.get("NETBOOT_COOKIE_SECURE", "auto")).lower()
        if mode == "always":
            return True
        if mode == "never":
            return False
        return has_request_context() and request.is_secure


def load_secret_key(data_dir: Path) -> bytes:
    """The session signing key: made once, kept in ``<data-dir>/web-secret-key`` (mode 0600)."""
    path = data_dir / SECRET_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"{path} is too short to be a key; delete it to make a new one")
        return key.encode()
    except (OSError, ValueError) as exc:
        log.warning(
            "cannot keep the web session key in %s (%s): using a temporary key; sessions end when "
            "netboot restarts",
            path,
            exc,
        )
        return secrets.token_bytes(32)


def init_app(app: Flask, data_dir: Path) -> None:
    app.secret_key = load_secret_key(data_dir)
    app.session_interface = NetbootSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.config.setdefault("NETBOOT_COOKIE_SECURE", os.environ.get("NETBOOT_COOKIE_SECURE", "auto"))
    app.extensions["netboot_login_limiter"] = LoginLimiter()
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = _template_user


def _template_user() -> User | None:
    try:
        return current_user()
    except AuthUnavailable:
        return None


def warn_if_no_users(app: Flask) -> None:
    """On start: say how to make the first user, or that the user store cannot be read."""
    from netboot.webapp.services import services_of

    try:
        count = services_of(app).store.users.count()
    except Exception as exc:
        log.error("the web user store cannot be read (%s): nobody can sign in to the web UI or API", exc)
        return
    if count == 0:
        log.warning(
            "no web users yet: create one with `netboot user add NAME` (add --data-dir/--config "
            "as for serve), then sign in at /ui/"
        )
