"""ReadTransfer driven packet by packet, with a fake clock: every RFC rule without a network."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netboot.protocol.tftp import (
    Ack,
    BytesSource,
    Data,
    Error,
    Limits,
    OptionAck,
    Outcome,
    Packet,
    ReadRequest,
    ReadTransfer,
    Send,
    datagrams,
    decode,
    encode,
    negotiate,
)
from tests.tftp.conftest import FIXTURES

CLIENT = ("10.88.0.135", 1057)
STRANGER = ("10.88.0.99", 1057)
SAME_HOST_OTHER_PORT = ("10.88.0.135", 1058)


def packets(sends: list[Send]) -> list[Packet]:
    """Decode what the machine wants sent, checking it all goes to the client."""
    assert all(dest == CLIENT for _, dest, _ in sends)
    return [decode(datagram) for send in sends for datagram in datagrams(send)]


def blocks(sends: list[Send]) -> list[int]:
    out = []
    for packet in packets(sends):
        assert isinstance(packet, Data)
        out.append(packet.block)
    return out


def ack(block: int) -> bytes:
    return encode(Ack(block))


def machine(data: bytes, *, limits: Limits | None = None, **options: str) -> ReadTransfer:
    request = ReadRequest("f.bin", "octet", tuple(options.items()))
    return ReadTransfer(request, BytesSource(data), CLIENT, limits or Limits())


DATA = os.urandom(10 * 512 + 100)  # 11 blocks at 512


# ------------------------------------------------------------------------------------ negotiation


@pytest.mark.parametrize(
    ("options", "blksize", "windowsize", "accepted"),
    [
        ({"blksize": "1468"}, 1468, 1, {"blksize": "1468"}),
        ({"blksize": "70000"}, 65464, 1, {"blksize": "65464"}),
        ({"blksize": "8"}, 8, 1, {"blksize": "8"}),
        ({"blksize": "7"}, 512, 1, {}),
        ({"blksize": "abc"}, 512, 1, {}),
        ({"blksize": "1_468"}, 512, 1, {}),
        ({"blksize": " 1468"}, 512, 1, {}),
        ({"blksize": "-1"}, 512, 1, {}),
        ({"blksize": ""}, 512, 1, {}),
        ({"windowsize": "4"}, 512, 4, {"windowsize": "4"}),
        ({"windowsize": "0"}, 512, 1, {}),
        ({"windowsize": "65536"}, 512, 1, {}),
        ({"windowsize": "1000"}, 512, 64, {"windowsize": "64"}),
        ({"tsize": "0"}, 512, 1, {"tsize": "5220"}),
        ({"tsize": "x"}, 512, 1, {}),
        ({"timeout": "3"}, 512, 1, {"timeout": "3"}),
        ({"timeout": "0"}, 512, 1, {}),
        ({"timeout": "256"}, 512, 1, {}),
        ({"multicast": "", "utimeout": "1000", "rollover": "0"}, 512, 1, {}),
    ],
)
def test_negotiation(options: dict[str, str], blksize: int, windowsize: int,
                     accepted: dict[str, str]) -> None:
    result = negotiate(tuple(options.items()), len(DATA), Limits())
    assert (result.blksize, result.windowsize, dict(result.accepted)) == (blksize, windowsize, accepted)


def test_blksize_clamped_to_configured_path_mtu() -> None:
    result = negotiate((("blksize", "8192"),), 10, Limits(max_blksize=1468))
    assert result.blksize == 1468
    assert result.accepted == (("blksize", "1468"),)


def test_negotiated_options_keep_request_order_and_first_duplicate() -> None:
    result = negotiate((("tsize", "0"), ("blksize", "1408"), ("blksize", "9000")), 77, Limits())
    assert result.accepted == (("tsize", "77"), ("blksize", "1408"))


# ---------------------------------------------------------------------------------- basic flows


def test_no_options_sends_data_1_at_once_and_completes() -> None:
    t = machine(DATA)
    assert blocks(t.start(0.0)) == [1]
    for block in range(1, 11):
        assert blocks(t.receive(ack(block), CLIENT, 0.1)) == [block + 1]
    assert not t.finished
    assert t.receive(ack(11), CLIENT, 0.2) == []
    assert t.finished and t.outcome is Outcome.COMPLETE
    assert t.bytes_acked == len(DATA)
    assert t.deadline is None


def test_file_data_is_exact() -> None:
    t = machine(DATA, blksize="1000")
    sends = t.start(0.0)
    assert packets(sends) == [OptionAck((("blksize", "1000"),))]
    got = []
    block = 0
    while not t.finished:
        sends = t.receive(ack(block), CLIENT, 0.0)
        for p in packets(sends):
            assert isinstance(p, Data)
            got.append(p.payload)
            block = p.block
    assert b"".join(got) == DATA


def test_block_multiple_ends_with_an_empty_block() -> None:
    t = machine(b"x" * 1024)
    t.start(0.0)
    t.receive(ack(1), CLIENT, 0.0)
    last = packets(t.receive(ack(2), CLIENT, 0.0))
    assert last == [Data(3, b"")]
    t.receive(ack(3), CLIENT, 0.0)
    assert t.outcome is Outcome.COMPLETE


def test_empty_file_is_one_empty_block_without_tsize() -> None:
    """No OACK "tsize 0": curl aborts on it; leaving an option out is always allowed (RFC 2347)."""
    t = machine(b"", tsize="0")
    assert packets(t.start(0.0)) == [Data(1, b"")]
    t.receive(ack(1), CLIENT, 0.0)
    assert t.outcome is Outcome.COMPLETE
    t = machine(b"", tsize="0", blksize="1468")
    assert packets(t.start(0.0)) == [OptionAck((("blksize", "1468"),))]


def test_oack_waits_for_ack_0_and_ignores_other_acks() -> None:
    t = machine(DATA, blksize="1468")
    t.start(0.0)
    assert t.receive(ack(1), CLIENT, 0.1) == []
    assert blocks(t.receive(ack(0), CLIENT, 0.2)) == [1]


def test_oack_is_retransmitted_on_timeout() -> None:
    t = machine(DATA, tsize="0")
    first = t.start(0.0)
    assert t.on_timeout(0.5) == []  # not yet
    again = t.on_timeout(1.0)
    assert packets(again) == packets(first)


# ------------------------------------------------------------------------------------ loss


def test_lost_data_is_retransmitted_with_backoff_and_bounded_retries() -> None:
    t = machine(DATA, limits=Limits(timeout=1.0, max_timeout=3.0, retries=3))
    t.start(0.0)
    assert t.deadline == 1.0
    assert blocks(t.on_timeout(1.0)) == [1]
    assert t.deadline == 3.0  # 2 s
    assert blocks(t.on_timeout(3.0)) == [1]
    assert t.deadline == 6.0  # capped at 3 s
    assert blocks(t.on_timeout(6.0)) == [1]
    assert t.on_timeout(9.0) == []
    assert t.finished and t.outcome is Outcome.TIMED_OUT
    assert t.retransmits == 3


def test_progress_resets_backoff_and_retries() -> None:
    t = machine(DATA, limits=Limits(timeout=1.0, retries=1))
    t.start(0.0)
    t.on_timeout(1.0)  # one retry used, rto now 2
    assert blocks(t.receive(ack(1), CLIENT, 1.5)) == [2]
    assert t.deadline == 2.5  # base timeout again
    assert blocks(t.on_timeout(2.5)) == [2]  # and a fresh retry budget


def test_lost_ack_then_late_duplicate_sends_nothing_extra() -> None:
    """Sorcerer's apprentice: the ACK for the retransmitted DATA must not double the stream."""
    t = machine(DATA)
    t.start(0.0)
    assert blocks(t.on_timeout(1.0)) == [1]  # our DATA 1 (or the client's ACK 1) was lost
    assert blocks(t.receive(ack(1), CLIENT, 1.1)) == [2]
    assert t.receive(ack(1), CLIENT, 1.2) == []  # ACK of the duplicate DATA 1
    assert blocks(t.receive(ack(2), CLIENT, 1.3)) == [3]


