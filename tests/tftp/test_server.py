"""TftpServer on loopback, driven by a raw client: requests, TIDs, events, resolvers, timeouts, shutdown."""

from __future__ import annotations

import functools
import logging
import os
import select
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from netboot.events import EventRecorder, MemorySink
from netboot.protocol.tftp import Ack, Data, Error, OptionAck, ReadRequest, WriteRequest
from netboot.servers.tftp import AccessDenied, ChainResolver, RootResolver, TftpServer
from tests.tftp.client import RawClient, download_many
from tests.tftp.conftest import FIXTURES, Running, ServerFactory, Tree, fast_extension, wait_for


def test_plain_download_and_its_event(served: Running, tree: Tree) -> None:
    with RawClient(served.address) as client:
        data, accepted, tid = client.download("sub/inner.bin", {"blksize": "1468", "tsize": "0"})
    assert data == tree.files["sub/inner.bin"]
    assert accepted == {"blksize": "1468", "tsize": "70000"}
    assert tid[0] == "127.0.0.1" and tid[1] != served.address[1]  # a new TID per transfer
    assert wait_for(lambda: len(served.events()) == 1)
    event = served.events()[0]
    assert event.phase == "tftp" and event.client_ip == "127.0.0.1"
    assert event.detail["outcome"] == "complete"
    assert event.detail["file"] == "sub/inner.bin"
    assert event.detail["bytes"] == 70000 and event.detail["size"] == 70000
    assert event.detail["options"] == {"blksize": "1468", "tsize": "0"}
    assert event.detail["negotiated"] == {"blksize": "1468", "tsize": "70000"}
    assert event.detail["duration"] >= 0
    assert served.server.active_transfers == 0


def test_finished_transfer_is_logged_at_info(start_server: ServerFactory,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="netboot.tftp")
    run = start_server()
    with RawClient(run.address) as client:
        client.download("small.txt", {"blksize": "1024"})
    assert wait_for(lambda: any("small.txt complete" in r.getMessage() for r in caplog.records))
    line = next(r.getMessage() for r in caplog.records if "small.txt complete" in r.getMessage())
    assert "127.0.0.1:" in line and "bytes=13/13" in line and "blksize=1024" in line and "duration=" in line


def test_ovmf_probe_then_real_download(served: Running, tree: Tree) -> None:
    """The captured OVMF requests, byte for byte: probe, ERROR 8, then windowsize 4 at blksize 1468."""
    with RawClient(served.address) as probe:
        probe.send((FIXTURES / "ovmf-probe.rrq").read_bytes())
        packet, tid = probe.recv()
        assert packet == OptionAck((("tsize", "1035264"), ("blksize", "1468"), ("windowsize", "4")))
        probe.send(Error(8, "User aborted the transfer"), tid)
    with RawClient(served.address) as real:
        raw = (FIXTURES / "ovmf-real.rrq").read_bytes()
        data, accepted, _ = real.download("ipxe.efi", raw_request=raw)
    assert accepted == {"blksize": "1468", "windowsize": "4"}
    assert data == tree.files["ipxe.efi"]
    assert wait_for(lambda: len(served.events()) == 2)
    first, second = sorted(served.events(), key=lambda e: e.time)
    assert first.detail["outcome"] == "aborted" and first.detail["error_code"] == 8
    assert "size probe" in first.summary
    assert second.detail["outcome"] == "complete"


def test_write_request_gets_error_2_and_nothing_is_written(served: Running, tree: Tree) -> None:
    with RawClient(served.address) as client:
        client.send(WriteRequest("upload.bin", "octet"))
        packet, _ = client.recv()
        assert isinstance(packet, Error) and packet.code == 2
        client.send(Data(1, b"evil"))  # to the well-known port
        packet, _ = client.recv()
        assert isinstance(packet, Error) and packet.code == 4
    assert not (tree.root / "upload.bin").exists()
    assert wait_for(lambda: any(e.detail.get("error") == "write request" for e in served.events()))


