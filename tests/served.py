"""Run the real ``netboot serve`` inside a test namespace, and read back what it did."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from netlab import ROOT, Lab, Netns, stop, wait_for_log

NETBOOT = str(ROOT / ".venv" / "bin" / "netboot")


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    ns: Netns
    ip: str
    data: Path
    log: Path
    http_port: int

    @property
    def http(self) -> str:
        return f"http://{self.ip}:{self.http_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float) -> str:
        return wait_for_log(self.log, text, timeout)

    def leases(self, *extra: str) -> list[dict[str, object]]:
        out = subprocess.run(
            [NETBOOT, "leases", "--json", "--data-dir", str(self.data), *extra],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        result: list[dict[str, object]] = json.loads(out.stdout)
        return result

    def stop(self) -> None:
        stop(self.proc)


def start_dnsmasq(lab: Lab, workdir: Path, log: Path, *extra: str) -> Netns:
    """dnsmasq as the network's ordinary DHCP server (.150-.160, no DNS) in its own namespace at .2;
    ``extra`` options after the rest (``--dhcp-boot=...`` when it, not netboot, names the boot file)."""
    ns = lab.host("dnsmasq", 2)
    ns.spawn(
        [
            "dnsmasq",
            "-d",
            "--port=0",
            "--interface=eth0",
            "--bind-interfaces",
            "--no-ping",  # answer at once instead of pinging the address for 3 s first
            f"--dhcp-range={lab.ip(150)},{lab.ip(160)},1h",
            f"--dhcp-leasefile={workdir}/dnsmasq.leases",
            "--log-dhcp",
            *extra,
        ],
        log=log,
    )
    wait_for_log(log, "DHCP, IP range", 10)  # bound and answering
    return ns


def start_netboot(
    lab: Lab,
    ns: Netns,
    workdir: Path,
    *args: str,
    config: str | None = None,
    http_port: int = 8080,
    address: int = 1,
) -> Served:
    """Start ``netboot serve -i eth0`` in ``ns`` with its own data dir; wait for its ready line."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    log = workdir / "netboot.log"
    cmd = [NETBOOT, "serve", "--data-dir", str(data), "--interface", "eth0", "--http-port", str(http_port)]
    if config is not None:
        (workdir / "netboot.yaml").write_text(config)
        cmd += ["--config", str(workdir / "netboot.yaml")]
    proc = ns.spawn([*cmd, *args], log=log)
    served = Served(proc, ns, lab.ip(address), data, log, http_port)
    try:
        served.wait_log("netboot ready", 20)
    except TimeoutError:
        raise AssertionError(f"netboot did not start:\n{served.log_text()}") from None
    return served