def test_duplicate_ack_in_lock_step_is_ignored() -> None:
    t = machine(DATA)
    t.start(0.0)
    assert blocks(t.receive(ack(1), CLIENT, 0.1)) == [2]
    for _ in range(5):
        assert t.receive(ack(1), CLIENT, 0.2) == []
    assert t.deadline == pytest.approx(1.1)  # duplicates do not push the timer either


def test_ack_for_a_block_never_sent_is_ignored() -> None:
    t = machine(DATA)
    t.start(0.0)
    assert t.receive(ack(7), CLIENT, 0.1) == []
    assert t.receive(ack(65535), CLIENT, 0.1) == []
    assert blocks(t.receive(ack(1), CLIENT, 0.2)) == [2]


# -------------------------------------------------------------------------------- windowsize


def test_window_of_four_like_ovmf() -> None:
    t = machine(DATA, blksize="512", windowsize="4")
    t.start(0.0)
    assert blocks(t.receive(ack(0), CLIENT, 0.0)) == [1, 2, 3, 4]
    assert blocks(t.receive(ack(4), CLIENT, 0.0)) == [5, 6, 7, 8]
    assert blocks(t.receive(ack(8), CLIENT, 0.0)) == [9, 10, 11]
    t.receive(ack(11), CLIENT, 0.0)
    assert t.outcome is Outcome.COMPLETE


