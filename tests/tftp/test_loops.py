"""Several TFTP loops on one port (netboot.servers.tftp_loops): steering, hand-over, budget, pinning.

Real sockets on 127.0.0.1. A UDP datagram sent on loopback is received on the sender's CPU, so a client
thread pinned to a CPU decides which CPU the request arrives on, and with it which loop must take it.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from netboot.events import EventRecorder, MemorySink
from netboot.protocol.tftp import Ack, Data, Error, ReadRequest
from netboot.servers.tftp import RootResolver, TftpSource
from netboot.servers.tftp_loops import TftpLoops, cpu_sets, steering_program
from tests.tftp.client import RawClient, download_many
from tests.tftp.conftest import Tree, wait_for

CPUS = sorted(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs to steer between")
T = TypeVar("T")


def on_cpu(cpu: int, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread pinned to ``cpu`` (so its datagrams arrive on that CPU) and return its
    result; the test's own thread keeps its affinity."""
    box: dict[str, Any] = {}

    def run() -> None:
        os.sched_setaffinity(0, {cpu})
        try:
            box["result"] = work()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


class Served:
    """A running TftpLoops whose resolver notes which loop thread opened each file."""

    def __init__(self, root: Path, **kwargs: Any) -> None:
        self.sink = MemorySink()
        self.opened_by: list[str] = []
        plain = RootResolver(root)

        def resolver(name: str, client: tuple[str, int]) -> TftpSource:
            self.opened_by.append(threading.current_thread().name)
            return plain(name, client)

        kwargs.setdefault("timeout", 5.0)
        self.loops = TftpLoops(("127.0.0.1", 0), resolver, EventRecorder(self.sink), **kwargs)
        self.caller_affinity_after: set[int] | None = None
        self.thread = threading.Thread(target=self._serve, name="tftp-test-loops", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.loops.serve_forever()
        self.caller_affinity_after = os.sched_getaffinity(0)

    @property
    def address(self) -> tuple[str, int]:
        return self.loops.server_address

    def per_loop(self) -> list[int]:
        return [server.active_transfers for server in self.loops.servers]

    def stop(self) -> None:
        self.loops.shutdown()
        self.thread.join(5)
        self.loops.close()


@pytest.fixture
def start(tree: Tree) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def make(**kwargs: Any) -> Served:
        served = Served(tree.root, **kwargs)
        started.append(served)
        return served

    try:
        yield make
    finally:
        for served in started:
            served.stop()


def first_data(client: RawClient, name: str = "f.bin") -> tuple[str, int]:
    """Send an RRQ and return the TID its first DATA came from (the transfer's socket)."""
    client.send(ReadRequest(name))
    packet, tid = client.recv()
    assert isinstance(packet, Data) and packet.block == 1
    return tid


# ------------------------------------------------------------------------------------ the program


def test_cpus_are_dealt_out_to_loops_in_turn() -> None:
    assert cpu_sets([0, 1, 2, 3], 2) == [{0, 2}, {1, 3}]
    assert cpu_sets([2, 5, 7], 3) == [{2}, {5}, {7}]
    assert cpu_sets([4], 1) == [{4}]
    for loops in (0, 3):
        with pytest.raises(ValueError, match="at most one loop per CPU"):
            cpu_sets([0, 1], loops)


def test_steering_program_maps_each_listed_cpu_to_its_loop() -> None:
    program = steering_program([{0, 2}, {1}])
    insns = [struct.unpack_from("=HBBI", program, offset) for offset in range(0, len(program), 8)]
    assert insns == [
        (0x20, 0, 0, 0xFFFFF024),  # A = the CPU this datagram is being received on
        (0x15, 0, 1, 0), (0x06, 0, 0, 0),  # CPU 0: loop 0
        (0x15, 0, 1, 1), (0x06, 0, 0, 1),  # CPU 1: loop 1
        (0x15, 0, 1, 2), (0x06, 0, 0, 0),  # CPU 2: loop 0
        (0x06, 0, 0, 0xFFFFFFFF),  # any other CPU: no index, so the kernel's flow hash decides
    ]


# ----------------------------------------------------------------------------- loops on a port


def test_one_loop_is_a_plain_server(start: Callable[..., Served]) -> None:
    served = start(loops=1)
    listener = served.loops.servers[0].listener
    assert listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    assert served.loops.describe() == "1 loop"
    with RawClient(served.address) as client:
        tid = first_data(client)
        client.send(Error(0, "enough"), tid)
    assert served.opened_by == ["tftp-test-loops"]  # no thread of its own


@pytest.mark.parametrize("loops", [0, 3])
def test_no_loops_or_more_loops_than_cpus_is_refused(tree: Tree, loops: int) -> None:
    with pytest.raises(ValueError, match="at most one loop per CPU"):
        TftpLoops(("127.0.0.1", 0), RootResolver(tree.root), EventRecorder(MemorySink()), loops=loops,
                  cpus=[0, 1])


@two_cpus
def test_each_request_is_taken_by_the_loop_on_its_cpu(start: Callable[..., Served]) -> None:
    served = start(loops=2, cpus=CPUS[:2])
    assert served.loops.steered
    assert served.loops.describe() == f"2 loops pinned to CPUs {CPUS[0]}, {CPUS[1]}, requests steered by CPU"
    clients = [RawClient(served.address) for _ in range(4)]
    try:
        tids = [on_cpu(CPUS[i % 2], lambda c=client: first_data(c)) for i, client in enumerate(clients)]
        assert served.per_loop() == [2, 2]
        assert served.opened_by == ["tftp-test-loops", "netboot-tftp-2"] * 2
        for client, tid in zip(clients, tids, strict=True):
            client.send(Error(0, "enough"), tid)
        assert wait_for(lambda: served.per_loop() == [0, 0])
    finally:
        for client in clients:
            client.close()


@two_cpus
def test_a_clients_next_request_goes_to_the_loop_that_serves_it(start: Callable[..., Served]) -> None:
    served = start(loops=2, cpus=CPUS[:2])
    with RawClient(served.address) as client:
        tid = on_cpu(CPUS[0], lambda: first_data(client))
        assert served.per_loop() == [1, 0]
        # the same request again, now arriving on the other CPU: a retransmission, not a second transfer
        on_cpu(CPUS[1], lambda: client.send(ReadRequest("f.bin")))
        assert client.recv_none(0.5)
        assert served.per_loop() == [1, 0]
        # a new request from the same port (pxelinux asks for every file from one port): the owning
        # loop starts it beside the first, from a new TID
        on_cpu(CPUS[1], lambda: client.send(ReadRequest("small.txt")))
        client.sock.settimeout(3)
        packet, second = client.recv()
        assert packet == Data(1, b"hello\nworld\r\n") and second != tid
        assert served.per_loop() == [2, 0]  # small.txt waits for its ACK
        assert served.opened_by == ["tftp-test-loops", "tftp-test-loops"]
        client.send(Ack(1), second)
        client.send(Error(0, "enough"), tid)
    assert wait_for(lambda: served.per_loop() == [0, 0])


@two_cpus
def test_unpinned_loops_take_requests_by_cpu_but_run_anywhere(start: Callable[..., Served]) -> None:
    served = start(loops=2, cpus=CPUS[:2], pin=False)
    assert served.loops.describe() == (f"2 loops not pinned, taking requests from CPUs {CPUS[0]}, {CPUS[1]}, "
                                       "requests steered by CPU")
    with RawClient(served.address) as one, RawClient(served.address) as two:
        tids = [on_cpu(CPUS[0], lambda: first_data(one)), on_cpu(CPUS[1], lambda: first_data(two))]
        assert served.per_loop() == [1, 1]
        threads = {t.name: t for t in threading.enumerate()}
        for name in ("tftp-test-loops", "netboot-tftp-2"):
            assert os.sched_getaffinity(threads[name].native_id or 0) == set(CPUS)
        one.send(Error(0, "enough"), tids[0])
        two.send(Error(0, "enough"), tids[1])
    assert wait_for(lambda: served.per_loop() == [0, 0])


@two_cpus
def test_max_transfers_is_one_budget_for_all_loops(start: Callable[..., Served]) -> None:
    served = start(loops=2, cpus=CPUS[:2], max_transfers=2)
    clients = [RawClient(served.address) for _ in range(3)]
    try:
        tids = [on_cpu(CPUS[i], lambda c=clients[i]: first_data(c)) for i in range(2)]
        assert served.per_loop() == [1, 1]
        for cpu in CPUS[:2]:
            on_cpu(cpu, lambda: clients[2].send(ReadRequest("f.bin")))
            assert clients[2].recv()[0] == Error(0, "server busy")
        clients[0].send(Error(0, "enough"), tids[0])
        assert wait_for(lambda: served.per_loop() == [0, 1])
        on_cpu(CPUS[1], lambda: first_data(clients[2]))  # the freed slot serves any loop
        assert served.per_loop() == [0, 2]
    finally:
        for client in clients:
            client.close()


@two_cpus
def test_loops_are_pinned_and_shutdown_stops_and_unpins_them(start: Callable[..., Served]) -> None:
    before = os.sched_getaffinity(0)
    served = start(loops=2, cpus=CPUS[:2])
    with RawClient(served.address) as one, RawClient(served.address) as two:
        on_cpu(CPUS[0], lambda: first_data(one))
        on_cpu(CPUS[1], lambda: first_data(two))
        threads = {t.name: t for t in threading.enumerate()}
        assert os.sched_getaffinity(threads["tftp-test-loops"].native_id or 0) == {CPUS[0]}
        assert os.sched_getaffinity(threads["netboot-tftp-2"].native_id or 0) == {CPUS[1]}
        served.loops.shutdown()
        for client in (one, two):  # both loops told their client
            while not isinstance(packet := client.recv()[0], Error):
                pass
            assert packet == Error(0, "server shutting down")
    served.thread.join(5)
    assert not served.thread.is_alive() and "netboot-tftp-2" not in {t.name for t in threading.enumerate()}
    assert served.caller_affinity_after == before  # the thread that called serve_forever is free again
    port = served.address[1]
    served.loops.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))  # every loop let go of the port


