"""Machine-facing routes: no login, and a machine only ever gets its own data.

``/boot.ipxe?mac=`` is where every iPXE lands (the DHCP decision points it here); ``/loaders/<name>``
serves iPXE binaries to UEFI HTTP Boot clients. Each request becomes an event for the client.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, abort, current_app, request, send_file

from netboot.events import Event
from netboot.mac import InvalidMac, MacAddress
from netboot.webapp import runtime_of

log = logging.getLogger("netboot.http")
boot = Blueprint("boot", __name__)

LOCAL_BOOT_IPXE = """#!ipxe
echo netboot: {mac} boots from its local disk
exit
"""


def _text(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def _record(phase: str, summary: str, mac: MacAddress | None, **detail: object) -> None:
    runtime_of(current_app).recorder.record(Event(
        phase=phase, summary=summary, mac=mac, client_ip=request.remote_addr, time=time.time(),
        detail={"path": request.full_path.rstrip("?"), "method": request.method, **detail}))


@boot.get("/boot.ipxe")
def boot_ipxe() -> Response:
    raw = request.args.get("mac", "")
    try:
        mac = MacAddress.parse(raw)
    except InvalidMac:
        log.warning("boot.ipxe from %s with bad mac %r", request.remote_addr, raw)
        return _text("#!ipxe\necho netboot: boot.ipxe needs ?mac=<MAC address>\nexit 1\n", 400)
    runtime = runtime_of(current_app)
    runtime.recorder.learn(request.remote_addr or "", mac)
    script = LOCAL_BOOT_IPXE.format(mac=mac)
    _record("boot-script", "boot.ipxe: local boot", mac, decision="local")
    log.info("%s (%s): boot.ipxe -> local boot", mac, request.remote_addr)
    return Response(script, mimetype="text/plain")


@boot.route("/loaders/<name>", methods=["GET", "HEAD"])
def loader(name: str) -> Response:
    runtime = runtime_of(current_app)
    path = runtime.loaders.path(name)
    if path is None:
        abort(404)
    _record("http", f"loader {name}", None, file=name)
    return send_file(path, mimetype="application/efi", conditional=True, max_age=0)