def test_window_with_a_gap_restarts_after_the_last_block_in_order() -> None:
    t = machine(DATA, windowsize="4")
    t.start(0.0)
    t.receive(ack(0), CLIENT, 0.0)  # 1..4 sent, 3 lost
    assert blocks(t.receive(ack(2), CLIENT, 0.1)) == [3, 4, 5, 6]
    assert t.receive(ack(2), CLIENT, 0.1) == []  # stale: the client saw 4 out of order too
    assert blocks(t.receive(ack(6), CLIENT, 0.2)) == [7, 8, 9, 10]


def test_window_whose_first_block_was_lost_is_resent_once() -> None:
    t = machine(DATA, windowsize="4")
    t.start(0.0)
    t.receive(ack(0), CLIENT, 0.0)
    assert blocks(t.receive(ack(4), CLIENT, 0.1)) == [5, 6, 7, 8]  # 5 lost
    assert blocks(t.receive(ack(4), CLIENT, 0.2)) == [5, 6, 7, 8]
    assert t.receive(ack(4), CLIENT, 0.2) == []
    assert t.receive(ack(4), CLIENT, 0.2) == []


def test_no_apprentice_cascade_after_a_retransmitted_window() -> None:
    """Timeout resends a window that was only late: its duplicates' ACKs must not double later windows."""
    t = machine(DATA, windowsize="2")
    t.start(0.0)
    t.receive(ack(0), CLIENT, 0.0)  # 1, 2 sent, delayed
    assert blocks(t.on_timeout(1.0)) == [1, 2]
    assert blocks(t.receive(ack(2), CLIENT, 1.1)) == [3, 4]  # first copies arrived
    assert t.receive(ack(2), CLIENT, 1.1) == []  # the client re-ACKs for the duplicate 1, 2
    assert blocks(t.receive(ack(4), CLIENT, 1.2)) == [5, 6]
    assert blocks(t.receive(ack(4), CLIENT, 1.3)) == [5, 6]  # a clean window: first-block loss honoured


def test_window_timeout_resends_from_first_unacknowledged() -> None:
    t = machine(DATA, windowsize="4")
    t.start(0.0)
    t.receive(ack(0), CLIENT, 0.0)
    t.receive(ack(4), CLIENT, 0.1)
    assert blocks(t.on_timeout(1.1)) == [5, 6, 7, 8]