@two_cpus
def test_a_storm_from_both_cpus_is_served_by_both_loops(start: Callable[..., Served], tree: Tree) -> None:
    served = start(loops=2, cpus=CPUS[:2], timeout=1.0)
    names = ["sub/inner.bin", "small.txt", "exact.bin", "pxelinux.cfg/default"] * 25
    results = [on_cpu(cpu, lambda: download_many(served.address, names, deadline=60)) for cpu in CPUS[:2]]
    for batch in results:
        for name, result in zip(names, batch, strict=True):
            assert result == tree.files[name], (name, result if isinstance(result, str) else len(result))
    assert served.opened_by.count("tftp-test-loops") == served.opened_by.count("netboot-tftp-2") == 100
    assert wait_for(lambda: len(served.sink.events) == 200)
    assert {e.detail["outcome"] for e in served.sink.events} == {"complete"}


@two_cpus
@pytest.mark.parametrize("tool", ["tftp", "atftp"])
def test_real_clients_on_both_cpus(start: Callable[..., Served], tree: Tree, tmp_path: Path,
                                   tool: str) -> None:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (make test installs it)")
    served = start(loops=2, cpus=CPUS[:2], timeout=1.0)
    host, port = served.address
    for cpu in CPUS[:2]:
        out = tmp_path / f"out-{cpu}"
        if tool == "tftp":
            argv = [path, "-m", "binary", host, str(port), "-c", "get", "f.bin", str(out)]
        else:
            argv = [path, "--option", "blksize 1468", "--option", "windowsize 4", "-g", "-r", "f.bin",
                    "-l", str(out), host, str(port)]
        result = subprocess.run(["taskset", "-c", str(cpu), *argv], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result
        assert out.read_bytes() == tree.files["f.bin"]
    assert served.opened_by == ["tftp-test-loops", "netboot-tftp-2"]
