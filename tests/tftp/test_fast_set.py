"""The C set (``_tftp_fast.FastSet``) on its own, with real sockets on loopback: what it answers, what it
hands back, what it reports, and what it refuses. The transport tests run the same set under the server."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netboot.protocol.tftp import Ack, Data, Error, decode, encode
from tests.tftp.conftest import fast_extension

REPLY = 1024


@pytest.fixture
def fast_set() -> Iterator[Any]:
    fast = fast_extension().FastSet(REPLY, 8, 16)
    yield fast
    fast.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server's transfer socket, client socket), both on 127.0.0.1."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    client.bind(("127.0.0.1", 0))
    client.settimeout(2.0)
    yield server, client
    server.close()
    client.close()


@pytest.fixture
def payload(tmp_path: Path) -> Iterator[tuple[bytes, int]]:
    """A 10-block (512) file that is not a block multiple, and its open descriptor."""
    data = os.urandom(9 * 512 + 100)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield data, fd
    os.close(fd)


def _add(fast: Any, server: socket.socket, client: socket.socket, fd: int, size: int, window: int) -> None:
    ip, port = client.getsockname()
    fast.add(server.fileno(), fd, socket.inet_aton(ip), port, size, window)


def _wait_for_work(fast: Any) -> tuple[list[int], list[tuple[int, bytes, tuple[str, int]]]]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ready, back = fast.wait(0.5)
        if ready or back:
            return ready, back
    raise AssertionError("the set never reported work")


def _serve_until_answered(fast: Any) -> None:
    """Drive wait() until the set has answered an ACK itself; none of those waits has work for Python."""
    deadline = time.monotonic() + 5
    while fast.answered == 0 and time.monotonic() < deadline:
        assert fast.wait(0.05) == ([], [])
    assert fast.answered > 0, "the set never answered the ACK"


def test_watched_descriptor_is_reported_and_left_unread(fast_set: Any,
                                                        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    fast_set.watch(server.fileno())
    client.sendto(b"hello", server.getsockname())
    assert _wait_for_work(fast_set) == ([server.fileno()], [])
    assert server.recvfrom(64) == (b"hello", client.getsockname())  # still there for Python
    fast_set.remove(server.fileno())


def test_wait_returns_empty_at_its_timeout_not_before(fast_set: Any,
                                                      pair: tuple[socket.socket, socket.socket]) -> None:
    fast_set.watch(pair[0].fileno())
    started = time.monotonic()
    assert fast_set.wait(0.05) == ([], [])
    assert time.monotonic() - started >= 0.05


def test_unarmed_transfer_hands_every_datagram_back(fast_set: Any, pair: tuple[socket.socket, socket.socket],
                                                    payload: tuple[bytes, int]) -> None:
    server, client = pair
    data, fd = payload
    _add(fast_set, server, client, fd, len(data), 512)
    client.sendto(encode(Ack(0)), server.getsockname())  # the OACK's ACK: the state machine's
    ready, back = _wait_for_work(fast_set)
    assert ready == [] and back == [(server.fileno(), encode(Ack(0)), client.getsockname())]
    assert (fast_set.answered, fast_set.handed_back) == (0, 1)
    assert fast_set.take(server.fileno())[0] == -1


@pytest.mark.parametrize("windowsize", [1, 4])
def test_armed_transfer_answers_the_expected_ack_with_the_next_window(
        fast_set: Any, pair: tuple[socket.socket, socket.socket], payload: tuple[bytes, int],
        windowsize: int) -> None:
    server, client = pair
    data, fd = payload
    _add(fast_set, server, client, fd, len(data), 512 * windowsize)
    fast_set.arm(server.fileno(), 1, 10, 512, windowsize, True)  # block 1 was sent; 10 blocks in all
    before = time.monotonic()
    client.sendto(encode(Ack(1)), server.getsockname())
    _serve_until_answered(fast_set)
    for block in range(2, 2 + windowsize):
        packet, sender = client.recvfrom(1024)
        assert sender == server.getsockname()
        assert decode(packet) == Data(block, data[(block - 1) * 512 : block * 512])
    acked, progress, gso = fast_set.take(server.fileno())
    assert acked == 1 and before <= progress <= time.monotonic() and gso is True
    assert fast_set.take(server.fileno())[0] == -1  # reported once
    assert (fast_set.spins_caught, fast_set.spins_missed) == (0, 0)  # spin=0 (the default): never


def _lock_step_blocks(payload: bytes) -> int:
    return len(payload) // 512 + 1


def _download_to_a_fast_client(fast: Any, server: socket.socket, client: socket.socket, data: bytes,
                               fd: int) -> None:
    """Add and arm a lock-step transfer, and download it all with a client thread that ACKs each block
    as it lands; the blocks must arrive byte for byte."""
    last = _lock_step_blocks(data)
    received: list[bytes] = []

    def client_loop() -> None:
        for block in range(2, last + 1):
            packet, _ = client.recvfrom(1024)
            received.append(packet)
            client.sendto(encode(Ack(block)), server.getsockname())

    _add(fast, server, client, fd, len(data), 512)
    fast.arm(server.fileno(), 1, last, 512, 1, True)
    thread = threading.Thread(target=client_loop)
    thread.start()
    try:
        client.sendto(encode(Ack(1)), server.getsockname())
        ready, back = _wait_for_work(fast)  # returns with the last block's ACK, the state machine's
        assert ready == [] and back == [(server.fileno(), encode(Ack(last)), client.getsockname())]
    finally:
        thread.join(5)
    assert [decode(packet) for packet in received] == [
        Data(block, data[(block - 1) * 512 : block * 512]) for block in range(2, last + 1)]


def test_spin_catches_an_ack_that_is_there_before_the_loop_would_sleep(
        pair: tuple[socket.socket, socket.socket], payload: tuple[bytes, int]) -> None:
    """A client on this host can ACK a block before the loop that sent it has gone back to sleep: the
    spin after each answer polls for that ACK instead of sleeping, finds it, and answers it at once.

    Without eager reads (0 rounds) nothing but the spin reads the socket between two answers, so ACKs
    queued before wait() are each found by a spin: caught, counted, answered, whatever the machine's
    load (a client thread racing a 10 ms spin is not, on two busy cores). The duplicate ACK at the end
    is handed back, which ends the wait; its 5 s are only a hang guard."""
    server, client = pair
    data, fd = payload
    fast = fast_extension().FastSet(REPLY, 0, 0, 0.01)  # no eager reads; backoff 0: every answer spins
    try:
        _add(fast, server, client, fd, len(data), 512)
        fast.arm(server.fileno(), 1, _lock_step_blocks(data), 512, 1, True)
        for block in (1, 2, 1):  # ACK 2 before DATA 2 has left: the fastest client there can be
            client.sendto(encode(Ack(block)), server.getsockname())
        assert fast.wait(5.0) == ([], [(server.fileno(), encode(Ack(1)), client.getsockname())])
        assert (fast.answered, fast.spins_caught, fast.spins_missed) == (2, 2, 0)
        assert fast.take(server.fileno())[0] == 2
    finally:
        fast.close()
    for block in (2, 3):
        assert decode(client.recvfrom(1024)[0]) == Data(block, data[(block - 1) * 512 : block * 512])


def test_spinning_download_to_a_client_thread_is_byte_for_byte(
        pair: tuple[socket.socket, socket.socket], payload: tuple[bytes, int]) -> None:
    """A client thread ACKing each block as it lands, against a loop that spins after every answer:
    every block byte for byte, every ACK but the last answered in C, and a spin after each answer
    (caught or missed: which of the two is the scheduler's business, not this test's)."""
    server, client = pair
    data, fd = payload
    last = _lock_step_blocks(data)
    fast = fast_extension().FastSet(REPLY, 8, 0, 0.01)  # backoff 0: every answer spins, even after a miss
    try:
        _download_to_a_fast_client(fast, server, client, data, fd)
    finally:
        fast.close()
    assert fast.answered == last - 1
    assert 1 <= fast.spins_caught + fast.spins_missed <= last - 1


def test_no_spin_while_the_port_serves_more_transfers_than_the_limit(
        pair: tuple[socket.socket, socket.socket], payload: tuple[bytes, int]) -> None:
    """The loops of one port share a TransferCount. With a spin limit of 1, a loop does not spin while
    another loop holds a transfer too (with two clients the CPU is worth more to them than to the spin),
    and spins again once that transfer is gone."""
    ext = fast_extension()
    server, client = pair
    data, fd = payload
    count = ext.TransferCount()
    fast = ext.FastSet(REPLY, 8, 0, 0.01, 1, count)
    other = ext.FastSet(REPLY, 8, 0, 0.01, 1, count)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as idle:
        idle.bind(("127.0.0.1", 0))
        try:
            other.add(idle.fileno(), fd, socket.inet_aton("127.0.0.1"), 9, len(data), 512)
            _download_to_a_fast_client(fast, server, client, data, fd)
            assert count.value == 2 and fast.answered == _lock_step_blocks(data) - 1
            assert fast.spins_caught == fast.spins_missed == 0
            fast.remove(server.fileno())
            other.remove(idle.fileno())
            assert count.value == 0
            _download_to_a_fast_client(fast, server, client, data, fd)  # alone now: it spins again
            assert count.value == 1 and fast.spins_caught + fast.spins_missed >= 1
        finally:
            fast.close()
            other.close()
    assert count.value == 0


def test_transfer_count_follows_the_sets_that_share_it(pair: tuple[socket.socket, socket.socket],
                                                       payload: tuple[bytes, int]) -> None:
    ext = fast_extension()
    server, client = pair
    data, fd = payload
    count = ext.TransferCount()
    one, two = ext.FastSet(REPLY, 8, 0, 0.0, 1, count), ext.FastSet(REPLY, 8, 0, 0.0, 1, count)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as idle:
        one.watch(client.fileno())  # a watched descriptor is not a transfer
        assert count.value == 0
        _add(one, server, client, fd, len(data), 512)
        two.add(idle.fileno(), fd, socket.inet_aton("127.0.0.1"), 9, len(data), 512)
        assert (count.value, one.transfers, two.transfers) == (2, 1, 1)
        one.remove(server.fileno())
        assert (count.value, one.transfers) == (1, 0)
        two.close()  # a closed set's transfers leave the count with it
        assert count.value == 0
        one.close()
    with pytest.raises(TypeError, match="count must be a TransferCount"):
        ext.FastSet(REPLY, 8, 0, 0.0, 1, object())
    alone = ext.FastSet(REPLY, 8, 0)
    assert alone.spin_limit > 1 << 30  # no limit unless asked
    alone.close()


def test_spin_that_finds_nothing_pauses_spinning(pair: tuple[socket.socket, socket.socket],
                                                 tmp_path: Path) -> None:
    """A client that answers only after the loop gave up (here: after each wait() returned, as a
    client across a real network would) costs one missed spin, then eager_backoff answers without one,
    twice as many after each further miss in a row."""
    server, client = pair
    data = os.urandom(30 * 512 + 1)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    fast = fast_extension().FastSet(REPLY, 8, 2, 0.001)  # backoff 2: pauses of 2, 4, 8, ... waits
    misses_at = {1, 4, 9, 18}  # each miss, then its pause, then the next spin misses again
    try:
        _add(fast, server, client, fd, len(data), 512)
        fast.arm(server.fileno(), 1, _lock_step_blocks(data), 512, 1, True)
        for block in range(1, 21):
            client.sendto(encode(Ack(block)), server.getsockname())
            # answered, then no ACK before the timeout; the 1 ms spin must start before that timeout (a
            # later start is no spin at all), so the timeout leaves room for a busy machine's scheduler
            assert fast.wait(0.1) == ([], [])
            assert decode(client.recvfrom(1024)[0]) == Data(block + 1, data[block * 512 : (block + 1) * 512])
            assert fast.spins_missed == len([wait for wait in misses_at if wait <= block])
            fast.take(server.fileno())
        assert fast.spins_caught == 0
    finally:
        fast.close()
        os.close(fd)


def test_stranger_and_wrong_block_are_handed_back_unanswered(
        fast_set: Any, pair: tuple[socket.socket, socket.socket], payload: tuple[bytes, int]) -> None:
    server, client = pair
    data, fd = payload
    _add(fast_set, server, client, fd, len(data), 512)
    fast_set.arm(server.fileno(), 3, 10, 512, 1, True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.sendto(encode(Ack(3)), server.getsockname())
        assert _wait_for_work(fast_set)[1] == [(server.fileno(), encode(Ack(3)), stranger.getsockname())]
    for wrong in (encode(Ack(2)), encode(Error(0, "stop")), b"\x00\x04"):
        client.sendto(wrong, server.getsockname())
        assert _wait_for_work(fast_set)[1] == [(server.fileno(), wrong, client.getsockname())]
    assert fast_set.answered == 0 and fast_set.take(server.fileno())[0] == -1


def test_ack_of_the_last_block_is_the_state_machines(fast_set: Any, pair: tuple[socket.socket, socket.socket],
                                                     payload: tuple[bytes, int]) -> None:
    server, client = pair
    data, fd = payload
    _add(fast_set, server, client, fd, len(data), 512)
    fast_set.arm(server.fileno(), 10, 10, 512, 1, True)
    client.sendto(encode(Ack(10)), server.getsockname())
    assert _wait_for_work(fast_set)[1] == [(server.fileno(), encode(Ack(10)), client.getsockname())]


def test_misuse_is_refused(fast_set: Any, pair: tuple[socket.socket, socket.socket],
                           payload: tuple[bytes, int]) -> None:
    server, client = pair
    data, fd = payload
    _add(fast_set, server, client, fd, len(data), 512)
    with pytest.raises(KeyError):
        _add(fast_set, server, client, fd, len(data), 512)  # twice
    with pytest.raises(KeyError):
        fast_set.take(client.fileno())  # never added
    with pytest.raises(ValueError):
        fast_set.arm(server.fileno(), 1, 10, 512, 2, True)  # a window larger than any added
    fast_set.arm(server.fileno(), 1, 10, 512, 1, True)
    client.sendto(encode(Ack(1)), server.getsockname())
    _serve_until_answered(fast_set)
    with pytest.raises(RuntimeError):
        fast_set.arm(server.fileno(), 2, 10, 512, 1, True)  # the answered ACK was never taken
    fast_set.remove(server.fileno())
    fast_set.watch(server.fileno())
    with pytest.raises(ValueError):
        fast_set.arm(server.fileno(), 1, 10, 512, 1, True)  # watched, not a transfer
    fast_set.close()
    with pytest.raises(ValueError):
        fast_set.wait(0)
    for spin in (-1.0, 0.5, float("nan")):  # a spin is microseconds, never a sleep in disguise
        with pytest.raises(ValueError):
            fast_extension().FastSet(REPLY, 8, 16, spin)
    with pytest.raises(ValueError):
        fast_extension().FastSet(REPLY, 8, 4096, 50e-6)  # a pause longer than the doubling's cap
    with pytest.raises(ValueError):
        fast_extension().FastSet(REPLY, 8, 16, 50e-6, -1)  # a negative spin limit
