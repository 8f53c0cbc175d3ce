#!/usr/bin/env python3
"""Extract DHCP test fixtures from the lab captures.

Real firmware is the best specification we have, so the codec tests decode what real clients sent.
This script cuts the UDP payloads of a chosen set of DHCP packets (ports 67, 68 and 4011) out of the
captures in ``/work/shared/captures`` and writes them to ``tests/fixtures/dhcp`` as
``<capture>-<index>-<msgtype>.bin`` (``index`` counts every frame in the capture, from 0), small enough
to commit. Scapy is used here, and in tests, but never inside ``netboot/``.

    tools/extract_fixtures.py            # write the selection below
    tools/extract_fixtures.py --list     # show every DHCP packet in every capture, to choose new ones
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scapy.all import DHCP, UDP, rdpcap  # type: ignore[attr-defined]

DHCP_PORTS = {67, 68, 4011}

#: (capture stem, frame index, why it is worth a fixture). One per distinct client kind and message.
SELECTION: list[tuple[str, int, str]] = [
    ("bios-ipxe", 0, "SeaBIOS + iPXE 2019 ROM: 93=0, raw user class iPXE, opt 175, nil GUID"),
    ("bios-ipxe", 2, "the same ROM's REQUEST: adds server id and requested IP"),
    ("bios-ipxe", 1, "dnsmasq OFFER to iPXE: http:// boot file with a NUL, 175 = 176:1 + END"),
    ("uefi-pxe", 0, "OVMF PxeBcDxe DISCOVER: 93=7, broadcast flag, no client id"),
    ("uefi-pxe", 2, "OVMF REQUEST: max message size 65280"),
    ("uefi-pxe", 6, "ipxe.efi chained from OVMF: 93=7, UNDI 3.10, 175 on virtio 1af4:1000"),
    ("uefi-http", 0, "OVMF HttpBootDxe DISCOVER: 93=16, HTTPClient vendor class"),
    ("uefi-http", 1, "dnsmasq broadcast OFFER echoing HTTPClient, URL boot file"),
    ("uefi-ipxerom", 0, "iPXE EFI ROM on the NIC: 93=7, user class iPXE"),
    ("bios-debian", 4, "Debian installer DISCOVER: vendor class d-i, no 93, PAD after END"),
    ("bios-debian", 6, "Debian installer REQUEST"),
    ("client-dhclient", 0, "ISC dhclient 4.4.3 DISCOVER with 93 and a PXE vendor class, no client id"),
    ("client-udhcpc", 0, "busybox udhcpc DISCOVER with 93 and a PXE vendor class"),
]


def dhcp_payloads(capture: Path) -> list[tuple[int, bytes, str]]:
    """(frame index, UDP payload, message type name) for every DHCP frame in ``capture``."""
    found = []
    for index, frame in enumerate(rdpcap(str(capture))):
        if UDP not in frame or not DHCP_PORTS & {frame[UDP].sport, frame[UDP].dport}:
            continue
        found.append((index, bytes(frame[UDP].payload), _message_type(frame)))
    return found


def _message_type(frame: object) -> str:
    """Scapy's name for option 53 (an independent reading, not our own codec's)."""
    if DHCP not in frame:  # type: ignore[operator]
        return "bootp"
    for option in frame[DHCP].options:  # type: ignore[index]
        if isinstance(option, tuple) and option[0] == "message-type":
            value = option[1]
            names = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
                     7: "release", 8: "inform"}  # fmt: skip
            return names.get(value, str(value)) if isinstance(value, int) else str(value)
    return "bootp"


def list_packets(captures: Path) -> None:
    for capture in sorted(captures.glob("*.pcap")):
        for index, payload, kind in dhcp_payloads(capture):
            print(f"{capture.stem:18} {index:3} {kind:9} {len(payload):4} bytes")


def extract(captures: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    cache: dict[str, dict[int, tuple[bytes, str]]] = {}
    for stem, index, _why in SELECTION:
        if stem not in cache:
            packets = dhcp_payloads(captures / f"{stem}.pcap")
            cache[stem] = {i: (payload, kind) for i, payload, kind in packets}
        if index not in cache[stem]:
            raise SystemExit(f"{stem}.pcap: frame {index} is not a DHCP packet (try --list)")
        payload, kind = cache[stem][index]
        path = out / f"{stem}-{index}-{kind}.bin"
        path.write_bytes(payload)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--captures", type=Path, default=Path("/work/shared/captures"))
    parser.add_argument("--out", type=Path, default=root / "tests" / "fixtures" / "dhcp")
    parser.add_argument("--list", action="store_true", help="list DHCP packets instead of extracting")
    args = parser.parse_args(argv)
    if args.list:
        list_packets(args.captures)
        return 0
    for path in extract(args.captures, args.out):
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        print(f"{shown} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
