#!/usr/bin/env python3
"""Watch a Secure Boot OVMF VM netboot Debian's shim -> signed GRUB -> kernel, and record every request.

Research tool for issue 16 (docs/secure-boot-research.md), not a test: it prints what happened, it does
not judge it. Each scenario builds a private lab (tests/netlab.py: a bridge namespace plus a server
namespace, every command checked with ``ip netns identify``), runs dnsmasq (DHCP + TFTP, full logging),
``python -m http.server`` and tcpdump in the server namespace and one QEMU VM on a tap of the bridge, then
removes the namespaces. Nothing runs in this machine's own network namespace. One VM at a time.

Run as root from the repository::

    .venv/bin/python tools/secureboot_probe.py pxe-names pxe-boot ...   # or: all
    .venv/bin/python tools/secureboot_probe.py --list

Per scenario, under ``--out`` (default artifacts/secureboot-probe/<scenario>/): ``dnsmasq.log``,
``http.log``, ``serial.log`` (raw) and ``serial.txt`` (escape sequences removed), ``capture.pcap``,
``grub.cfg`` when one was served, and ``timeline.txt``: every new log line with seconds since QEMU started.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from netlab import Lab, Netns, wait_for_log  # noqa: E402

from netboot.loaders import find_shim_files  # noqa: E402
from netboot.mac import MacAddress  # noqa: E402
from netboot.qemu import VmSpec, command, missing_firmware  # noqa: E402
from netboot.shimdisk import ShimDisk  # noqa: E402

SHIM = Path("/usr/lib/shim/shimx64.efi.signed")
MOKMANAGER = Path("/usr/lib/shim/mmx64.efi.signed")
FALLBACK = Path("/usr/lib/shim/fbx64.efi.signed")
GRUB = Path("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
IPXE = Path("/usr/lib/ipxe/ipxe.efi")
DI = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")
SNAKEOIL_KEY = Path("/usr/share/ovmf/PkKek-1-snakeoil.key")
SNAKEOIL_CERT = Path("/usr/share/ovmf/PkKek-1-snakeoil.pem")
MAC = "52:54:00:5b:00:01"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


@dataclass
class Scenario:
    """One boot: the firmware kind, what the TFTP/HTTP root holds, and when to stop watching."""

    name: str
    about: str
    firmware: str = "uefi-sb"
    #: served name -> source file; "grub.cfg" entries are written from ``grub_cfg``
    files: dict[str, Path] = field(default_factory=dict)
    #: served path (relative to the root) -> grub.cfg text, with {server} and {mac} filled in
    grub_cfg: dict[str, str] = field(default_factory=dict)
    boot_file: str = "shimx64.efi"
    #: stop when this regex matches the cleaned serial text (then wait ``linger`` s more)
    done: str = r"grub> |Secure boot enabled|Access Denied|Boot Manager"
    linger: float = 5.0
    #: lines typed on the serial console once GRUB shows its prompt (end with ``echo probe: "e"nd``)
    keys: tuple[str, ...] = ()
    #: the raw serial output that makes the probe type ``keys``
    key_trigger: bytes = b"grub> "
    #: stop when no log grew for this long after the first TFTP/HTTP request
    quiet: float = 60.0
    timeout: float = 420.0


def _loaders(mm: bool = True, fb: bool = True, grub: bool = True) -> dict[str, Path]:
    files = {"shimx64.efi": SHIM}
    if grub:
        files["grubx64.efi"] = GRUB
    if mm:
        files["mmx64.efi"] = MOKMANAGER
    if fb:
        files["fbx64.efi"] = FALLBACK
    return files


#: what Debian's signed GRUB reads (its only request): sends each machine on to its own file
STUB_CFG = """\
echo "probe: stub $prefix/grub.cfg, sourcing $prefix/grub.cfg-01-$net_default_mac"
source "$prefix/grub.cfg-01-$net_default_mac"
"""

#: the per-MAC file: the signed installer kernel and its initrd, serial console, no "quiet" (the kernel
#: prints "Secure boot enabled" at KERN_INFO)
BOOT_CFG = """\
set timeout=0
echo "probe: per-MAC grub.cfg: prefix=$prefix root=$root server=$net_default_server"
{insmod}linux ({proto},{server})/{kernel} console=ttyS0,115200 priority=critical
initrd ({proto},{server})/initrd.gz
echo "probe: kernel and initrd loaded, booting"
boot
"""


def boot_cfg(proto: str, kernel: str = "linux") -> dict[str, str]:
    """The stub grub/grub.cfg and the per-MAC file it sources."""
    insmod = "insmod http\n" if proto == "http" else ""
    per_mac = BOOT_CFG.replace("{proto}", proto).replace("{kernel}", kernel).replace("{insmod}", insmod)
    return {"grub/grub.cfg": STUB_CFG, f"grub/grub.cfg-01-{MAC}": per_mac}


VARS_CFG = """\
echo "probe: prefix=$prefix root=$root cmdpath=$cmdpath"
echo "probe: mac=$net_default_mac ip=$net_default_ip server=$net_default_server"
net_ls_cards
net_ls_addr
set
insmod http
echo "probe: insmod http -> $?"
echo "probe: cat (http,{server})/hello.txt"
cat (http,{server})/hello.txt
echo "probe: cat (http,{server}:8080)/hello.txt"
cat (http,{server}:8080)/hello.txt
echo "probe: cat (tftp,{server})/hello.txt"
cat (tftp,{server})/hello.txt
echo "probe: source $prefix/grub.cfg-01-$net_default_mac"
source $prefix/grub.cfg-01-$net_default_mac
echo "probe: source (http,{server})/grub.cfg?mac=$net_default_mac"
source "(http,{server})/grub.cfg?mac=$net_default_mac"
echo "probe: end"
"""


def scenarios() -> dict[str, Scenario]:
    di = {"linux": DI / "linux", "initrd.gz": DI / "initrd.gz"}
    made = [
        Scenario(
            "pxe-names",
            "PXE, all loaders, no grub.cfg: which names GRUB asks; then `normal` typed at grub>",
            files=_loaders(),
            keys=("normal", 'echo probe: "e"nd'),
            done=r"^probe: end",
        ),
        Scenario(
            "pxe-vars",
            "PXE, a grub/grub.cfg that prints GRUB's variables and tries http, ports and per-MAC names",
            files=_loaders(),
            grub_cfg={"grub/grub.cfg": VARS_CFG, "hello.txt": "probe: hello over the network\n"},
            done=r"probe: end",
            linger=3.0,
        ),
        Scenario(
            "pxe-no-grub",
            "PXE, only shimx64.efi: what shim asks for when grubx64.efi is missing",
            files=_loaders(mm=False, fb=False, grub=False),
            done=r"grub> |Secure boot enabled|Access Denied|Boot Manager|Failed to|Shim UEFI key",
        ),
        Scenario(
            "pxe-no-mm",
            "PXE, shim + grub but no mmx64.efi/fbx64.efi, no grub.cfg",
            files=_loaders(mm=False, fb=False),
        ),
        Scenario(
            "pxe-boot-http",
            "PXE, per-MAC grub.cfg; kernel and initrd over GRUB's http",
            files={**_loaders(), **di},
            grub_cfg=boot_cfg("http"),
            done=r"Secure boot enabled",
            linger=15.0,
        ),
        Scenario(
            "pxe-boot-tftp",
            "PXE, per-MAC grub.cfg; kernel and initrd over TFTP",
            files={**_loaders(), **di},
            grub_cfg=boot_cfg("tftp"),
            done=r"Secure boot enabled",
            linger=15.0,
        ),
        Scenario(
            "pxe-unsigned-kernel",
            "PXE, per-MAC grub.cfg loading a kernel with its signature removed (sbattach --remove)",
            files={**_loaders(), **di},
            grub_cfg=boot_cfg("tftp", "linux-unsigned"),
            done=r"Secure boot enabled|error: |grub> ",
            linger=20.0,
        ),
        Scenario(
            "pxe-untrusted-grub",
            "PXE, grubx64.efi not signed by a key shim trusts (Debian's unsigned ipxe.efi under that name)",
            files={**_loaders(grub=False), "grubx64.efi": IPXE},
            done=r"Shim UEFI key management|Press any key|MokManager|mmx64|Failed|failed to start",
            linger=30.0,
            keys=("",),  # Enter on shim's "Verification failed" box: shim goes on to MokManager
            key_trigger=b"Security Violation",
            quiet=40.0,
        ),
        Scenario(
            "pxe-untrusted-grub-no-mm",
            "PXE, the same without mmx64.efi and fbx64.efi",
            files={"shimx64.efi": SHIM, "grubx64.efi": IPXE},
            done=r"Shim UEFI key management|Press any key|MokManager|mmx64|Failed|failed to start",
            linger=30.0,
            keys=("",),  # Enter on shim's "Verification failed" box: shim goes on to MokManager
            key_trigger=b"Security Violation",
            quiet=40.0,
        ),
        Scenario(
            "snakeoil-ipxe",
            "PXE, custom-key firmware, ipxe.efi signed with that key (sbsign, ovmf's snakeoil key)",
            firmware="uefi-sb-snakeoil",
            files={},
            boot_file="ipxe.efi",
            done=r"Access Denied|iPXE",
            linger=10.0,
        ),
        Scenario(
            "pxe-ipxe",
            "PXE, boot file Debian's unsigned ipxe.efi: refused by the firmware",
            files={"ipxe.efi": IPXE},
            boot_file="ipxe.efi",
            done=r"Access Denied|iPXE",
            linger=20.0,
        ),
        Scenario(
            "snakeoil-shim",
            "PXE, custom-key firmware (snakeoil db only): Microsoft-signed shim refused",
            firmware="uefi-sb-snakeoil",
            files=_loaders(),
            done=r"Access Denied|grub> ",
            linger=20.0,
        ),
        Scenario(
            "http-names",
            "UEFI HTTP Boot, URL to shim, no grub.cfg; then at grub> prints variables, tries net_bootp",
            firmware="uefi-sb-http",
            files=_loaders(),
            grub_cfg={"grub/grub.cfg": 'echo "probe: grub/grub.cfg read over TFTP"\n'},
            keys=(
                "set",
                "net_ls_cards",
                "net_ls_addr",
                "ls",
                "net_bootp",
                "net_ls_addr",
                "set",
                "source (tftp,{server})/grub/grub.cfg",
                'echo probe: "e"nd',
            ),
            done=r"^probe: end",
            timeout=300.0,
        ),
        Scenario(
            "http-vars",
            "UEFI HTTP Boot, the printing grub/grub.cfg of pxe-vars",
            firmware="uefi-sb-http",
            files=_loaders(),
            grub_cfg={"grub/grub.cfg": VARS_CFG, "hello.txt": "probe: hello over the network\n"},
            done=r"probe: end",
            linger=3.0,
        ),
        Scenario(
            "http-boot",
            "UEFI HTTP Boot; GRUB stops at grub> (no http module), so the probe types the two lines that"
            " send it to TFTP: per-MAC grub.cfg, kernel and initrd over TFTP",
            firmware="uefi-sb-http",
            files={**_loaders(), **di},
            grub_cfg=boot_cfg("tftp"),
            keys=("set prefix=(tftp,{server})/grub", "source $prefix/grub.cfg"),
            done=r"Secure boot enabled",
            linger=15.0,
        ),
        Scenario(
            "http-img",
            "UEFI HTTP Boot of netboot's disk image (a RAM disk holding shim and GRUB); its GRUB runs"
            " net_bootp and reads the per-MAC grub.cfg, kernel and initrd over TFTP",
            firmware="uefi-sb-http",
            files={**_loaders(), **di},
            grub_cfg=boot_cfg("tftp"),
            boot_file="sb.img",
            done=r"Secure boot enabled",
            linger=15.0,
        ),
        Scenario(
            "http-ipxe",
            "UEFI HTTP Boot, URL to Debian's unsigned ipxe.efi: refused by the firmware",
            firmware="uefi-sb-http",
            files={"ipxe.efi": IPXE},
            boot_file="ipxe.efi",
            done=r"Access Denied|iPXE",
            linger=20.0,
        ),
    ]
    return {s.name: s for s in made}


def _unsigned_kernel(dest: Path) -> None:
    """A copy of the installer kernel with its Authenticode signature removed."""
    shutil.copyfile(DI / "linux", dest)
    subprocess.run(["sbattach", "--remove", str(dest)], check=True, capture_output=True, timeout=30)


def _sign(src: Path, dest: Path, key: Path, cert: Path) -> None:
    """``src`` signed with ``key`` (what a site with its own Secure Boot keys does to its loaders).

    ovmf's snakeoil key is encrypted with the passphrase ``snakeoil`` (its README.Debian); sbsign
    wants it plain, so a plain copy lives next to ``dest`` only while signing.
    """
    plain = dest.parent / ".signing.key"
    try:
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-passin", "pass:snakeoil", "-out", str(plain)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        subprocess.run(
            ["sbsign", "--key", str(plain), "--cert", str(cert), "--output", str(dest), str(src)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    finally:
        plain.unlink(missing_ok=True)


def fill_root(sc: Scenario, root: Path, server: str) -> None:
    root.mkdir(parents=True)
    for name, src in sc.files.items():
        (root / name).symlink_to(src)
    if "linux" in sc.files and sc.name == "pxe-unsigned-kernel":
        _unsigned_kernel(root / "linux-unsigned")
    if sc.name == "snakeoil-ipxe":
        _sign(IPXE, root / "ipxe.efi", SNAKEOIL_KEY, SNAKEOIL_CERT)
    if sc.name == "http-img":  # netboot's own image (netboot.shimdisk), naming this probe's server
        shim, _missing = find_shim_files(None)
        (root / "sb.img").write_bytes(ShimDisk(shim).image(server, MacAddress.parse(MAC)))
    for rel, text in sc.grub_cfg.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{server}", server).replace("{mac}", MAC))


class Timeline:
    """Every new line of the watched logs, stamped with seconds since QEMU started."""

    def __init__(self, logs: dict[str, Path]) -> None:
        self.logs = logs
        self.seen: dict[str, int] = dict.fromkeys(logs, 0)
        self.lines: list[tuple[float, str, str]] = []
        self.started = time.monotonic()
        self.last_growth = self.started

    def poll(self) -> None:
        now = time.monotonic() - self.started
        for src, path in self.logs.items():
            if not path.exists():
                continue
            data = path.read_bytes()
            if len(data) <= self.seen[src]:
                continue
            end = data.rfind(b"\n", self.seen[src]) + 1
            if end <= self.seen[src]:
                continue
            chunk = ANSI.sub(b"", data[self.seen[src] : end]).decode(errors="replace")
            self.seen[src] = end
            self.last_growth = time.monotonic()
            for line in chunk.splitlines():
                if line.strip():
                    self.lines.append((now, src, line.rstrip()))

    def first(self, src: str, pattern: str) -> float | None:
        rx = re.compile(pattern)
        return next((t for t, s, line in self.lines if s == src and rx.search(line)), None)

    def write(self, path: Path) -> None:
        path.write_text("".join(f"{t:7.2f} {s:7} {line}\n" for t, s, line in self.lines))


def type_keys(sock_path: Path, lines: tuple[str, ...]) -> None:
    """Type ``lines`` on the VM's serial console, a key at a time (GRUB reads the firmware's ConIn).

    While connected, QEMU also sends the guest's output to this socket and stalls the guest's serial
    port (and the log file) when nobody reads it, so a thread drains it until the typing is done.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        sock.settimeout(0.2)

        def drain() -> None:
            while True:
                try:
                    if not sock.recv(65536):
                        return
                except TimeoutError:
                    continue
                except OSError:
                    return

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        for line in lines:
            for ch in line + "\r":
                sock.sendall(ch.encode())
                time.sleep(0.03)
            time.sleep(3.0)
        sock.shutdown(socket.SHUT_RDWR)
    reader.join(2)