def test_window_never_passes_the_end() -> None:
    t = machine(b"z" * 600, windowsize="8")
    t.start(0.0)
    assert blocks(t.receive(ack(0), CLIENT, 0.0)) == [1, 2]


def _drain(t: ReadTransfer, first: list[Send]) -> bytes:
    """Receive everything, ACKing each window's last block like RFC 7440 firmware."""
    got: list[bytes] = []
    sends = first
    while sends:
        data = [p for p in packets(sends) if isinstance(p, Data)]
        got.extend(p.payload for p in data)
        sends = t.receive(ack(data[-1].block), CLIENT, 0.0)
    assert t.outcome is Outcome.COMPLETE
    return b"".join(got)


@pytest.mark.parametrize("windowsize", ["1", "3", "8"])
def test_block_numbers_wrap_to_zero_past_65535(windowsize: str) -> None:
    data = os.urandom(8 * 70_000 + 3)
    t = machine(data, blksize="8", windowsize=windowsize)
    t.start(0.0)
    assert _drain(t, t.receive(ack(0), CLIENT, 0.0)) == data


def test_wrapped_window_gap_restarts_correctly() -> None:
    data = os.urandom(8 * 65_540)
    t = machine(data, blksize="8", windowsize="4")
    t.start(0.0)
    sends = t.receive(ack(0), CLIENT, 0.0)
    while True:  # walk windows up to the one that crosses 65535 -> 0
        last = blocks(sends)[-1]
        sends = t.receive(ack(last), CLIENT, 0.0)
        if last == 65532:
            break
    assert blocks(sends) == [65533, 65534, 65535, 0]
    assert blocks(t.receive(ack(65534), CLIENT, 0.0)) == [65535, 0, 1, 2]  # gap at 65535


# --------------------------------------------------------------------------- TIDs and errors


@pytest.mark.parametrize("stranger", [STRANGER, SAME_HOST_OTHER_PORT])
def test_stranger_gets_error_5_and_the_transfer_is_undisturbed(stranger: tuple[str, int]) -> None:
    t = machine(DATA)
    t.start(0.0)
    deadline = t.deadline
    replies = t.receive(ack(1), stranger, 0.5)
    assert len(replies) == 1
    data, dest, _ = replies[0]
    assert dest == stranger
    assert decode(data) == Error(5, "unknown transfer ID")
    assert t.deadline == deadline and t.acked_blocks == 0
    assert t.receive(encode(Error(0, "die")), stranger, 0.5) == []  # never answer an ERROR
    assert not t.finished
    assert blocks(t.receive(ack(1), CLIENT, 0.6)) == [2]


def test_client_error_mid_transfer_ends_it() -> None:
    t = machine(DATA)
    t.start(0.0)
    t.receive(ack(1), CLIENT, 0.1)
    assert t.receive(encode(Error(0, "disk full")), CLIENT, 0.2) == []
    assert t.finished and t.outcome is Outcome.ABORTED
    assert t.error == (0, "disk full")
    assert t.bytes_acked == 512
    assert t.receive(ack(2), CLIENT, 0.3) == []
    assert t.on_timeout(99.0) == []


def test_edk2_tsize_probe_then_abort() -> None:
    """OVMF: RRQ tsize 0 blksize 1468 windowsize 4, reads tsize from the OACK, then ERROR 8."""
    request = decode((FIXTURES / "ovmf-probe.rrq").read_bytes())
    assert isinstance(request, ReadRequest)
    size = 1_035_264
    t = ReadTransfer(request, BytesSource(bytes(size)), CLIENT, Limits())
    (data, _, _), = t.start(0.0)
    assert data == b"\x00\x06tsize\x001035264\x00blksize\x001468\x00windowsize\x004\x00"
    t.receive(b"\x00\x05\x00\x08User aborted the transfer\x00", CLIENT, 0.01)
    assert t.outcome is Outcome.ABORTED and t.error == (8, "User aborted the transfer")
    assert t.bytes_acked == 0


