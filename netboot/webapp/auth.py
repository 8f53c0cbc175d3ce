"""Who is asking, and may they: sessions, bearer tokens, roles, CSRF and the login rate limit.

Rules (each one tested in ``tests/web``):

* **Deny by default.** The ``api`` and ``ui`` blueprints authenticate every request in a
  ``before_request`` hook; only views marked :func:`public` (sign-in page, OpenAPI document) skip it.
  Viewers may only read (GET/HEAD); every other method needs the ``admin`` role unless the view is marked
  :func:`any_role` (sign out, a user's own tokens). :func:`role_required` raises the bar for a view.
* **Fail closed.** Any error while reading users, sessions or tokens answers 503 and lets nobody in; a
  user with an unknown role gets nothing.
* **Bearer tokens** (``Authorization: Bearer nbt_...``) are looked up by SHA-256 digest; a present but
  wrong, revoked, empty or non-Bearer header is 401, never a fallback to the cookie.
* **Sessions**: the signed cookie carries a random session id whose hash is stored server-side (sign-out
  and password changes end it) and the CSRF token. Cookies are always HttpOnly and SameSite=Lax;
  ``Secure`` follows ``NETBOOT_COOKIE_SECURE``: ``auto`` (default: when the request came over HTTPS, e.g.
  through a TLS proxy that waitress trusts), ``always`` or ``never``.
* **CSRF**: every unsafe request made with the session cookie must carry the session's token, in the
  ``csrf_token`` form field (UI) or the ``X-CSRF-Token`` header (API calls from the page's JavaScript).
* **Login rate limit**: failures per client address and per user name in a sliding window; over the
  limit, sign-in answers 429 with ``Retry-After`` whatever the password.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
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

from netboot.store.accounts import ApiToken, User

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

    def has(self, role: str) -> bool:
        mine = ROLE_RANK.get(self.user.role)
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


def _resolve() -> Principal | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        try:
            found = _store().tokens.authenticate(secret.strip())
        except Exception as exc:
            log.error("cannot read API tokens: %s", exc)
            raise AuthUnavailable(str(exc)) from None
        if found is None:
            return None
        token, user = found
        return Principal(user, "token", token)
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
    """A local path to go to after sign-in (never another site)."""
    default = url_for("ui.systems")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
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


def check_request() -> Response | None:
    """The ``before_request`` hook of ``api`` and ``ui``: sign-in, role and CSRF; None lets it through."""
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
        if request.headers.get("Authorization") is not None:
            return deny(401, "invalid, revoked or malformed bearer token")
        return deny(401, "sign-in required")
    if principal.user.role not in ROLE_RANK:
        return deny(403, f"user {principal.user.name} has an unknown role")
    needed = getattr(view, "_netboot_role", None)
    if (
        needed is None
        and request.method not in SAFE_METHODS
        and not getattr(view, "_netboot_any_role", False)
    ):
        needed = "admin"
    if needed is not None and not principal.has(needed):
        return deny(403, f"this needs the {needed} role; {principal.user.name} is {principal.user.role}")
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


class RateLimiter:
    """Failed sign-ins per key (client address, user name) in a sliding window. Thread-safe, bounded."""

    def __init__(self, limit: int = 5, window: float = 300.0, max_keys: int = 10000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            self._fails.pop(key, None)
        return q

    def retry_after(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until a sign-in may be tried again under every key (0 = now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = [q[0] + self.window - now for k in keys if len(q := self._recent(k, now)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._fails) >= self.max_keys:
                for key in list(self._fails)[: self.max_keys // 10]:
                    del self._fails[key]
            for key in keys:
                self._fails.setdefault(key, deque(maxlen=self.limit * 4)).append(now)

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._fails.pop(key, None)


def limiter() -> RateLimiter:
    found: RateLimiter = current_app.extensions["netboot_login_limiter"]
    return found


def limit_keys(name: str) -> list[str]:
    return [f"ip:{request.remote_addr}", f"user:{name.lower()}"]


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
    app.extensions["netboot_login_limiter"] = RateLimiter()
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
