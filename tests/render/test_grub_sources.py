"""Where a GRUB config fetches each boot file from: netboot's own files over TFTP (present or not yet), a
``tftp://`` URL as it is, and never an ``http(s)://`` URL, which Debian 12's signed GRUB (the shim-grub
chain) cannot fetch: such a profile renders a local-disk entry instead of a ``linux`` line that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot.profiles.model import FileSource, Profile
from netboot.render import ServerFacts
from netboot.render.context import grub_path, resolve_source

FACTS = ServerFacts(server_ip="10.0.0.1", http_port=8080, file_exists=lambda path: path.name == "here")


def profile(tmp_path: Path) -> Profile:
    return Profile(name="p", file=tmp_path / "profile.yaml", dir=tmp_path, kind="preseed", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("source", "grub"),
    [
        (FileSource("d/here", "https://mirror/d/linux"), "(tftp,10.0.0.1)/files/p/d/here"),  # local wins
        (FileSource("d/missing", None), "(tftp,10.0.0.1)/files/p/d/missing"),  # ours, not in place yet
        (FileSource("d/missing", "http://mirror:80/d/linux"), None),  # only at an http URL
        (FileSource(None, "https://mirror/d/linux"), None),
        (FileSource(None, "tftp://10.0.0.9/boot/linux"), "(tftp,10.0.0.9)/boot/linux"),
    ],
)
def test_grub_fetches_our_files_over_tftp_and_no_http_url(
    tmp_path: Path, source: FileSource, grub: str | None
) -> None:
    assert resolve_source(FACTS, profile(tmp_path), source)["grub"] == grub


@pytest.mark.parametrize("url", ["http://h:8080/x", "https://h/x", "ftp://h/x", "tftp:///x", "x"])
def test_grub_path_refuses_what_signed_grub_cannot_fetch(url: str) -> None:
    assert grub_path(url) is None
