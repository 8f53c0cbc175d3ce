"""Every input the fuzzer ever found breaking a codec (``tests/corpus/<target>/``) stays fixed.

The seeds, the firmware captures the fuzzer starts from, go through the same targets too: a target that
rejected them all would fuzz nothing but the error path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_targets import CORPUS, PXE_CODES, PXE_PARSERS, TARGETS, seeds

from netboot.protocol.dhcp import decode
from netboot.protocol.tftp import decode as tftp_decode


def pxe_decoders_accept(data: bytes) -> None:
    """The option a PXE seed names parses without DecodeError."""
    PXE_PARSERS[PXE_CODES[data[0] % len(PXE_CODES)]](data[1:])


FOUND = sorted(p for p in CORPUS.glob("*/*") if p.parent.name in TARGETS and not p.name.startswith("."))


@pytest.mark.parametrize("path", FOUND, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_found_input_is_handled(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_seeds_reach_past_the_decoder(target: str) -> None:
    found = seeds(target)
    assert len(found) >= 6, found
    for data in found:
        TARGETS[target](data)
        # each seed is a well-formed message, so the fuzzer's mutations start beyond the decoder's refusals
        if target == "dhcp":
            decode(data)
        elif target == "tftp":
            tftp_decode(data.split(b"|||")[0])
        else:
            pxe_decoders_accept(data)


def test_every_corpus_folder_is_a_target() -> None:
    folders = {path.name for path in CORPUS.iterdir() if path.is_dir()}
    assert folders <= set(TARGETS), folders - set(TARGETS)
