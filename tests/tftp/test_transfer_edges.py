"""Edges of the TFTP engine and codec that the scenario tests pass over: exact refusals, the stranger's
ERROR, the state an abort or a timeout leaves (what the transport logs and schedules from)."""

from __future__ import annotations

import pytest

from netboot.protocol.errors import DecodeError
from netboot.protocol.tftp import (
    BytesSource,
    ErrorCode,
    Limits,
    Outcome,
    ReadRequest,
    ReadTransfer,
    decode,
    error_datagram,
)

CLIENT = ("10.88.0.135", 1057)
STRANGER = ("10.88.0.99", 1057)


def transfer(**options: str) -> ReadTransfer:
    request = ReadRequest("f.bin", "octet", tuple(options.items()))
    return ReadTransfer(request, BytesSource(b"x" * 3000), CLIENT, Limits(timeout=1.0))


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (b"\x00\x01f.bin", "TFTP request filename is not NUL-terminated"),
        (b"\x00\x01f.bin\x00octet", "TFTP request mode is not NUL-terminated"),
        (b"\x00\x02f.bin\x00", "TFTP request mode is not NUL-terminated"),
    ],
)
def test_an_unterminated_request_names_what_is_missing(datagram: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(datagram)
    assert str(info.value) == message


def test_a_stranger_gets_one_unknown_tid_error_as_one_datagram_and_no_answer_to_its_error() -> None:
    t = transfer()
    t.start(0.0)
    assert t.receive(b"\x00\x04\x00\x01", STRANGER, 0.1) == [
        (error_datagram(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), STRANGER, 0)
    ]
    assert t.receive(b"\x00\x05", STRANGER, 0.1) == []  # a bare ERROR: never answered with one
    assert t.receive(b"\x00\x05\x00\x01oops\x00", STRANGER, 0.1) == []
    assert not t.finished and t.acked_blocks == 0


def test_an_abort_records_why_and_tells_the_client() -> None:
    t = transfer()
    t.start(0.0)
    assert t.abort(ErrorCode.NOT_DEFINED, "server shutting down") == [
        (error_datagram(ErrorCode.NOT_DEFINED, "server shutting down"), CLIENT, 0)
    ]
    assert (t.finished, t.outcome, t.error, t.deadline) == (
        True,
        Outcome.FAILED,
        (0, "server shutting down"),
        None,
    )
    assert t.abort(ErrorCode.NOT_DEFINED, "again") == []


def test_a_retransmission_is_scheduled_after_now_with_backoff() -> None:
    t = transfer()
    t.start(0.0)
    assert t.deadline == 1.0
    assert t.on_timeout(1.0)  # the window again
    assert t.deadline == 3.0  # 1.0 + 2 s: the delay doubled
    assert t.on_timeout(2.9) == [] and t.retransmits == 1
