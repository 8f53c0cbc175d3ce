"""Machine-facing routes: no login, and a machine only ever gets its own data.

* ``/boot.ipxe?mac=`` — where every iPXE lands (the DHCP decision points it here): install, local boot or
  a menu, rendered for that MAC.
* ``/answer/<mac>/<file>?token=`` — the machine's answer file; the per-system token from its kernel line
  must match, and it dies when the install completes.
* ``/done/<mac>?token=`` — the completion callback (GET or POST): the system leaves install state.
* ``/files/<profile>/<path>`` — kernels and initrds from a profile's data directory (Range, HEAD).
* ``/loaders/<name>`` — iPXE binaries for UEFI HTTP Boot.
* ``/shim-grub/<mac>.img`` — the shim-grub chain's disk image for UEFI HTTP Boot (:mod:`netboot.shimdisk`):
  shim, signed GRUB and a config that names this server for TFTP; nothing in it is secret.

A template that fails gives the machine a bare 500 (nothing partial) and the admin the file and line in the
log. Every request becomes an event for the client.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request, send_file

from netboot.boot.core import NotFound, Refused
from netboot.boot.urls import (
    ANSWER_ROUTE,
    BOOT_SCRIPT_ROUTE,
    DONE_ROUTE,
    FILES_ROUTE,
    LOADER_ROUTE,
    SHIM_DISK_ANY,
    SHIM_DISK_ROUTE,
)
from netboot.events import Event
from netboot.fs import PathRefused, open_with_stat
from netboot.mac import InvalidMac, MacAddress
from netboot.render import RenderError, UnknownAnswerFile
from netboot.shimdisk import CONTENT_TYPE, ShimDiskError
from netboot.webapp.services import services_of

log = logging.getLogger("netboot.http")
boot = Blueprint("boot", __name__)


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _client() -> str | None:
    return request.remote_addr


def _host() -> str | None:
    """The address the client reached us at (for URLs when no server-ip is configured)."""
    return (request.host or "").rsplit(":", 1)[0].strip("[]") or None


def _record(phase: str, summary: str, mac: MacAddress | None, **detail: object) -> None:
    services_of(current_app).recorder.record(
        Event(
            phase=phase,
            summary=summary,
            mac=mac,
            client_ip=_client(),
            time=time.time(),
            detail={"path": request.path, "method": request.method, **detail},
        )
    )


def _mac_or_none(raw: str) -> MacAddress | None:
    try:
        return MacAddress.parse(raw)
    except InvalidMac:
        return None


@boot.get(BOOT_SCRIPT_ROUTE)
def boot_ipxe() -> Response:
    raw = request.args.get("mac", "")
    mac = _mac_or_none(raw)
    if mac is None:
        log.warning("boot.ipxe from %s with bad mac %r", _client(), raw[:64])
        return _text("#!ipxe\necho netboot: boot.ipxe needs ?mac=<MAC address>\nexit 1\n", 400)
    services = services_of(current_app)
    if _client():
        services.recorder.attribute(_client() or "", mac)
    try:
        script, _choice = services.core.boot_config(
            "ipxe", mac, host=_host(), client_ip=_client(), chosen_profile=request.args.get("profile") or None
        )
    except RenderError as exc:
        log.error("%s (%s): boot.ipxe failed to render: %s", mac, _client(), exc)
        return _text(
            "#!ipxe\necho netboot: the boot script failed to render (see the server log)\nexit 1\n", 500
        )
    return Response(script, mimetype="text/plain")


@boot.get(ANSWER_ROUTE)
def answer(mac: str, file: str) -> Response:
    parsed = _mac_or_none(mac)
    if parsed is None:
        return _text("not a MAC address\n", 404)
    try:
        rendered = services_of(current_app).core.answer(
            parsed, file, request.args.get("token"), host=_host(), client_ip=_client()
        )
    except Refused as exc:
        log.warning("%s (%s): answer file %s refused: %s", parsed, _client(), file, exc)
        _record("http", f"answer file {file} refused", parsed, status=403)
        return _text("forbidden\n", 403)
    except (NotFound, UnknownAnswerFile) as exc:
        log.warning("%s (%s): answer file %s: %s", parsed, _client(), file, exc)
        return _text("not found\n", 404)
    except RenderError as exc:
        log.error("%s (%s): answer file %s failed to render: %s", parsed, _client(), file, exc)
        _record("http", f"answer file {file} failed to render", parsed, status=500, error=str(exc))
        return _text("internal error: the answer file failed to render\n", 500)
    # content_type, not mimetype: the kind's type already names its charset (mimetype= would add a second)
    return Response(rendered.content, content_type=rendered.content_type)


@boot.route(DONE_ROUTE, methods=["GET", "POST"])
def done(mac: str) -> Response:
    if request.method == "HEAD":  # Flask adds HEAD to GET routes; a probe must not end an install
        return _text("", 405)
    parsed = _mac_or_none(mac)
    if parsed is None:
        return _text("not a MAC address\n", 404)
    token = request.args.get("token") or request.form.get("token")
    try:
        services_of(current_app).core.complete(parsed, token, client_ip=_client())
    except Refused as exc:
        log.warning("%s (%s): completion callback refused: %s", parsed, _client(), exc)
        _record("http", "completion callback refused", parsed, status=403)
        return _text("forbidden\n", 403)
    except NotFound:
        return _text("not found\n", 404)
    return _text("ok: next boot is local\n")


# merge_slashes=False: "//etc/passwd" reaches the sandbox (which refuses or normalises it) instead of being
# answered with a redirect; the one path sandbox decides what a name means.
@boot.route(FILES_ROUTE, methods=["GET", "HEAD"], merge_slashes=False)
def files(profile: str, path: str) -> Response:
    found = services_of(current_app).core.profiles.get(profile)
    if found is None or found.data_dir is None:
        return _text("not found\n", 404)
    # One open, and that file is sent: checking a name and then letting send_file open it again lets a
    # symlink swapped in between lead out of the data directory. So werkzeug gets the checked file object
    # and the size, time and ETag of its descriptor, and the Range/conditional handling is asked for here.
    try:
        opened, info = open_with_stat(found.data_dir, path)
    except PathRefused as exc:
        log.warning("%s: /files/%s/%s refused: %s", _client(), profile, path[:128], exc.reason)
        return _text("not found\n", 404)
    try:
        if request.method == "GET" and not request.headers.get("Range"):
            _record("http", f"file {profile}/{path}", None, file=path, bytes=info.st_size)
        resp = send_file(
            opened,
            mimetype="application/octet-stream",
            conditional=False,
            etag=f"{info.st_dev:x}-{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}",
            last_modified=info.st_mtime,
            max_age=0,
        )
        resp.content_length = info.st_size
        resp.make_conditional(request.environ, accept_ranges=True, complete_length=info.st_size)  # in place
        return resp
    except BaseException:
        opened.close()
        raise


@boot.route(LOADER_ROUTE, methods=["GET", "HEAD"])
def loader(name: str) -> Response:
    path = services_of(current_app).loaders.path(name)
    if path is None:
        return _text("not found\n", 404)
    if request.method == "GET":
        _record("http", f"loader {name}", None, file=name)
    return send_file(path, mimetype="application/efi", conditional=True, max_age=0)


@boot.route(SHIM_DISK_ROUTE, methods=["GET", "HEAD"])
def shim_disk(name: str) -> Response:
    """The disk image; its GRUB reads the rest by TFTP from the address the client reached us at (or the
    configured server-ip), so the image works wherever the URL did."""
    mac = None if name == SHIM_DISK_ANY else _mac_or_none(name)
    if mac is None and name != SHIM_DISK_ANY:
        return _text("not found\n", 404)
    services = services_of(current_app)
    try:
        image = services.shim_disk.image(str(services.core.site.server_ip or _host() or ""), mac)
    except ValueError as exc:  # no server-ip, and a Host header that is no address or name
        log.warning("%s (%s): shim-grub disk image refused: %s", mac or SHIM_DISK_ANY, _client(), exc)
        return _text("the Host header names no address\n", 400)
    except ShimDiskError as exc:
        log.error("%s (%s): shim-grub disk image: %s", mac or SHIM_DISK_ANY, _client(), exc)
        return _text("the disk image cannot be built (see the server log)\n", 503)
    if request.method == "GET":
        if mac is not None and _client():
            services.recorder.attribute(_client() or "", mac)
        _record("http", "shim-grub disk image (UEFI HTTP Boot)", mac, bytes=len(image))
    return Response(image, content_type=CONTENT_TYPE)
