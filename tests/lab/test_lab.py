"""``netboot lab`` end to end: the real commands as subprocesses, real QEMU VMs (TCG), real namespaces.

Each lab gets a unique ``--name`` and its own ``--data-dir``; every test ends with ``netboot lab down`` and
asserts that no namespace, interface or process of that lab is left. VM pairs boot at once (two TCG VMs
on two cores), so the set stays within a few minutes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from netlab import ROOT

pytestmark = [pytest.mark.netns, pytest.mark.qemu]

NETBOOT = str(ROOT / ".venv" / "bin" / "netboot")
UP_TIMEOUT = 480  # what each `lab up` may take (TCG, two VMs sharing two cores)


def unique_name() -> str:
    return "nbt" + secrets.token_hex(3)


def lab(
    *args: str, data: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NETBOOT, "lab", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()}


def processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and " Z" not in line[:12]]


def pid_alive(pid: int, start: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return int(fields[19]) == start and fields[0] not in "ZX"


@dataclass
class Lab:
    """One `netboot lab up` run in the background, and what it left to check."""

    name: str
    data: Path
    artifacts: Path
    args: tuple[str, ...]
    proc: subprocess.Popen[str] | None = None
    output: str = ""
    returncode: int | None = None
    recorded: list[tuple[int, int, str]] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.data / "lab" / self.name

    def start(self) -> Lab:
        self.proc = subprocess.Popen(
            [
                NETBOOT,
                "lab",
                "up",
                "--name",
                self.name,
                "--data-dir",
                str(self.data),
                "--timeout",
                str(UP_TIMEOUT),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def wait(self) -> Lab:
        assert self.proc is not None
        try:
            self.output, _ = self.proc.communicate(timeout=UP_TIMEOUT + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output, _ = self.proc.communicate(timeout=10)
        self.returncode = self.proc.returncode
        (self.artifacts / f"{self.name}-up.txt").write_text(self.output)
        self.remember()
        return self

    def remember(self) -> None:
        """Note every process the lab recorded, to check after `down` that each is gone."""
        state = self.dir / "state.json"
        if state.exists():
            data = json.loads(state.read_text())
            self.recorded = [(p["pid"], p["start"], p["role"]) for p in data["procs"]]

    def status(self) -> dict[str, object]:
        result = lab("status", "--name", self.name, "--json", data=self.data)
        info: dict[str, object] = json.loads(result.stdout)
        return info

    def keep_logs(self) -> None:
        if not self.dir.exists():
            return
        target = self.artifacts / self.name
        target.mkdir(parents=True, exist_ok=True)
        for log in [*self.dir.glob("*.log"), *self.dir.glob("vms/*/*.log")]:
            rel = log.relative_to(self.dir)
            (target / str(rel).replace("/", "-")).write_bytes(log.read_bytes())

    def down(self) -> subprocess.CompletedProcess[str]:
        self.remember()
        self.keep_logs()
        return lab("down", "--name", self.name, data=self.data, timeout=120)

    def assert_gone(self) -> None:
        names = netns_names()
        assert self.name not in names and f"{self.name}-dhcp" not in names, names
        alive = [(pid, role) for pid, start, role in self.recorded if pid_alive(pid, start)]
        assert not alive, f"processes left running: {alive}"
        assert not processes_mentioning(str(self.dir)), processes_mentioning(str(self.dir))
        assert not processes_mentioning(f"--netns {self.name} "), "UI relay left running"
        assert not self.dir.exists(), f"{self.dir} left behind"

    def log(self, name: str) -> str:
        return (self.dir / name).read_text(errors="replace")


@pytest.fixture
def labs(tmp_path: Path, artifacts: Path) -> Iterator[list[Lab]]:
    """Labs made by the test; whatever happens, each is taken down and checked to be gone."""
    made: list[Lab] = []
    links_before = host_links()
    yield made
    problems = []
    for item in made:
        if item.proc is not None and item.proc.poll() is None:
            item.proc.kill()
            item.proc.wait(10)
        result = item.down()
        if result.returncode != 0:
            problems.append(f"{item.name}: lab down failed: {result.stderr}")
        try:
            item.assert_gone()
        except AssertionError as exc:
            problems.append(f"{item.name}: {exc}")
    new_links = host_links() - links_before
    assert not new_links, f"interfaces appeared on the host: {new_links}"
    assert not problems, problems


def new_lab(labs: list[Lab], tmp_path: Path, artifacts: Path, *args: str) -> Lab:
    made = Lab(unique_name(), tmp_path / "data", artifacts, args)
    labs.append(made)
    return made


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answer_events(item: Lab) -> dict[str, str]:
    """MAC (12 hex digits) -> client IP of each answer-file event in the lab's own database."""
    db = item.dir / "netboot" / "netboot.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT mac, client_ip FROM events WHERE phase = 'answer-file'").fetchall()
    return {mac: ip for mac, ip in rows}


