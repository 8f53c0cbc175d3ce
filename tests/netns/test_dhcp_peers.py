"""Real DHCP peers against the real daemon, each in namespaces this test creates and removes.

ISC dhclient and busybox udhcpc (lease, renew, release), perfdhcp (rate, no drops, no address twice),
dnsmasq as the network's DHCP server beside netboot in proxy mode, and hostile datagrams.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path

import pytest
from netlab import PYTHON, ROOT, Lab, wait_for, wait_for_log
from served import start_dnsmasq, start_netboot

from netboot.store.engine import BUSY_SECONDS

pytestmark = pytest.mark.netns

PROBE = str(ROOT / "tests" / "tools" / "dhcp_probe.py")
SCRIPT = str(ROOT / "tests" / "tools" / "client-script.sh")
FIXTURES = ROOT / "tests" / "fixtures" / "dhcp"


def full_config(lab: Lab, first: int = 100, last: int = 150, lease_time: int = 3600) -> str:
    return (
        f"dhcp:\n  mode: full\n  subnet: {lab.net}.0/24\n  range: {lab.ip(first)}-{lab.ip(last)}\n"
        f"  router: {lab.ip(1)}\n  dns-servers: [{lab.ip(1)}]\n  lease-time: {lease_time}\n"
    )


def probe(ns, *args: str, timeout: float = 30) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    out = ns.run(PYTHON, PROBE, *args, timeout=timeout).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def addr_of(ns) -> str | None:  # type: ignore[no-untyped-def]
    out = ns.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    match = re.search(r"inet (\S+)/", out)
    return match.group(1) if match else None


def summaries(data: Path, mac: str) -> list[str]:
    """The summaries of the DHCP events the daemon recorded for ``mac``, oldest first."""
    with sqlite3.connect(data / "netboot.db") as conn:
        query = "SELECT summary FROM events WHERE phase='dhcp' AND mac=? ORDER BY id"
        rows = conn.execute(query, (mac.replace(":", "").lower(),))
        return [summary for (summary,) in rows]


def acks_in_db(data: Path) -> list[tuple[str, str]]:
    """(ip, mac) for every ACK event the daemon recorded."""
    with sqlite3.connect(data / "netboot.db") as conn:
        rows = conn.execute("SELECT client_ip, mac FROM events WHERE phase='dhcp' AND summary LIKE 'ACK %'")
        return [(ip, mac) for ip, mac in rows]


def test_dhclient_gets_renews_and_releases_a_lease(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("cli")
    mac = lab.mac_of(cli)
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab, lease_time=8))
    leasefile, pidfile, log = (
        tmp_path / "dhclient.leases",
        tmp_path / "dhclient.pid",
        tmp_path / "dhclient.log",
    )
    client = cli.spawn(
        ["dhclient", "-d", "-v", "-1", "-sf", SCRIPT, "-lf", str(leasefile), "-pf", str(pidfile), "eth0"],
        log=log,
    )
    wait_for_log(log, "bound to", 30)
    ip = addr_of(cli)
    assert ip is not None and ip.startswith(lab.net + ".1"), log.read_text()
    lease = next(x for x in served.leases() if x["mac"] == mac)
    assert lease["ip"] == ip and lease["active"]

    # T1 is half of the 8 s lease: dhclient renews by unicast to the server and is ACKed again
    wait_for(lambda: log.read_text().count("DHCPACK") >= 2, 20, what="a renewal ACK")
    assert f"DHCPREQUEST for {ip} on eth0 to {lab.ip(1)} port 67" in log.read_text()
    renewed = next(x for x in served.leases() if x["mac"] == mac)
    assert renewed["ip"] == ip and renewed["expires"] > lease["expires"]

    client.send_signal(signal.SIGTERM)
    client.wait(10)
    cli.run(
        "dhclient", "-r", "-v", "-sf", SCRIPT, "-lf", str(leasefile), "-pf", str(pidfile), "eth0", timeout=30
    )
    wait_for(lambda: not any(x["mac"] == mac for x in served.leases()), 10, what="the release")
    released = [x for x in served.leases("--all") if x["mac"] == mac]
    assert released and not released[0]["active"]
    wait_for(lambda: f"RELEASE {ip}" in summaries(served.data, mac), 10, what="the RELEASE event")


def test_udhcpc_gets_renews_and_releases_a_lease(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("cli")
    mac = lab.mac_of(cli)
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab))
    log = tmp_path / "udhcpc.log"
    client = cli.spawn(
        ["busybox", "udhcpc", "-f", "-i", "eth0", "-s", SCRIPT, "-t", "5", "-T", "2", "-R"], log=log
    )
    wait_for_log(log, "obtained", 30)
    ip = addr_of(cli)
    lease = next(x for x in served.leases() if x["mac"] == mac)
    assert lease["ip"] == ip

    client.send_signal(signal.SIGUSR1)  # udhcpc: renew now
    wait_for(lambda: log.read_text().count("obtained") >= 2, 20, what="udhcpc renewal")
    assert "sending renew" in log.read_text()
    renewed = next(x for x in served.leases() if x["mac"] == mac)
    assert renewed["ip"] == ip and renewed["expires"] > lease["expires"]

    client.send_signal(signal.SIGUSR2)  # udhcpc: release
    wait_for(lambda: not any(x["mac"] == mac for x in served.leases()), 10, what="udhcpc release")
    assert addr_of(cli) is None


def test_perfdhcp_no_drops_no_address_twice(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("perf", 2)
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab, first=10, last=250))
    # perfdhcp acts as a relay (giaddr = its own address) and simulates -R distinct clients
    result = cli.run(
        "perfdhcp",
        "-4",
        "-l",
        "eth0",
        "-r",
        "200",
        "-p",
        "5",
        "-R",
        "200",
        "-W",  # after the 5 s, wait 2 s for answers in flight instead of counting them as drops
        "2000000",
        lab.ip(1),
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    (tmp_path / "perfdhcp.txt").write_text(output)
    sent = [int(x) for x in re.findall(r"sent packets: (\d+)", output)]
    drops = [int(x) for x in re.findall(r"drops: (\d+)", output)]
    assert sent and sent[0] >= 900, output  # 200/s for 5 s
    assert drops == [0, 0], output
    served.proc.poll()
    acks = acks_in_db(served.data)
    owners: dict[str, set[str]] = {}
    for ip, mac in acks:
        owners.setdefault(ip, set()).add(mac)
    assert len(acks) >= sent[1] if len(sent) > 1 else acks
    assert all(len(macs) == 1 for macs in owners.values()), {ip: m for ip, m in owners.items() if len(m) > 1}


def test_proxy_mode_beside_dnsmasq(lab: Lab, tmp_path: Path) -> None:
    """dnsmasq owns the addresses; netboot only adds the boot file, and only for PXE clients."""
    srv = lab.host("srv", 1)
    start_dnsmasq(lab, tmp_path, tmp_path / "dnsmasq.log")
    cli = lab.host("cli")
    # the probed PXE client is unknown: the menu gives it a boot file (the default, local, gives none)
    served = start_netboot(lab, srv, tmp_path, "--dhcp-mode", "proxy", config="unknown-default: menu\n")

    pxe = probe(
        cli,
        "--mac",
        "52:54:00:12:00:01",
        "--fixture",
        str(FIXTURES / "uefi-pxe-0-discover.bin"),
        "--wait",
        "3",
    )
    by_src = {r["src"]: r for r in pxe}
    assert set(by_src) == {lab.ip(1), lab.ip(2)}, pxe
    address_offer, boot_offer = by_src[lab.ip(2)], by_src[lab.ip(1)]
    assert address_offer["yiaddr"].startswith(lab.net + ".15") or address_offer["yiaddr"] == lab.ip(160)
    assert boot_offer["type"] == "OFFER" and boot_offer["yiaddr"] == "0.0.0.0"
    assert boot_offer["file"] == "ipxe.efi" and boot_offer["siaddr"] == lab.ip(1)
    assert bytes.fromhex(str(boot_offer["options"]["60"])) == b"PXEClient"
    assert boot_offer["broadcast"] is True  # OVMF set the broadcast flag

    # the PXE 2.1 step on port 4011: the client, now with its address, asks netboot directly
    cli.run("ip", "addr", "add", f"{lab.ip(77)}/24", "dev", "eth0")
    acks = probe(
        cli,
        "--mac",
        "52:54:00:12:00:01",
        "--fixture",
        str(FIXTURES / "uefi-pxe-2-request.bin"),
        "--mode",
        "proxy-4011",
        "--server",
        lab.ip(1),
        "--server-port",
        "4011",
        "--client-port",
        "4011",
        "--wait",
        "2",
    )
    assert len(acks) == 1 and acks[0]["type"] == "ACK" and acks[0]["file"] == "ipxe.efi"
    assert acks[0]["sport"] == 4011 and acks[0]["yiaddr"] == "0.0.0.0"
    cli.run("ip", "addr", "flush", "dev", "eth0")

    # a plain client gets its lease from dnsmasq and nothing at all from netboot
    plain = probe(cli, "--mac", "52:54:00:12:00:02", "--wait", "3")
    assert {r["src"] for r in plain} == {lab.ip(2)}, plain
    log = tmp_path / "udhcpc.log"
    cli.spawn(["busybox", "udhcpc", "-f", "-q", "-i", "eth0", "-s", SCRIPT, "-t", "5", "-T", "2"], log=log)
    wait_for_log(log, "obtained", 30)
    assert f"from {lab.ip(2)}" in log.read_text()
    assert "52:54:00:12:00:02" not in served.log_text()
    assert "NAK" not in served.log_text()


def test_malformed_datagrams_are_dropped_and_service_continues(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("cli")
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab))
    probe(cli, "--mac", "52:54:00:12:00:03", "--mode", "garbage", "--count", "60")
    # a 255-byte client identifier is legal and must be served
    long_id = "01" + "ab" * 254
    offers = probe(cli, "--mac", "52:54:00:12:00:03", "--client-id", long_id, "--wait", "2")
    assert [o["type"] for o in offers] == ["OFFER"], served.log_text()
    assert bytes.fromhex(str(offers[0]["options"]["61"])) == bytes.fromhex(long_id)  # RFC 6842 echo
    log = served.log_text()
    assert "dropped malformed DHCP datagram" in log
    assert "Traceback" not in log
    assert served.proc.poll() is None


def test_acked_lease_survives_kill_9(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("cli")
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab))
    replies = probe(cli, "--mac", "52:54:00:12:00:04", "--mode", "dora", "--wait", "2")
    ack = next(r for r in replies if r["type"] == "ACK")
    served.proc.send_signal(signal.SIGKILL)  # the daemon's process group leader is netboot itself
    served.proc.wait(5)
    leases = served.leases()
    assert {"ip": ack["yiaddr"], "mac": "52:54:00:12:00:04"}.items() <= next(
        x for x in leases if x["mac"] == "52:54:00:12:00:04"
    ).items()


def test_no_ack_goes_out_before_its_lease_is_durable(lab: Lab, tmp_path: Path) -> None:
    """The transport flushes before it sends, and sends nothing when the flush fails.

    The fault is real: the test holds SQLite's write lock on the daemon's database, so the lease flush
    waits out the busy timeout and fails. No ACK may arrive meanwhile (one sent before the flush would be
    there at once, one sent despite the failure after the timeout); the OFFER, which needs no write, does.
    Once the lock is gone the same client is ACKed and its lease is on disk.
    """
    srv = lab.host("srv", 1)
    cli = lab.host("cli")
    mac = "52:54:00:12:00:05"
    served = start_netboot(lab, srv, tmp_path, config=full_config(lab))
    lock = sqlite3.connect(served.data / "netboot.db", isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        ack_wait = str(BUSY_SECONDS + 3)
        replies = probe(
            cli, "--mac", mac, "--mode", "dora", "--wait", "1", "--ack-wait", ack_wait, timeout=40
        )
        assert [r["type"] for r in replies] == ["OFFER"], replies
        served.wait_log("withholding 1 replies", 10)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    replies = probe(cli, "--mac", mac, "--mode", "dora", "--wait", "2")
    ack = next(r for r in replies if r["type"] == "ACK")
    assert ack["yiaddr"] == replies[0]["yiaddr"]
    with sqlite3.connect(served.data / "netboot.db") as conn:
        query = "SELECT ip FROM leases WHERE mac=? AND state='active'"
        on_disk = conn.execute(query, (mac.replace(":", ""),))
        assert [ip for (ip,) in on_disk] == [ack["yiaddr"]]
    assert served.proc.poll() is None