@pytest.mark.parametrize(("name", "code"), [("nope.bin", 1), ("sub", 2), ("../secret.txt", 2), ("out", 2),
                                            ("fifo", 2)])
def test_refused_requests(served: Running, name: str, code: int) -> None:
    with RawClient(served.address) as client:
        client.send(ReadRequest(name, "octet", (("tsize", "0"),)))
        packet, addr = client.recv()
    assert isinstance(packet, Error) and packet.code == code
    assert addr == served.address
    assert wait_for(lambda: len(served.events()) == 1)
    assert served.events()[0].detail["outcome"] == "refused"
    assert served.events()[0].detail["error_code"] == code


@pytest.mark.parametrize("mode", ["mail", "binary", ""])
def test_unsupported_mode(served: Running, mode: str) -> None:
    with RawClient(served.address) as client:
        client.send(ReadRequest("f.bin", mode))
        packet, _ = client.recv()
    assert isinstance(packet, Error) and packet.code == 4


def test_netascii_mode_translates_line_ends(served: Running) -> None:
    with RawClient(served.address) as client:
        client.send(ReadRequest("small.txt", "netascii", (("tsize", "0"),)))
        packet, tid = client.recv()
        assert packet == OptionAck((("tsize", "16"),))
        client.send(Ack(0), tid)
        packet, _ = client.recv()
    assert packet == Data(1, b"hello\r\nworld\r\0\r\n")


def test_stranger_gets_error_5_and_transfer_completes(served: Running, tree: Tree) -> None:
    with RawClient(served.address) as client, RawClient(served.address) as stranger:
        client.send(ReadRequest("sub/inner.bin"))
        packet, tid = client.recv()
        assert packet == Data(1, tree.files["sub/inner.bin"][:512])
        stranger.send(Ack(1), tid)
        reply, source = stranger.recv()
        assert reply == Error(5, "unknown transfer ID") and source == tid
        stranger.send(b"\x00\x09garbage", tid)
        assert isinstance(stranger.recv()[0], Error)
        chunks, block = [packet.payload], 1
        while len(chunks[-1]) == 512:
            client.send(Ack(block), tid)
            packet, _ = client.recv()
            assert isinstance(packet, Data) and packet.block == block + 1
            chunks.append(packet.payload)
            block += 1
        client.send(Ack(block), tid)
    assert b"".join(chunks) == tree.files["sub/inner.bin"]
    assert wait_for(lambda: served.events() and served.events()[0].detail["outcome"] == "complete")


def test_c_path_and_python_sender_share_their_gso_limits() -> None:
    """The C loop and send_gso batch and fall back by the same numbers (one is the other's fallback)."""
    from netboot.servers import tftp_send as transport

    fast = fast_extension()
    assert (fast.UDP_SEGMENT, fast.GSO_MAX_SEGMENTS, fast.GSO_MAX_BYTES) == (
        transport.UDP_SEGMENT, transport.GSO_MAX_SEGMENTS, transport.GSO_MAX_BYTES)
    assert set(fast.GSO_REFUSED) == transport.GSO_REFUSED