def system_tokens(item: Lab) -> dict[str, str]:
    """MAC (12 hex digits) -> install token, from the lab's own database."""
    db = item.dir / "netboot" / "netboot.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT mac, token FROM systems").fetchall())


def answer_of(item: Lab, mac: str, file: str = "preseed.cfg") -> str:
    """The answer file ``mac`` gets, as ``netboot render`` shows it from the lab's own config and state.

    Fetching it over HTTP from the lab's server namespace is refused: a token works only from the
    address the machine booted from (:func:`refused_in_lab` checks that on the real daemon).
    """
    out = subprocess.run(
        [NETBOOT, "render", mac, "--kind", file, "--config", str(item.dir / "netboot.yaml"),
         "--data-dir", str(item.dir / "netboot")],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return out.stdout


def status_in_lab(item: Lab, url: str) -> str:
    """The HTTP status of ``url`` fetched from the lab's server namespace (not a VM's address)."""
    out = subprocess.run(
        ["ip", "netns", "exec", item.name, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
         url],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stdout


def fetch_in_lab(item: Lab, url: str) -> str:
    out = subprocess.run(
        ["ip", "netns", "exec", item.name, "curl", "-fsS", "-m", "10", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout


def assert_reached_answer(item: Lab, vms: int = 1, mirror: bool = False) -> None:
    assert item.returncode == 0, item.output
    assert f"All {vms} VM(s) reached 'answer file'" in item.output, item.output
    for stage in ("DHCP", "boot script", "kernel", "initrd", "answer file"):
        assert f": {stage}" in item.output, f"no {stage!r} step shown:\n{item.output}"
    # says honestly how far the install can go
    assert ("local mirror" if mirror else "no route out") in item.output, item.output
    info = item.status()
    assert info["up"] is True, info
    assert all(vm["stage"] == "answer" for vm in info["vms"]), info  # type: ignore[attr-defined, union-attr]


def assert_sealed(item: Lab) -> None:
    """The lab namespace has no default route and nothing but its bridge, taps and (proxy) veth."""
    routes = subprocess.run(
        ["ip", "-n", item.name, "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert "default" not in routes and routes.strip().startswith("10.99.0.0/24"), routes
    out = subprocess.run(
        ["ip", "-n", item.name, "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    links = {line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()}
    assert links <= {"lo", "br0", "dhcp0"} | {f"tap{i}" for i in range(16)}, links


# ------------------------------------------------------------------------------------------------ tests


def test_bad_input_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    name = unique_name()

    def nothing_made() -> None:
        assert name not in netns_names() and f"{name}-dhcp" not in netns_names()
        assert not (data / "lab" / name).exists()

    result = lab("up", "--name", name, "--profile", "debian12-presed", data=data)
    assert result.returncode == 2, result
    assert "profile 'debian12-presed' does not exist" in result.stderr
    assert "did you mean 'debian12-preseed'" in result.stderr
    nothing_made()

    # no qemu-system-x86_64 on PATH (everything else the lab needs is)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "ss", "qemu-img", "dnsmasq", "sh"):
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    result = lab("up", "--name", name, data=data, env={"PATH": str(bin_dir)})
    assert result.returncode == 2, result
    assert "missing Debian packages for this lab: qemu-system-x86" in result.stderr
    nothing_made()
    (bin_dir / "dnsmasq").unlink()
    result = lab("up", "--name", name, "--proxy", data=data, env={"PATH": str(bin_dir)})
    assert "dnsmasq-base" in result.stderr and "qemu-system-x86" in result.stderr, result.stderr
    nothing_made()

    result = lab(
        "up",
        "--name",
        name,
        "--firmware",
        "uefi",
        data=data,
        env={"NETBOOT_OVMF_CODE": str(tmp_path / "absent.fd")},
    )
    assert result.returncode == 2 and "missing Debian packages for this lab: ovmf" in result.stderr, result
    nothing_made()

    result = lab("up", "--name", name, "--until", "done", data=data)
    assert result.returncode == 2 and "--mirror-dir" in result.stderr, result
    result = lab("up", "--name", "Bad_Name", data=data)
    assert result.returncode == 2 and "--name 'Bad_Name'" in result.stderr, result
    nothing_made()

    # a namespace of that name that the lab did not create is neither used nor removed
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        result = lab("up", "--name", name, "--accel", "tcg", data=data)
        assert result.returncode == 2 and "this lab did not create it" in result.stderr, result
        assert name in netns_names()
        assert not (data / "lab" / name / "state.json").exists()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)
    nothing_made()

    result = lab("down", "--name", name, data=data)
    assert result.returncode == 0 and "nothing to remove" in result.stdout, result
    result = lab("status", "--name", name, data=data)
    assert result.returncode == 1 and "no lab" in result.stdout, result

    # stale state (a crash, a reboot): status says so, down cleans it without touching the dead PID's heir
    root = data / "lab" / name
    root.mkdir(parents=True)
    (root / "state.json").write_text(
        json.dumps(
            {
                "name": name,
                "root": str(root),
                "namespaces": [name],
                "links": ["br0"],
                "phase": "up",
                "procs": [
                    {"role": "netboot", "pid": os.getpid(), "start": 1, "argv": ["netboot"], "log": None}
                ],
                "vms": [],
            }
        )
    )
    result = lab("status", "--name", name, data=data)
    assert result.returncode == 1 and "NOT HEALTHY" in result.stdout, result
    result = lab("down", "--name", name, data=data)
    assert result.returncode == 0, result
    assert "stopped netboot" not in result.stdout  # our own PID with another start time: not the lab's
    nothing_made()


def test_bios_and_uefi_pxe_each_reach_their_answer_file(
    labs: list[Lab], tmp_path: Path, artifacts: Path
) -> None:
    port = free_port()
    bios = new_lab(labs, tmp_path, artifacts, "--firmware", "bios", "--ui-port", str(port))
    uefi = new_lab(labs, tmp_path, artifacts, "--firmware", "uefi", "--ui-port", "0", "--accel", "tcg")
    # a crashed earlier run of the BIOS lab: `up` must clean it up and say so
    bios.dir.mkdir(parents=True)
    (bios.dir / "state.json").write_text(
        json.dumps(
            {"name": bios.name, "root": str(bios.dir), "namespaces": [bios.name], "procs": [], "vms": []}
        )
    )
    started = time.monotonic()
    for item in (bios, uefi):
        item.start()
    for item in (bios, uefi):
        item.wait()
    (artifacts / "elapsed.txt").write_text(f"{time.monotonic() - started:.1f}\n")
    assert "stale state" in bios.output, bios.output
    assert_reached_answer(bios)
    assert_reached_answer(uefi)
    assert "ipxe.efi: sent" in uefi.log("netboot.log") or "ipxe.efi complete" in uefi.log("netboot.log")
    assert_sealed(bios)

    # the UI relay on the host's loopback reaches netboot inside the lab
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/", timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status in (200, 302, 401), status

    # a second `up` of a running lab is refused, and leaves the running one alone
    again = lab("up", "--name", bios.name, "--ui-port", "0", "--accel", "tcg", data=bios.data)
    assert again.returncode == 1 and "is already up" in again.stderr, again
    assert bios.status()["up"] is True

    for item in (bios, uefi):
        result = item.down()
        assert result.returncode == 0, result
        assert f"removed namespace {item.name}" in result.stdout, result.stdout
        item.assert_gone()


def test_uefi_http_boot_reaches_its_answer_file_with_a_local_mirror(
    labs: list[Lab], tmp_path: Path, artifacts: Path
) -> None:
    # a (nearly empty) local mirror: served inside the lab and named in the VM's preseed; the installer
    # finds no packages there, so this checks the wiring, not a full install
    mirror = tmp_path / "mirror"
    (mirror / "dists" / "bookworm").mkdir(parents=True)
    (mirror / "dists" / "bookworm" / "Release").write_text("Suite: bookworm\n")
    item = new_lab(
        labs,
        tmp_path,
        artifacts,
        "--firmware",
        "uefi-http",
        "--ui-port",
        "0",
        "--accel",
        "tcg",
        "--mirror-dir",
        str(mirror),
        "--until",
        "answer",
    )
    item.start().wait()
    assert_reached_answer(item, mirror=True)
    log = item.log("netboot.log")
    # OVMF asked as an HTTP Boot client (option 93 = 16) and got iPXE as a URL, not over TFTP
    assert "(uefi-x64-http) DISCOVER" in log and "OFFER http://10.99.0.1:8080/loaders/ipxe.efi" in log, log
    assert "loader ipxe.efi" in item.output
    token = system_tokens(item)["5254004e4201"]
    url = f"http://10.99.0.1:8080/answer/52:54:00:4e:42:01/preseed.cfg?token={token}"
    assert status_in_lab(item, url) == "403"  # the VM's token, from another address
    preseed = answer_of(item, "52:54:00:4e:42:01")
    assert "d-i mirror/http/hostname string 10.99.0.1:3142\n" in preseed, preseed
    assert fetch_in_lab(item, "http://10.99.0.1:3142/dists/bookworm/Release") == "Suite: bookworm\n"
    result = item.down()
    assert result.returncode == 0, result
    item.assert_gone()


def test_two_vms_with_dnsmasq_and_proxy_dhcp_get_their_own_answer_files(
    labs: list[Lab], tmp_path: Path, artifacts: Path
) -> None:
    item = new_lab(labs, tmp_path, artifacts, "--vms", "2", "--proxy", "--ui-port", "0", "--accel", "tcg")
    item.start().wait()
    assert_reached_answer(item, vms=2)
    assert_sealed(item)
    dnsmasq = item.log("dnsmasq.log")
    macs = ["52:54:00:4e:42:01", "52:54:00:4e:42:02"]
    for mac in macs:
        assert "DHCPACK(eth0)" in dnsmasq and mac in dnsmasq, dnsmasq  # dnsmasq leased the addresses
    netboot_log = item.log("netboot.log")
    assert "dhcp (proxy" in netboot_log and " ACK " not in netboot_log  # netboot leased nothing

    fetched = answer_events(item)
    assert set(fetched) == {m.replace(":", "") for m in macs}, fetched
    assert len(set(fetched.values())) == 2, fetched  # from two different VMs
    tokens = system_tokens(item)
    for i, mac in enumerate(macs, start=1):
        url = f"http://10.99.0.1:8080/answer/{mac}/preseed.cfg?token={tokens[mac.replace(':', '')]}"
        assert status_in_lab(item, url) == "403"  # a token works only from its VM's address
        text = answer_of(item, mac)
        assert f"netcfg/get_hostname string lab-vm{i}\n" in text, text
    result = item.down()
    assert result.returncode == 0, result
    assert f"removed namespace {item.name}-dhcp" in result.stdout, result.stdout
    item.assert_gone()
