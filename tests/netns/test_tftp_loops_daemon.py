"""``tftp-loops`` in the real daemon: by default a loop per CPU, serving tftp-hpa across a veth bridge.

A datagram a process sends through a veth pair is received on the sender's CPU, so a client started
with ``taskset -c N`` sends its request to the loop pinned to CPU N. Each loop's stop line says how many
ACKs it answered: both must have worked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from netlab import Lab
from served import NETBOOT, start_netboot

pytestmark = pytest.mark.netns

CPUS = sorted(os.sched_getaffinity(0))


@pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")
def test_the_daemon_serves_tftp_from_a_loop_per_cpu_by_default(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    cli = lab.host("cli", 3)
    payload = os.urandom(1_000_003)
    root = tmp_path / "data" / "tftp"
    root.mkdir(parents=True)
    (root / "f.bin").write_bytes(payload)
    served = start_netboot(lab, srv, tmp_path, config="dhcp:\n  mode: 'off'\n", http_port=8081)
    loops = len(CPUS)
    try:
        ready = served.log_text()
        cpus = ", ".join(map(str, CPUS))
        assert f"{loops} loops pinned to CPUs {cpus}, requests steered by CPU" in ready, ready
        for cpu in CPUS[:2]:
            out = tmp_path / f"got-{cpu}"
            cli.run("taskset", "-c", str(cpu), "tftp", "-m", "binary", lab.ip(1), "-c", "get", "f.bin",
                    str(out))
            assert out.read_bytes() == payload
    finally:
        served.stop()
    text = served.log_text()
    for index, cpu in enumerate(CPUS[:2], start=1):
        line = rf"TFTP loop {index}/{loops} \(CPU {cpu}\) stopped on \S+: (\d+) ACKs answered in C"
        stopped = re.search(line, text)
        assert stopped, text
        assert int(stopped.group(1)) > 1000, stopped.group(0)
    print(text)  # about 1953 blocks of 512 bytes each


def test_more_loops_than_cpus_stops_the_daemon_with_a_clear_error(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", 1)
    config = tmp_path / "netboot.yaml"
    config.write_text(f"tftp-loops: {len(CPUS) + 1}\n")
    done = srv.run(NETBOOT, "serve", "--config", str(config), "--data-dir", str(tmp_path / "data"),
                   "--dhcp-mode", "off", "--http-port", "0", check=False)
    assert done.returncode == 1, done
    assert (f"tftp-loops: {len(CPUS) + 1} loops, but this process may run on {len(CPUS)} CPUs"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr and "netboot ready" not in done.stderr
