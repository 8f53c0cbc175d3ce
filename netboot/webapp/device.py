"""The device cookie: which user names signed in from this browser before, signed by the server.

The sign-in limiter (:mod:`netboot.webapp.login_limit`) counts a browser that signed in as a name before
under its own key (``device:<id>``) instead of the name's, so a guesser keeping the name's delay running
from many addresses cannot keep the name's owner out. The cookie is signed with the app's session key
(itsdangerous, its own salt), HttpOnly, SameSite=Lax, ``Secure`` as the session cookie, scoped to
``/ui/``; it grants nothing by itself: the password is still checked.
"""

from __future__ import annotations

import secrets

from flask import Request, current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers.response import Response as BaseResponse

#: the cookie's name
DEVICE_COOKIE = "netboot_device"
#: how long a browser is remembered after its last sign-in, in seconds
DEVICE_LIFETIME = 180 * 86400
#: names a device cookie remembers at most (the most recent first)
DEVICE_NAMES = 8


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or b"", salt="netboot.device")


def device_of(request: Request) -> tuple[str, list[str]]:
    """This browser's device id and the names that signed in from it (a fresh id when it has none or
    its cookie is not one this server signed)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if raw:
        try:
            found = _device_serializer().loads(raw, max_age=DEVICE_LIFETIME)
        except BadSignature:
            found = None
        if isinstance(found, dict):
            device, names = found.get("d"), found.get("n")
            if isinstance(device, str) and len(device) >= 16 and isinstance(names, list):
                return device, [n for n in names if isinstance(n, str)][:DEVICE_NAMES]
    return secrets.token_urlsafe(16), []


def remember_device(request: Request, resp: BaseResponse, name: str) -> None:
    """After a successful sign-in: the browser's device cookie names ``name`` (the limiter then counts
    this browser's sign-ins as ``name`` under its device key: :func:`netboot.webapp.auth.limit_keys`)."""
    device, names = device_of(request)
    names = [name, *[n for n in names if n != name]][:DEVICE_NAMES]
    resp.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps({"d": device, "n": names}),
        max_age=DEVICE_LIFETIME,
        path="/ui/",
        secure=current_app.session_interface.get_cookie_secure(current_app),
        httponly=True,
        samesite="Lax",
    )
