"""A few QMP calls to a lab VM (its monitor socket): a screenshot of its screen, as PNG.

The Debian installer draws on the VM's screen, not its serial port, unless its kernel line says
``console=ttyS0``; ``netboot lab screenshot VM`` shows what it is asking.
"""

from __future__ import annotations

import json
import socket
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any


class QmpError(RuntimeError):
    pass


def execute(
    sock_path: Path, command: str, arguments: dict[str, Any] | None = None, *, timeout: float = 10.0
) -> Any:
    """Run one QMP command and return its ``return`` value (events are skipped)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(sock_path))
        except OSError as exc:
            raise QmpError(f"cannot reach the VM's monitor {sock_path}: {exc}") from None
        reader = sock.makefile("rb")

        def reply() -> dict[str, Any]:
            while time.monotonic() < deadline:
                line = reader.readline()
                if not line:
                    raise QmpError("the VM's monitor closed the connection")
                msg: dict[str, Any] = json.loads(line)
                if "event" in msg or "QMP" in msg:
                    continue
                if "error" in msg:
                    raise QmpError(str(msg["error"].get("desc", msg["error"])))
                return msg
            raise QmpError("no answer from the VM's monitor")

        reader.readline()  # greeting
        sock.sendall(b'{"execute": "qmp_capabilities"}\n')
        reply()
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        sock.sendall(json.dumps(request).encode() + b"\n")
        return reply().get("return")


def screenshot(sock_path: Path, out: Path) -> Path:
    """Save the VM's screen to ``out`` as PNG."""
    with tempfile.TemporaryDirectory(prefix="netboot-lab-shot-") as tmp:
        ppm = Path(tmp) / "screen.ppm"
        execute(sock_path, "screendump", {"filename": str(ppm)})
        out.write_bytes(ppm_to_png(ppm.read_bytes()))
    return out


def ppm_to_png(data: bytes) -> bytes:
    """Binary PPM (P6, 8-bit, as QEMU's screendump writes) -> PNG, with the standard library only."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise QmpError("unexpected screendump format")
    width, height = int(fields[1]), int(fields[2])
    pixels = data[pos + 1 : pos + 1 + width * height * 3]
    stride = width * 3
    raw = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
