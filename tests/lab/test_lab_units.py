"""The lab's pure parts: progress from events, ``ss`` parsing, state round trip, process identity, PNG."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from netboot.lab import procs
from netboot.lab.core import LabError, UpOptions, resolve_profile, up
from netboot.lab.progress import Display, Files, Tracker, download_text, parse_ss, stage_of
from netboot.lab.qmp import ppm_to_png
from netboot.lab.state import LabState, VmRecord

ROOT = Path(__file__).resolve().parent.parent.parent
FILES = Files(frozenset({"linux"}), frozenset({"initrd.gz"}), 10_000_000)
MAC = "52:54:00:4e:42:01"


def make_db(path: Path, rows: list[tuple[str | None, str | None, str, str, dict[str, object]]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, time FLOAT, mac TEXT, client_ip TEXT, "
            "phase TEXT, summary TEXT, detail JSON)"
        )
        conn.executemany(
            "INSERT INTO events (time, mac, client_ip, phase, summary, detail) VALUES (?,?,?,?,?,?)",
            [
                (100.0 + i, mac, ip, phase, summary, json.dumps(detail))
                for i, (mac, ip, phase, summary, detail) in enumerate(rows)
            ],
        )


def test_events_become_stages_in_boot_order(tmp_path: Path) -> None:
    db = tmp_path / "netboot.db"
    mac = MAC.replace(":", "")
    make_db(
        db,
        [
            (mac, None, "dhcp", "OFFER ipxe.efi to 10.99.0.100", {"ip": "10.99.0.100"}),
            (None, "10.99.0.100", "tftp", "ipxe.efi: sent", {"file": "ipxe.efi", "outcome": "complete"}),
            (mac, "10.99.0.100", "boot-script", "ipxe: install", {"decision": "install"}),
            # TFTP and HTTP events may carry only the client's address
            (None, "10.99.0.100", "http", "file", {"file": "debian-installer/amd64/linux"}),
            (None, "10.99.0.100", "http", "file", {"file": "debian-installer/amd64/initrd.gz"}),
            (mac, None, "dhcp", "ACK 10.99.0.100", {"ip": "10.99.0.100"}),
            (mac, "10.99.0.100", "answer-file", "answer file preseed.cfg", {"file": "preseed.cfg"}),
            ("525400000099", "10.99.0.150", "answer-file", "someone else", {}),
        ],
    )
    tracker = Tracker(db, [("vm1", MAC, "lab-vm1")], FILES)
    steps = [(vm.name, stage) for vm, stage, _row in tracker.poll()]
    assert steps == [
        ("vm1", s) for s in ("dhcp", "loader", "script", "kernel", "initrd", "installer", "answer")
    ]
    vm = tracker.vms[mac]
    assert vm.ip == "10.99.0.100" and vm.has("script") and not vm.has("done")
    assert tracker.all_reached("answer") and not tracker.all_reached("done")
    assert tracker.poll() == []  # only new events are read


def test_a_local_boot_answer_is_noted_and_a_relay_address_is_not_taken_for_the_vm(tmp_path: Path) -> None:
    db = tmp_path / "netboot.db"
    mac = MAC.replace(":", "")
    make_db(db, [(mac, "10.99.0.1", "boot-script", "ipxe: local boot", {"decision": "local"})])
    tracker = Tracker(db, [("vm1", MAC, "lab-vm1")], FILES)
    tracker.poll()
    vm = tracker.vms[mac]
    assert vm.note and "local" in vm.note
    assert vm.ip == "10.99.0.1"  # no lease seen yet: the first requester is the best guess...
    make_db(tmp_path / "other.db", [])
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO events (time, mac, client_ip, phase, summary, detail) VALUES "
            "(200, ?, NULL, 'dhcp', 'ACK', ?)",
            (mac, json.dumps({"ip": "10.99.0.100"})),
        )
    tracker.poll()
    assert vm.ip == "10.99.0.100"  # ...and the lease wins


def test_a_missing_database_or_table_is_no_progress_yet(tmp_path: Path) -> None:
    assert Tracker(tmp_path / "absent.db", [("vm1", MAC, "h")], FILES).poll() == []
    sqlite3.connect(tmp_path / "empty.db").close()
    assert Tracker(tmp_path / "empty.db", [("vm1", MAC, "h")], FILES).poll() == []


def test_stage_of_ignores_failed_transfers_and_other_files() -> None:
    from netboot.lab.progress import Row

    def row(phase: str, **detail: object) -> Row:
        return Row(1, 0.0, None, None, phase, "", detail)

    assert stage_of(row("tftp", file="ipxe.efi", outcome="aborted"), FILES) is None
    assert stage_of(row("tftp", file="pxelinux.cfg/01-52-54"), FILES) is None
    assert stage_of(row("http", path="/loaders/ipxe.efi"), FILES) == "loader"
    assert stage_of(row("http", file="other/thing"), FILES) is None
    assert stage_of(row("install-done"), FILES) == "done"


SS = """\
ESTAB 0      0        10.99.0.1:8080  10.99.0.100:4035
\t cubic wscale:7,7 rto:204 rtt:0.5/0.25 mss:1448 bytes_sent:123 bytes_acked:5000 segs_out:10
ESTAB 0      0        10.99.0.1:8080  10.99.0.101:4036
\t cubic bytes_acked:700
ESTAB 0      0        10.99.0.1:69    10.99.0.100:4037
\t cubic bytes_acked:999
"""


def test_parse_ss_counts_acknowledged_bytes_per_peer_port() -> None:
    assert parse_ss(SS, 8080) == {"10.99.0.100": {4035: 5000}, "10.99.0.101": {4036: 700}}
    assert parse_ss("", 8080) == {}


def test_download_progress_and_its_end(tmp_path: Path) -> None:
    db = tmp_path / "netboot.db"
    mac = MAC.replace(":", "")
    make_db(
        db,
        [
            (mac, None, "dhcp", "ACK", {"ip": "10.99.0.100"}),
            (mac, "10.99.0.100", "boot-script", "install", {"decision": "install"}),
        ],
    )
    tracker = Tracker(db, [("vm1", MAC, "lab-vm1")], FILES)
    tracker.poll()
    lines: list[str] = []
    display = Display(tracker, started=0.0, tty=False, write=lines.append)
    tracker.update_downloads({"10.99.0.100": {1: 4_000_000}}, now=10.0)
    tracker.update_downloads(
        {"10.99.0.100": {1: 3_000_000, 2: 2_000_000}}, now=11.0
    )  # counters never go back
    vm = tracker.vms[mac]
    assert vm.downloaded == 6_000_000
    text = download_text(vm, FILES, now=11.0)
    assert text is not None and "60%" in text and "6.0/10.0 MB" in text
    display.downloads(11.0)
    assert len(lines) == 1 and "download" in lines[0]
    vm.reached["initrd"] = 11.0
    assert download_text(vm, FILES, now=20.0) == (
        "kernel and initrd loaded; the installer is booting (a minute or two under TCG)"
    )
    display.downloads(20.0)
    assert "kernel and initrd loaded" in lines[-1]


def test_tty_display_redraws_in_place(tmp_path: Path) -> None:
    tracker = Tracker(
        tmp_path / "absent.db", [("vm1", MAC, "lab-vm1"), ("vm2", "52:54:00:4e:42:02", "lab-vm2")], FILES
    )
    out: list[str] = []
    display = Display(tracker, started=0.0, tty=True, write=out.append, unicode=False)
    display.redraw(5.0)
    display.redraw(6.0)
    assert "\x1b[6F" in out[1] and "\x1b[6F" not in out[0]  # two VMs, three lines each
    assert "lab-vm2" in out[1] and ". answer file" in out[1]


def test_state_round_trips(tmp_path: Path) -> None:
    state = LabState(name="nbx", root=str(tmp_path / "nbx"), namespaces=["nbx"], links=["br0", "tap0"])
    state.procs.append(procs.Proc("netboot", 42, 7, ("netboot", "serve"), "/x.log"))
    state.vms.append(
        VmRecord("vm1", MAC, "lab-vm1", "tap0", "bios", "/d", "/d/s.log", "/d/s.sock", "/d/q.log")
    )
    state.save()
    again = LabState.load(state.path)
    assert again == state
    assert (tmp_path / "nbx" / "state.json").exists() and not (tmp_path / "nbx" / "state.tmp").exists()


def test_a_recorded_pid_is_ours_only_with_its_start_time() -> None:
    me = procs.spawn("sleeper", ["sleep", "30"], log=None)
    try:
        assert procs.alive(me)
        assert not procs.alive(procs.Proc("other", me.pid, me.start + 1, ()))  # a reused PID is not ours
        assert procs.terminate(procs.Proc("other", me.pid, me.start + 1, ()))  # ...and is left alone
        assert procs.alive(me)
    finally:
        assert procs.terminate(me, timeout=5)
    assert not procs.alive(me)
    assert not procs.alive(procs.Proc("gone", 2**22 + 1, 1, ()))


def test_ppm_screendumps_become_png() -> None:
    ppm = b"P6\n# qemu\n2 1\n255\n" + bytes([255, 0, 0, 0, 255, 0])
    png = ppm_to_png(ppm)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (2, 1)
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    assert zlib.decompress(png[idat + 4 : idat + 4 + length]) == b"\x00" + bytes([255, 0, 0, 0, 255, 0])


def test_profiles_are_checked_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="does not exist") as info:
        resolve_profile(ROOT / "profiles", "debian12-presed")
    assert info.value.status == 2
    with pytest.raises(LabError, match="not available locally"):
        resolve_profile(ROOT / "profiles", "rocky9-kickstart")  # kernel only from a mirror: unreachable
    with pytest.raises(LabError, match="does not exist"):
        resolve_profile(tmp_path / "nowhere", "debian12-preseed")


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the message for non-root users")
def test_up_needs_root(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="needs root"):
        up(UpOptions(), data_dir=tmp_path, profiles_dir=ROOT / "profiles", say=print)
