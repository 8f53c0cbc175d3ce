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

These are a WSGI app of their own, :class:`MachineRoutes`, in front of Flask, which gets every other path
(the UI and the API). A boot storm asks these paths hundreds of times a second, and Flask's per-request
machinery (its contexts, the session it opens, the URL adapter, the hooks of the signed-in blueprints) cost
as much as the answer itself (about 110 us of about 450 in process, ``docs/performance.md``); none of it
serves a machine, which has no session and no login. werkzeug's own request, response and routing stay,
so HTTP semantics (HEAD, 405, Range and conditional requests on files) are the ones Flask gave.

A template that fails gives the machine a bare 500 (nothing partial) and the admin the file and line in the
log; any other failure gives a 500 and a traceback in the log naming the path. Every request becomes an
event for the client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

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
from netboot.webapp.proxy import WsgiApp
from netboot.webapp.services import WebServices

log = logging.getLogger("netboot.http")

Handler = Callable[[Request, Mapping[str, Any]], Response]

#: the routes, in werkzeug's syntax as :mod:`netboot.boot.urls` spells them; GET brings HEAD with it.
#: No slash merging or adding: a redirect would name a host, and "//x" is for the one path sandbox to judge.
_MAP = Map([
    Rule(BOOT_SCRIPT_ROUTE, endpoint="boot_script", methods=["GET"]),
    Rule(ANSWER_ROUTE, endpoint="answer", methods=["GET"]),
    Rule(DONE_ROUTE, endpoint="done", methods=["GET", "POST"]),
    Rule(FILES_ROUTE, endpoint="files", methods=["GET"]),
    Rule(LOADER_ROUTE, endpoint="loader", methods=["GET"]),
    Rule(SHIM_DISK_ROUTE, endpoint="shim_disk", methods=["GET"]),
], merge_slashes=False, strict_slashes=False)
#: the first path segments of the routes above: anything else goes to the web app without matching
_PREFIXES = tuple(sorted({"/" + rule.rule.lstrip("/").split("/", 1)[0].split("<", 1)[0]
                          for rule in _MAP.iter_rules()}))


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _mac_or_none(raw: str) -> MacAddress | None:
    try:
        return MacAddress.parse(raw)
    except InvalidMac:
        return None


def _host(request: Request) -> str | None:
    """The address the client reached us at (for URLs when no server-ip is configured)."""
    return (request.host or "").rsplit(":", 1)[0].strip("[]") or None