def dnsmasq_argv(sc: Scenario, lab: Lab, root: Path, work: Path) -> list[str]:
    server = lab.ip(1)
    argv = [
        "dnsmasq",
        "-d",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        "--no-ping",
        f"--dhcp-range={lab.ip(100)},{lab.ip(110)},1h",
        f"--dhcp-leasefile={work}/dnsmasq.leases",
        "--log-dhcp",
        "--log-queries",
        "--user=root",  # read the root wherever it is (the namespace is ours)
        "--enable-tftp",
        f"--tftp-root={root}",
    ]
    if sc.firmware.endswith("-http"):
        # UEFI HTTP Boot: vendor class HTTPClient echoed back, the boot file a URL
        argv += [
            "--dhcp-vendorclass=set:httpboot,HTTPClient",
            "--dhcp-option-force=tag:httpboot,60,HTTPClient",
            f"--dhcp-boot=tag:httpboot,http://{server}/{sc.boot_file}",
        ]
    else:
        argv.append(f"--dhcp-boot={sc.boot_file}")
    return argv


def run(sc: Scenario, out: Path) -> dict[str, float | None]:
    missing = missing_firmware(sc.firmware)
    if missing:
        raise SystemExit(f"{sc.name}: missing packages {missing}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with Lab() as lab:
        srv: Netns = lab.host("srv", 1)
        server = lab.ip(1)
        root = out / "root"
        fill_root(sc, root, server)
        for rel in sc.grub_cfg:
            shutil.copyfile(root / rel, out / ("served-" + rel.replace("/", "_")))
        srv.spawn(
            ["tcpdump", "-i", "eth0", "-n", "-U", "-w", str(out / "capture.pcap")], log=out / "tcpdump.log"
        )
        srv.spawn(dnsmasq_argv(sc, lab, root, out), log=out / "dnsmasq.log")
        for port, log in (("80", "http.log"), ("8080", "http8080.log")):
            srv.spawn(
                [sys.executable, "-u", "-m", "http.server", port, "--bind", server, "--directory", str(root)],
                log=out / log,
            )
        wait_for_log(out / "dnsmasq.log", "DHCP, IP range", 10)
        spec = VmSpec(
            name=sc.name,
            mac=MAC,
            tap=lab.tap(),
            firmware=sc.firmware,
            memory_mb=1024,
            serial_log=out / "serial.log",
            serial_socket=out / "serial.sock" if sc.keys else None,
            state_dir=out,
        )
        argv = command(spec)
        (out / "qemu.argv").write_text(" ".join(argv) + "\n")
        logs = {
            "dnsmasq": "dnsmasq.log",
            "http": "http.log",
            "http8080": "http8080.log",
            "serial": "serial.log",
        }
        tl = Timeline({src: out / name for src, name in logs.items()})
        vm = lab.bridge.spawn(argv, log=out / "qemu.log")
        tl.started = time.monotonic()
        done = re.compile(sc.done)
        typed = not sc.keys
        finished_at: float | None = None
        requested = False
        while True:
            time.sleep(0.1)
            tl.poll()
            now = time.monotonic()
            requested = requested or any(s == "http" or "tftp" in line for _, s, line in tl.lines[-50:])
            if not typed and sc.key_trigger in (out / "serial.log").read_bytes():
                type_keys(out / "serial.sock", tuple(k.replace("{server}", server) for k in sc.keys))
                typed = True
                continue
            if (
                typed
                and finished_at is None
                and any(s == "serial" and done.search(line) for _, s, line in tl.lines)
            ):
                finished_at = now
            if finished_at is not None and now - finished_at > sc.linger:
                break
            if requested and now - tl.last_growth > sc.quiet:
                break
            if now - tl.started > sc.timeout or vm.poll() is not None:
                break
        tl.poll()
    # the lab is gone here: namespaces deleted, dnsmasq, http.server, tcpdump and QEMU stopped
    (out / "serial.txt").write_bytes(ANSI.sub(b"", (out / "serial.log").read_bytes()))
    tl.write(out / "timeline.txt")
    marks = marks_of(tl.lines)
    marks["end"] = time.monotonic() - tl.started
    write_marks(out, marks)
    return marks


#: phases, each the first log line that matches (seconds since QEMU started; the serial lines are stamped
#: when the probe's 0.1 s poll sees them, dnsmasq logs a TFTP file when its transfer has ended)
MARKS = {
    "DHCP offer": ("dnsmasq", r"DHCPOFFER"),
    "firmware fetches boot file": ("serial", r"Downloading NBP file|URI: http"),
    "boot file starts": ("serial", r"BdsDxe: starting Boot"),
    "GRUB starts": ("serial", r"Welcome to GRUB!"),
    "grub/grub.cfg served": ("dnsmasq", r"sent .*/grub/grub\.cfg to"),
    "per-MAC grub.cfg served": ("dnsmasq", r"sent .*/grub/grub\.cfg-01-"),
    "kernel served": ("dnsmasq", r"sent .*/linux(-unsigned)? to"),
    "initrd served": ("dnsmasq", r"sent .*/initrd\.gz to"),
    "kernel starts (EFI stub)": ("serial", r"EFI stub: UEFI Secure Boot is enabled"),
    "Secure boot enabled": ("serial", r"Secure boot enabled"),
    "refused": ("serial", r"Access Denied|Security Violation|bad shim signature"),
}


def marks_of(lines: list[tuple[float, str, str]]) -> dict[str, float | None]:
    found: dict[str, float | None] = {}
    for name, (src, pattern) in MARKS.items():
        rx = re.compile(pattern)
        found[name] = next((t for t, s, line in lines if s == src and rx.search(line)), None)
    return found


def write_marks(out: Path, marks: dict[str, float | None]) -> None:
    (out / "marks.txt").write_text(
        "".join(f"{k}: {'-' if v is None else f'{v:.1f}'}\n" for k, v in marks.items())
    )


def read_timeline(path: Path) -> list[tuple[float, str, str]]:
    """timeline.txt back into lines (``--report`` recomputes the marks without a VM)."""
    return [(float(line[:7]), line[8:15].strip(), line[16:]) for line in path.read_text().splitlines()]


def requests(out: Path) -> list[str]:
    """The TFTP and HTTP requests in order, from the timeline (what the report quotes)."""
    rx = re.compile(r"dnsmasq-tftp.*|\"(GET|HEAD) [^\"]*\" \d+|DHCP(DISCOVER|OFFER|REQUEST|ACK).*")
    return [line for line in (out / "timeline.txt").read_text().splitlines() if rx.search(line)]


def main(argv: list[str] | None = None) -> int:
    all_sc = scenarios()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="*", help=f"one or more of: {', '.join(all_sc)}, or all")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", action="store_true", help="print the marks of earlier runs, start nothing")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "secureboot-probe")
    args = ap.parse_args(argv)
    if args.list or not args.scenario:
        for sc in all_sc.values():
            print(f"{sc.name:20} {sc.firmware:17} {sc.about}")
        return 0
    names = list(all_sc) if args.scenario == ["all"] else args.scenario
    unknown = [n for n in names if n not in all_sc]
    if unknown:
        ap.error(f"unknown scenario {unknown}")
    for name in names:
        out = args.out.resolve() / name
        if args.report:
            marks = marks_of(read_timeline(out / "timeline.txt"))
            print(f"{name:26}", "  ".join(f"{k}={v:.1f}" for k, v in marks.items() if v is not None))
            continue
        marks = run(all_sc[name], out)
        print(f"== {name}: {all_sc[name].about}\n   {out}")
        for key, val in marks.items():
            print(f"   {key:24} {'-' if val is None else f'{val:6.1f} s'}")
        for line in requests(out):
            print("   " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