def test_edk2_real_request_runs_windows_of_four_at_1468() -> None:
    request = decode((FIXTURES / "ovmf-real.rrq").read_bytes())
    assert isinstance(request, ReadRequest)
    data = os.urandom(100_000)
    t = ReadTransfer(request, BytesSource(data), CLIENT, Limits())
    assert packets(t.start(0.0)) == [OptionAck((("blksize", "1468"), ("windowsize", "4")))]
    first = t.receive(ack(0), CLIENT, 0.0)
    assert [len(p.payload) for p in packets(first) if isinstance(p, Data)] == [1468] * 4
    assert _drain(t, first) == data


def test_garbage_from_the_client_is_ignored() -> None:
    t = machine(DATA)
    t.start(0.0)
    for junk in (b"", b"\x00", b"\x00\x09zz", encode(Data(1, b"x")), b"\x00\x01f\x00octet\x00"):
        assert t.receive(junk, CLIENT, 0.1) == []
    assert not t.finished and t.ignored == 5


def test_server_abort_tells_the_client() -> None:
    t = machine(DATA)
    t.start(0.0)
    assert packets(t.abort(0, "server shutting down")) == [Error(0, "server shutting down")]
    assert t.outcome is Outcome.FAILED
    assert t.abort(0, "again") == []


class Shrinking(BytesSource):
    def read(self, offset: int, length: int) -> memoryview:
        return super().read(offset, length)[: max(0, length - 10)]


def test_file_that_shrinks_fails_cleanly() -> None:
    t = ReadTransfer(ReadRequest("f"), Shrinking(DATA), CLIENT, Limits())
    assert packets(t.start(0.0)) == [Error(0, "file changed while being sent")]
    assert t.outcome is Outcome.FAILED


def test_negotiated_timeout_is_the_retransmission_delay() -> None:
    t = machine(DATA, timeout="3")
    t.start(0.0)
    t.receive(ack(0), CLIENT, 0.0)
    assert t.deadline == 3.0


def test_start_twice_is_a_bug() -> None:
    t = machine(DATA)
    t.start(0.0)
    with pytest.raises(RuntimeError):
        t.start(0.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=8), st.booleans(), st.floats(0, 100)), max_size=30))
def test_any_input_sequence_never_raises(events: list[tuple[bytes, bool, float]]) -> None:
    t = machine(DATA, windowsize="3", blksize="600")
    t.start(0.0)
    for data, from_client, when in events:
        t.receive(data, CLIENT if from_client else STRANGER, when)
        t.on_timeout(when)
    assert t.finished or t.deadline is not None


def test_a_window_is_one_buffer_of_back_to_back_datagrams() -> None:
    """The layout the transport hands to UDP GSO: equal segments of blksize+4, the last one shorter."""
    t = machine(b"a" * 1000 + b"b" * 1000 + b"c" * 10, blksize="1000", windowsize="4")
    t.start(0.0)
    (send,) = t.receive(ack(0), CLIENT, 0.0)
    data, dest, segment = send
    assert dest == CLIENT and segment == 1004
    assert [bytes(d) for d in datagrams(send)] == [
        b"\x00\x03\x00\x01" + b"a" * 1000, b"\x00\x03\x00\x02" + b"b" * 1000, b"\x00\x03\x00\x03" + b"c" * 10]
    assert len(data) == 1004 * 2 + 14


def test_lock_step_sends_single_datagrams() -> None:
    t = machine(DATA)
    (send,) = t.start(0.0)
    assert send[2] == 0 and datagrams(send) == [send[0]]


# ------------------------------------------------------------------------------- the C fast path


def _state(t: ReadTransfer) -> tuple[object, ...]:
    return (t.acked_blocks, t.deadline, t.finished, t.fast_path_position(), t.bytes_acked, t.retransmits,
            t._dup_ok, t._resent)