class MachineRoutes:
    """The routes of the module docs over the daemon's services; every other path goes to ``web``."""

    def __init__(self, services: WebServices, web: WsgiApp, *, max_body: int) -> None:
        self.services = services
        self.web = web
        self.max_body = max_body
        self._map = _MAP.bind("netboot")
        self._handlers: dict[str, Handler] = {
            "boot_script": self.boot_script,
            "answer": self.answer,
            "done": self.done,
            "files": self.files,
            "loader": self.loader,
            "shim_disk": self.shim_disk,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not path.startswith(_PREFIXES):
            return self.web(environ, start_response)
        try:
            endpoint, args = self._map.match(path, environ.get("REQUEST_METHOD", "GET"))
        except HTTPException as exc:
            if exc.code == 404:  # not one of ours after all (e.g. /filesystem): the web app's to answer
                return self.web(environ, start_response)
            return exc.get_response(environ)(environ, start_response)  # 405 with Allow, a redirect
        request = Request(environ)
        request.max_content_length = self.max_body
        try:
            response = self._handlers[endpoint](request, args)
        except HTTPException as exc:  # a body past the limit (413), a malformed form (400)
            response = exc.get_response(environ)
        except Exception:
            log.exception("%s %s from %s failed", request.method, path[:128], request.remote_addr)
            response = _text("internal error\n", 500)
        return response(environ, start_response)

    # ------------------------------------------------------------------------------------------ events

    def _record(self, request: Request, phase: str, summary: str, mac: MacAddress | None,
                **detail: object) -> None:
        self.services.recorder.record(
            Event(
                phase=phase,
                summary=summary,
                mac=mac,
                client_ip=request.remote_addr,
                time=time.time(),
                detail={"path": request.path, "method": request.method, **detail},
            )
        )

    # ------------------------------------------------------------------------------------------ routes

    def boot_script(self, request: Request, _args: Mapping[str, Any]) -> Response:
        client = request.remote_addr
        raw = request.args.get("mac", "")
        mac = _mac_or_none(raw)
        if mac is None:
            log.warning("boot.ipxe from %s with bad mac %r", client, raw[:64])
            return _text("#!ipxe\necho netboot: boot.ipxe needs ?mac=<MAC address>\nexit 1\n", 400)
        if client:
            self.services.recorder.attribute(client, mac)
        try:
            script, _choice = self.services.core.boot_config(
                "ipxe", mac, host=_host(request), client_ip=client,
                chosen_profile=request.args.get("profile") or None,
            )
        except RenderError as exc:
            log.error("%s (%s): boot.ipxe failed to render: %s", mac, client, exc)
            return _text(
                "#!ipxe\necho netboot: the boot script failed to render (see the server log)\nexit 1\n", 500
            )
        return Response(script, mimetype="text/plain")

    def answer(self, request: Request, args: Mapping[str, Any]) -> Response:
        client, file = request.remote_addr, args["file"]
        parsed = _mac_or_none(args["mac"])
        if parsed is None:
            return _text("not a MAC address\n", 404)
        try:
            rendered = self.services.core.answer(
                parsed, file, request.args.get("token"), host=_host(request), client_ip=client
            )
        except Refused as exc:
            log.warning("%s (%s): answer file %s refused: %s", parsed, client, file, exc)
            self._record(request, "http", f"answer file {file} refused", parsed, status=403)
            return _text("forbidden\n", 403)
        except (NotFound, UnknownAnswerFile) as exc:
            log.warning("%s (%s): answer file %s: %s", parsed, client, file, exc)
            return _text("not found\n", 404)
        except RenderError as exc:
            log.error("%s (%s): answer file %s failed to render: %s", parsed, client, file, exc)
            self._record(request, "http", f"answer file {file} failed to render", parsed, status=500,
                         error=str(exc))
            return _text("internal error: the answer file failed to render\n", 500)
        # content_type, not mimetype: the kind's type already names its charset (mimetype= would add a second)
        return Response(rendered.content, content_type=rendered.content_type)

    def done(self, request: Request, args: Mapping[str, Any]) -> Response:
        if request.method == "HEAD":  # HEAD comes with GET; a probe must not end an install
            return _text("", 405)
        parsed = _mac_or_none(args["mac"])
        if parsed is None:
            return _text("not a MAC address\n", 404)
        client = request.remote_addr
        token = request.args.get("token") or request.form.get("token")
        try:
            self.services.core.complete(parsed, token, client_ip=client)
        except Refused as exc:
            log.warning("%s (%s): completion callback refused: %s", parsed, client, exc)
            self._record(request, "http", "completion callback refused", parsed, status=403)
            return _text("forbidden\n", 403)
        except NotFound:
            return _text("not found\n", 404)
        return _text("ok: next boot is local\n")

    def files(self, request: Request, args: Mapping[str, Any]) -> Response:
        profile, path = args["profile"], args["path"]
        found = self.services.core.profiles.get(profile)
        if found is None or found.data_dir is None:
            return _text("not found\n", 404)
        # One open, and that file is sent: checking a name and then letting send_file open it again lets a
        # symlink swapped in between lead out of the data directory. So werkzeug gets the checked file object
        # and the size, time and ETag of its descriptor, and the Range/conditional handling is asked for here.
        try:
            opened, info = open_with_stat(found.data_dir, path)
        except PathRefused as exc:
            log.warning("%s: /files/%s/%s refused: %s", request.remote_addr, profile, path[:128], exc.reason)
            return _text("not found\n", 404)
        try:
            if request.method == "GET" and not request.headers.get("Range"):
                self._record(request, "http", f"file {profile}/{path}", None, file=path, bytes=info.st_size)
            resp = send_file(
                opened,
                request.environ,
                mimetype="application/octet-stream",
                conditional=False,
                etag=f"{info.st_dev:x}-{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}",
                last_modified=info.st_mtime,
                max_age=0,
            )
            resp.content_length = info.st_size
            # in place: 206 with the range asked, 416 for one past the end
            resp.make_conditional(request.environ, accept_ranges=True, complete_length=info.st_size)
            return resp
        except BaseException:
            opened.close()
            raise

    def loader(self, request: Request, args: Mapping[str, Any]) -> Response:
        name = args["name"]
        path = self.services.loaders.path(name)
        if path is None:
            return _text("not found\n", 404)
        if request.method == "GET":
            self._record(request, "http", f"loader {name}", None, file=name)
        return send_file(path, request.environ, mimetype="application/efi", conditional=True, max_age=0)

    def shim_disk(self, request: Request, args: Mapping[str, Any]) -> Response:
        """The disk image; its GRUB reads the rest by TFTP from the address the client reached us at (or the
        configured server-ip), so the image works wherever the URL did."""
        name, client = args["name"], request.remote_addr
        mac = None if name == SHIM_DISK_ANY else _mac_or_none(name)
        if mac is None and name != SHIM_DISK_ANY:
            return _text("not found\n", 404)
        services = self.services
        try:
            image = services.shim_disk.image(str(services.core.site.server_ip or _host(request) or ""), mac)
        except ValueError as exc:  # no server-ip, and a Host header that is no address or name
            log.warning("%s (%s): shim-grub disk image refused: %s", mac or SHIM_DISK_ANY, client, exc)
            return _text("the Host header names no address\n", 400)
        except ShimDiskError as exc:
            log.error("%s (%s): shim-grub disk image: %s", mac or SHIM_DISK_ANY, client, exc)
            return _text("the disk image cannot be built (see the server log)\n", 503)
        if request.method == "GET":
            if mac is not None and client:
                services.recorder.attribute(client, mac)
            self._record(request, "http", "shim-grub disk image (UEFI HTTP Boot)", mac, bytes=len(image))
        return Response(image, content_type=CONTENT_TYPE)