@pytest.mark.parametrize("windowsize", [1, 4, 7])
def test_acks_take_the_c_path_when_built(start_server: ServerFactory, tree: Tree, windowsize: int) -> None:
    """The C set really carries a download, lock-step or windowed, from the second window to the last,
    without waking the interpreter; off, the same download goes through the state machine."""
    run = start_server()
    server: Any = run.server
    poller = server._poller
    woken: list[int] = []  # waits that returned work for Python (not timeouts)

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(poller, name)

        def wait(self, timeout: float) -> Any:
            ready, back = poller.wait(timeout)
            woken.append(len(ready) + len(back))
            return ready, back

    server._poller = Counting()
    with RawClient(run.address) as client:
        data, accepted, _ = client.download("f.bin", {"blksize": "1468", "windowsize": str(windowsize)})
    assert data == tree.files["f.bin"] and accepted["windowsize"] == str(windowsize)
    assert wait_for(lambda: bool(run.events()))
    assert run.events()[0].detail["outcome"] == "complete"
    windows = -(-(len(tree.files["f.bin"]) // 1468 + 1) // windowsize)
    fast = server._fast
    if fast is not None:
        # every window's ACK but the OACK's and the last one (both end a phase in the state machine)...
        assert (fast.answered, fast.handed_back) == (windows - 1, 2)
        # ...and the interpreter wakes only for the request and those two
        assert sum(woken) <= 3


def test_start_and_stop_logs_say_which_path_ran_and_what_it_did(start_server: ServerFactory, tree: Tree,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """An admin reading the log sees which path served the ACKs, and at shutdown what the C path did."""
    caplog.set_level(logging.INFO, logger="netboot.tftp")
    run = start_server(spin=20e-6)
    with RawClient(run.address) as client:
        data, _, _ = client.download("f.bin", {"blksize": "1468"})
    assert data == tree.files["f.bin"]
    run.server.shutdown()
    messages = [record.getMessage() for record in caplog.records]
    server: Any = run.server
    fast = server._fast
    if fast is None:
        assert any("ACK to DATA: pure Python" in m for m in messages)
        assert not any("answered in C" in m for m in messages)
    else:
        assert any("ACK to DATA: C fast path, spin 20 us" in m for m in messages)
        stop = f"{fast.answered} ACKs answered in C, {fast.handed_back} datagrams handed to Python"
        assert fast.answered > 0 and any(stop in m for m in messages)


def test_lock_step_duplicate_ack_sends_nothing_and_lost_data_is_resent(start_server: ServerFactory,
                                                                       tree: Tree) -> None:
    """On the wire, whichever path answers the ACKs: no sorcerer's apprentice, and the retransmission
    timer still knows which block is outstanding after a run of in-order ACKs.

    "Nothing before the timer" can only be seen by waiting: 0.2 s against a 0.6 s timer leaves a busy
    machine 0.4 s between block 6 leaving and the wait starting before the timer's copy is mistaken."""
    run = start_server(timeout=0.6, max_timeout=0.6)
    payload = tree.files["f.bin"]
    with RawClient(run.address) as client:
        client.send(ReadRequest("f.bin"))
        packet, tid = client.recv()
        for block in range(1, 6):
            client.send(Ack(block), tid)
            packet, _ = client.recv()
            assert packet == Data(block + 1, payload[block * 512 : (block + 1) * 512])
        client.send(Ack(5), tid)  # a duplicate of the previous ACK
        client.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv()  # no second copy of block 6 before the timer
        client.sock.settimeout(2.0)
        assert client.recv()[0] == Data(6, payload[5 * 512 : 6 * 512])  # the timer's retransmission
        client.send(Ack(6), tid)
        assert client.recv()[0] == Data(7, payload[6 * 512 : 7 * 512])
        client.send(Error(0, "enough"), tid)
    assert wait_for(lambda: bool(run.events()))
    event = run.events()[0]
    assert event.detail["outcome"] == "aborted" and event.detail["bytes"] == 6 * 512
    assert event.detail["retransmits"] == 1


def test_retransmitted_request_does_not_start_a_second_transfer(served: Running) -> None:
    with RawClient(served.address) as client, RawClient(served.address) as barrier:
        request = ReadRequest("f.bin", "octet", (("blksize", "1468"),))
        client.send(request)
        client.send(request)
        client.send(request)
        # The request port reads its datagrams in order: the answer to one sent after the three copies
        # proves the server has handled all of them (no sleep that a loaded machine may outlast).
        barrier.send(ReadRequest("nope.bin"))
        assert barrier.recv()[0] == Error(1, "file not found")
        assert served.server.active_transfers == 1
        _, tid = client.recv()
        client.sock.settimeout(0)
        try:
            while True:  # whatever else came (an OACK resent by its timer) came from that one transfer
                assert client.recv()[1] == tid
        except BlockingIOError:
            pass
        client.send(Error(0, "bye"), tid)
    assert wait_for(lambda: served.server.active_transfers == 0)
    assert wait_for(lambda: len(served.events()) == 2)  # recorded just after the transfer leaves the table
    assert sorted(e.detail["outcome"] for e in served.events()) == ["aborted", "refused"]


def test_silent_client_times_out_and_is_cleaned_up(start_server: ServerFactory) -> None:
    run = start_server(timeout=0.05, max_timeout=0.1, retries=2)
    with RawClient(run.address) as client:
        client.send(ReadRequest("f.bin"))
        seen = []
        client.sock.settimeout(1.0)
        try:
            while True:
                seen.append(client.recv()[0])
        except TimeoutError:
            pass
    assert seen == [Data(1, seen[0].payload)] * 3  # first send and two retries  # type: ignore[union-attr]
    assert wait_for(lambda: run.server.active_transfers == 0)
    assert wait_for(lambda: bool(run.events()))
    assert run.events()[0].detail["outcome"] == "timed-out"
    assert run.events()[0].detail["retransmits"] == 2


def test_max_blksize_clamps_what_clients_ask(start_server: ServerFactory) -> None:
    run = start_server(max_blksize=1468)
    with RawClient(run.address) as client:
        data, accepted, _ = client.download("sub/inner.bin", {"blksize": "8192"})
    assert accepted == {"blksize": "1468"}
    assert len(data) == 70000


def test_dynamic_content_first_then_root(start_server: ServerFactory, tree: Tree) -> None:
    seen: list[tuple[str, tuple[str, int]]] = []

    def render(name: str, client: tuple[str, int]) -> bytes | None:
        seen.append((name, client))
        if name.startswith("pxelinux.cfg/01-"):
            return f"# for {client[0]} as {name}\nDEFAULT install\n".encode()
        return None

    run = start_server(ChainResolver(render, RootResolver(tree.root)))
    with RawClient(run.address) as client:
        data, accepted, _ = client.download("\\pxelinux.cfg\\01-52-54-00-e2-e0-01", {"tsize": "0"})
        default, _, _ = client.download("/pxelinux.cfg/default")
    assert data == b"# for 127.0.0.1 as pxelinux.cfg/01-52-54-00-e2-e0-01\nDEFAULT install\n"
    assert accepted == {"tsize": str(len(data))}
    assert default == tree.files["pxelinux.cfg/default"]
    assert [name for name, _ in seen] == ["pxelinux.cfg/01-52-54-00-e2-e0-01", "pxelinux.cfg/default"]
    assert not (tree.root / "pxelinux.cfg" / "01-52-54-00-e2-e0-01").exists()  # never written


def test_dynamic_content_never_sees_refused_names(start_server: ServerFactory, tree: Tree) -> None:
    seen: list[str] = []
    run = start_server(ChainResolver(lambda name, client: seen.append(name) or None, RootResolver(tree.root)))
    with RawClient(run.address) as client:
        client.send(ReadRequest("../secret.txt"))
        assert client.recv()[0] == Error(2, "access violation")
    assert seen == []


def test_resolver_crash_is_error_0_and_server_keeps_serving(start_server: ServerFactory, tree: Tree) -> None:
    def render(name: str, client: tuple[str, int]) -> bytes | None:
        if name == "boom":
            raise RuntimeError("template exploded")
        if name == "denied":
            raise AccessDenied("not for you")
        return None

    run = start_server(ChainResolver(render, RootResolver(tree.root)))
    with RawClient(run.address) as client:
        client.send(ReadRequest("boom"))
        assert client.recv()[0] == Error(0, "internal error")
        client.send(ReadRequest("denied"))
        assert client.recv()[0] == Error(2, "access violation")
        data, _, _ = client.download("small.txt")
    assert data == tree.files["small.txt"]


def test_hundreds_of_concurrent_clients(start_server: ServerFactory, tree: Tree) -> None:
    """300 lock-step downloads at once from one client thread; every one byte for byte, no thread each.

    The server keeps its production timer (1 s, not the fixture's 0.2 s): this is about concurrency, and
    one Python thread driving 300 sockets on a loaded machine can be silent for longer than the 3 s that
    a 0.2 s timer doubling over three retries waits before it gives a transfer up."""
    run = start_server(timeout=1.0)
    names = ["sub/inner.bin", "small.txt", "exact.bin", "pxelinux.cfg/default"] * 75
    results = download_many(run.address, names, deadline=60)
    for name, result in zip(names, results, strict=True):
        assert result == tree.files[name], (name, result if isinstance(result, str) else len(result))
    assert wait_for(lambda: len(run.events()) == 300)
    assert {e.detail["outcome"] for e in run.events()} == {"complete"}
    assert threading.active_count() < 20  # no thread per client


def sleeping_in(thread: threading.Thread) -> str:
    """The kernel function ``thread`` sleeps in (Linux /proc wchan): "0" while it runs."""
    try:
        return Path(f"/proc/self/task/{thread.native_id}/wchan").read_text()
    except OSError:
        return ""


@functools.cache
def wchan_names_epoll() -> bool:
    """Whether /proc here shows a thread blocked in epoll_wait as such (a restricted one reads 0)."""
    left, right = socket.socketpair()
    with left, right, select.epoll() as poller:
        poller.register(left, select.EPOLLIN)
        thread = threading.Thread(target=poller.poll, args=(30,), daemon=True)
        thread.start()
        seen = wait_for(lambda: sleeping_in(thread) == "do_epoll_wait", timeout=2)
        right.send(b"x")
        thread.join(30)
    return seen


def test_shutdown_is_prompt_and_tells_clients(tree: Tree) -> None:
    """Shutdown wakes the loop and aborts open transfers instead of waiting them out: the client hears
    ERROR 0 before its transfer's first retransmission (5 s) would come, the loop thread ends, the
    transfer's port is free.

    No stopwatch: the order on the wire says it did not wait. The loop is first seen asleep until that
    timer, so a shutdown that only set a flag (no wake-up) shows as a retransmitted block 1, every time
    rather than when the loop happened to be still awake. The joins are generous hang guards only."""
    sink = MemorySink()
    server = TftpServer(("127.0.0.1", 0), RootResolver(tree.root), EventRecorder(sink), timeout=5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with RawClient(server.server_address, timeout=30) as client:
            client.send(ReadRequest("f.bin"))
            first, tid = client.recv()
            assert isinstance(first, Data) and first.block == 1
            assert server.active_transfers == 1
            if wchan_names_epoll():  # else the loop may still be awake, and a missing wake-up can hide
                assert wait_for(lambda: sleeping_in(thread) == "do_epoll_wait", timeout=30)
            server.shutdown(wait=30)
            thread.join(30)
            assert not thread.is_alive()
            packet, source = client.recv()  # the next datagram: the abort, not a retransmitted block 1
            assert packet == Error(0, "server shutting down") and source == tid
            assert server.active_transfers == 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(tid)  # the transfer's socket is closed by shutdown itself, before close()
        assert [e.detail["outcome"] for e in sink.events] == ["failed"]
        address = server.server_address
        server.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(address)  # and close() let go of the request port
    finally:
        server.shutdown()
        thread.join(5)
        server.close()


def test_shutdown_before_serving_and_close_are_idempotent(tree: Tree) -> None:
    server = TftpServer(("127.0.0.1", 0), RootResolver(tree.root), EventRecorder(MemorySink()))
    server.shutdown()
    server.serve_forever()  # returns at once
    server.close()
    server.close()
    with pytest.raises(RuntimeError):
        server.serve_forever()


def test_recorder_failure_does_not_stop_serving(tree: Tree) -> None:
    class Broken:
        def write(self, event: object) -> None:
            raise OSError("database is gone")

    with TftpServer(("127.0.0.1", 0), RootResolver(tree.root), EventRecorder(Broken())) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with RawClient(server.server_address) as client:
                assert client.download("small.txt")[0] == tree.files["small.txt"]
                assert client.download("small.txt")[0] == tree.files["small.txt"]
        finally:
            server.shutdown()
            thread.join(5)


def test_ipv6_loopback(tree: Tree) -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    sink = MemorySink()
    with TftpServer(("::1", 0), RootResolver(tree.root), EventRecorder(sink)) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.settimeout(3)
            sock.sendto(b"\x00\x01small.txt\x00octet\x00", server.server_address)
            data, addr = sock.recvfrom(1000)
            sock.sendto(b"\x00\x04\x00\x01", addr)
            sock.close()
            assert data == b"\x00\x03\x00\x01" + Path(tree.root / "small.txt").read_bytes()
            assert wait_for(lambda: bool(sink.events))
            assert sink.events[0].client_ip == "::1"
        finally:
            server.shutdown()
            thread.join(5)


SO_NO_CHECK = 11  # <asm-generic/socket.h>: no UDP checksums, which the kernel's UDP GSO refuses (EINVAL)


def _kernel_refuses_gso() -> bool:
    """Whether a UDP socket with SO_NO_CHECK really gets EINVAL for a UDP_SEGMENT send on loopback."""
    from netboot.servers.tftp_send import SOL_UDP, UDP_SEGMENT

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sink.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        try:
            sock.sendmsg([b"x" * 3000], [(SOL_UDP, UDP_SEGMENT, (1000).to_bytes(2, sys.byteorder))], 0,
                           sink.getsockname())
        except OSError:
            return True
        return False


def test_windows_fall_back_to_plain_sends_when_gso_is_refused(start_server: ServerFactory, tree: Tree,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Old kernels and NICs without checksum offload refuse UDP_SEGMENT: the transfer must not notice.

    The refusal is the kernel's own: transfer sockets get SO_NO_CHECK, for which Linux answers a GSO
    send with EINVAL, so the C path and the Python path both meet it for real."""
    if not _kernel_refuses_gso():
        pytest.fail("this kernel sends UDP GSO without checksums; the fallback would go untested")
    plain = TftpServer._transfer_socket

    def unchecked(self: TftpServer, local: str | None) -> socket.socket:
        sock = plain(self, local)
        sock.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        return sock

    monkeypatch.setattr(TftpServer, "_transfer_socket", unchecked)
    run = start_server()
    with caplog.at_level(logging.DEBUG, logger="netboot.tftp"), RawClient(run.address) as client:
        data, accepted, _ = client.download("f.bin", {"blksize": "1468", "windowsize": "8"})
    assert accepted == {"blksize": "1468", "windowsize": "8"}
    assert data == tree.files["f.bin"]
    assert sum("no UDP GSO towards 127.0.0.1" in r.getMessage() for r in caplog.records) == 1


def test_file_truncated_mid_transfer_fails_that_transfer_only(start_server: ServerFactory,
                                                              tmp_path: Path) -> None:
    """pread, not mmap: a file cut short under a transfer costs that transfer an ERROR, not a SIGBUS."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(400_000))
    (root / "ok.txt").write_bytes(b"still here")
    run = start_server(RootResolver(root))
    with RawClient(run.address) as client:
        client.send(ReadRequest("big.bin"))
        packet, tid = client.recv()
        assert isinstance(packet, Data)
        with open(root / "big.bin", "r+b") as f:
            f.truncate(1000)
        errors = []
        block = 1
        for _ in range(200):
            client.send(Ack(block), tid)
            packet, _ = client.recv()
            if isinstance(packet, Error):
                errors.append(packet)
                break
            block = packet.block  # type: ignore[union-attr]
        assert errors == [Error(0, "file changed while being sent")]
        assert client.download("ok.txt")[0] == b"still here"
    assert wait_for(lambda: any(e.detail["outcome"] == "failed" for e in run.events()))