def _rest_by_windows(t: ReadTransfer) -> list[bytes]:
    """ACK the last block sent until the transfer completes; the DATA payloads it sent on the way."""
    got = []
    while not t.finished:
        position = t.fast_path_position()
        assert position is not None
        for packet in packets(t.receive(ack(position[0]), CLIENT, 10.0)):
            assert isinstance(packet, Data)
            got.append(packet.payload)
    assert t.outcome is Outcome.COMPLETE
    return got


FAST_CASES = {
    "lock-step": ({}, DATA),
    "lock-step-1468": ({"blksize": "1468"}, DATA * 3),
    "lock-step-8": ({"tsize": "0", "blksize": "8"}, DATA[:2000]),
    "window-4": ({"windowsize": "4"}, DATA * 3),
    "window-3-blksize-8": ({"windowsize": "3", "blksize": "8"}, DATA[:2000]),
}


@pytest.mark.parametrize("case", FAST_CASES)
@pytest.mark.parametrize("windows", [1, 2, 5])
@pytest.mark.parametrize("retransmitted", [False, True], ids=["fresh", "after-timeout"])
def test_fast_path_acked_leaves_the_machine_where_the_acks_would(case: str, windows: int,
                                                                  retransmitted: bool) -> None:
    """What the C fast path reports must be indistinguishable from the same ACKs fed to receive(),
    including whether a duplicate of the last ACK is honoured after a retransmitted window."""
    options, data = FAST_CASES[case]
    by_acks, reported = machine(data, **options), machine(data, **options)
    for t in (by_acks, reported):
        if options:
            t.start(0.0)
            t.receive(ack(0), CLIENT, 0.5)
        else:
            t.start(0.5)
        if retransmitted:
            assert t.on_timeout(t.deadline or 0)
    position = by_acks.fast_path_position()
    assert position is not None and position == reported.fast_path_position()
    sent, last, _, windowsize = position
    for _ in range(windows):
        position = by_acks.fast_path_position()
        assert position is not None
        window = list(range(position[0] + 1, min(position[0] + windowsize, last) + 1))
        assert blocks(by_acks.receive(ack(position[0]), CLIENT, 2.0)) == [n & 0xFFFF for n in window]
    reported.fast_path_acked(sent + (windows - 1) * windowsize, 2.0)
    assert _state(by_acks) == _state(reported)
    # ... and the two go on identically: a duplicate ACK, a retransmission, the rest of the file.
    acked = by_acks.acked_blocks
    assert by_acks.receive(ack(acked), CLIENT, 3.0) == reported.receive(ack(acked), CLIENT, 3.0)
    assert by_acks.on_timeout(by_acks.deadline or 0) == reported.on_timeout(reported.deadline or 0)
    assert _rest_by_windows(by_acks) == _rest_by_windows(reported)


def test_fast_path_position_while_data_flows() -> None:
    windowed = machine(DATA, windowsize="4")
    windowed.start(0.0)
    assert windowed.fast_path_position() is None  # OACK pending
    windowed.receive(ack(0), CLIENT, 0.1)
    assert windowed.fast_path_position() == (4, 11, 512, 4)
    windowed.receive(ack(2), CLIENT, 0.2)  # a gap: the window is resent from block 3
    assert windowed.fast_path_position() == (6, 11, 512, 4)
    plain = machine(DATA)
    assert plain.fast_path_position() is None  # not started
    plain.start(0.0)
    assert plain.fast_path_position() == (1, 11, 512, 1)
    _rest_by_windows(plain)
    assert plain.fast_path_position() is None


@pytest.mark.parametrize("acked", [2, 3, 5, 11, 12])
def test_fast_path_acked_refuses_what_the_fast_path_may_not_do(acked: int) -> None:
    """Nothing before the last block sent, nothing inside a window, and never the last block (its ACK
    finishes the transfer)."""
    t = machine(DATA, windowsize="4")
    t.start(0.0)
    with pytest.raises(RuntimeError):
        t.fast_path_acked(4, 0.1)  # OACK still pending
    t.receive(ack(0), CLIENT, 0.1)
    with pytest.raises(RuntimeError):
        t.fast_path_acked(acked, 1.0)
