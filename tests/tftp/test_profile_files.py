"""``files/<profile>/<path>`` over TFTP (:class:`ProfileFilesResolver`): the kernels and initrds GRUB fetches
on the shim-grub chain (Debian 12's signed GRUB has no http), served from each profile's ``data_dir`` through
the one path sandbox, on a real :class:`TftpServer` driven by the raw client (both the C and the Python path).

GRUB prints the server's TFTP error text verbatim on the machine's console (``docs/secure-boot-research.md``),
so the refusals are checked for what they carry too: never a server path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from netboot.protocol.tftp import Error, ReadRequest
from netboot.servers.tftp import ProfileFilesResolver, RootResolver
from tests.tftp.client import RawClient
from tests.tftp.conftest import Running, ServerFactory, Tree, wait_for

SECRET = b"PROFILE-SECRET-do-not-serve"


@dataclass
class DataDirs:
    """Two profiles' data directories (``debian`` and ``rocky``), with hostile neighbours beside them."""

    base: Path
    dirs: dict[str, Path | None]
    files: dict[str, bytes]

    def data_dir_of(self, profile: str) -> Path | None:
        return self.dirs.get(profile)


@pytest.fixture
def data(tmp_path: Path) -> DataDirs:
    base = tmp_path / "srv"
    debian = base / "profiles" / "debian" / "files"
    rocky = base / "profiles" / "rocky" / "files"
    (debian / "amd64").mkdir(parents=True)
    rocky.mkdir(parents=True)
    files = {
        "amd64/linux": os.urandom(70_000),
        "amd64/initrd.gz": os.urandom(200_001),
        "rocky-vmlinuz": os.urandom(5_000),
    }
    (debian / "amd64" / "linux").write_bytes(files["amd64/linux"])
    (debian / "amd64" / "initrd.gz").write_bytes(files["amd64/initrd.gz"])
    (rocky / "vmlinuz").write_bytes(files["rocky-vmlinuz"])
    (base / "netboot.db").write_bytes(SECRET + b" db")  # what a data_dir must never reach
    (base / "profiles" / "debian" / "files2").mkdir()  # a sibling whose name has the data_dir as prefix
    (base / "profiles" / "debian" / "files2" / "secret").write_bytes(SECRET + b" sibling")
    (debian / "db").symlink_to(base / "netboot.db")  # absolute symlink out
    (debian / "up").symlink_to("../../../netboot.db")  # relative symlink out
    (debian / "sibling").symlink_to("../files2/secret")
    (debian / "outdir").symlink_to(base / "profiles" / "rocky" / "files")  # another profile's dir: still out
    (debian / "kernel").symlink_to("amd64/linux")  # stays inside: served
    return DataDirs(base, {"debian": debian, "rocky": rocky, "nodata": None}, files)


@pytest.fixture
def served_files(start_server: ServerFactory, tree: Tree, data: DataDirs) -> Running:
    return start_server(ProfileFilesResolver(data.data_dir_of, RootResolver(tree.root)))


def refusal(run: Running, name: str) -> Error:
    with RawClient(run.address) as client:
        client.send(ReadRequest(name, "octet", (("blksize", "1024"), ("tsize", "0"))))
        packet, _ = client.recv()
    assert isinstance(packet, Error), (name, packet)
    return packet


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("files/debian/amd64/linux", "amd64/linux"),
        ("/files/debian/amd64/linux", "amd64/linux"),  # as GRUB asks: (tftp,server)/files/...
        ("/files/debian/amd64/initrd.gz", "amd64/initrd.gz"),
        ("\\files\\debian\\amd64\\initrd.gz", "amd64/initrd.gz"),
        ("//files//debian/./amd64/linux", "amd64/linux"),
        ("/files/debian/kernel", "amd64/linux"),  # a symlink that stays inside the data_dir
        ("/files/rocky/vmlinuz", "rocky-vmlinuz"),
    ],
)
def test_a_profiles_data_dir_file_is_served(served_files: Running, data: DataDirs, name: str,
                                            expected: str) -> None:
    with RawClient(served_files.address) as client:
        got, accepted, _ = client.download(name, {"blksize": "1024", "tsize": "0"})  # GRUB's options
    assert got == data.files[expected]
    assert accepted == {"blksize": "1024", "tsize": str(len(data.files[expected]))}
    assert wait_for(lambda: len(served_files.events()) == 1)
    assert served_files.events()[0].detail["outcome"] == "complete"


def test_other_names_go_to_the_tftp_root(served_files: Running, tree: Tree) -> None:
    with RawClient(served_files.address) as client:
        assert client.download("/sub/inner.bin")[0] == tree.files["sub/inner.bin"]
        assert client.download("small.txt")[0] == tree.files["small.txt"]
        # "files" only as the first component names a profile: deeper, it is an ordinary root name
        assert refusal(served_files, "sub/files/debian/amd64/linux").code == 1


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("/files/debian/../../files2/secret", 2),  # .. is refused outright, even where it would stay inside
        ("/files/debian/amd64/../linux", 2),
        ("/files/../tftp/small.txt", 2),
        ("/files/debian/db", 2),  # absolute symlink out of the data_dir
        ("/files/debian/up", 2),  # relative symlink out
        ("/files/debian/sibling", 2),  # into a sibling that shares the data_dir's name as a prefix
        ("/files/debian/outdir/vmlinuz", 2),  # through a directory symlink into another profile's files
        ("/files/debian/amd64", 2),  # a directory
        ("/files/debian/amd64/vmlinuz", 1),  # no such file
        ("/files/nope/amd64/linux", 1),  # no such profile
        ("/files/nodata/linux", 1),  # a profile without a data_dir
        ("/files/debian", 1),  # a profile and no path
        ("/files", 1),
    ],
)
def test_refusals(served_files: Running, name: str, code: int) -> None:
    packet = refusal(served_files, name)
    assert packet.code == code
    assert wait_for(lambda: len(served_files.events()) == 1)
    event = served_files.events()[0]
    assert event.detail["outcome"] == "refused" and event.detail["error_code"] == code


@pytest.mark.parametrize(
    "name",
    ["/files/debian/db", "/files/debian/up", "/files/debian/sibling", "/files/debian/amd64",
     "/files/debian/amd64/vmlinuz", "/files/nope/amd64/linux", "/files/nodata/linux",
     "/files/debian/../../netboot.db", "/grub/x86_64-efi/http.mod"],
)
def test_error_text_never_carries_a_server_path(served_files: Running, data: DataDirs, tree: Tree,
                                                name: str) -> None:
    """GRUB prints the ERROR packet's text on the console: it says what, never where on the server."""
    packet = refusal(served_files, name)
    assert packet.message in ("file not found", "access violation")
    for where in (data.base, tree.base, tree.root, *[d for d in data.dirs.values() if d]):
        assert str(where) not in packet.message
    assert "/" not in packet.message


def test_the_data_dir_is_asked_per_request(start_server: ServerFactory, tree: Tree, data: DataDirs) -> None:
    """A profile reload (a new data_dir, a profile gone) counts from the next request on."""
    dirs: dict[str, Path | None] = {"debian": data.dirs["debian"]}
    run = start_server(ProfileFilesResolver(dirs.get, RootResolver(tree.root)))
    with RawClient(run.address) as client:
        assert client.download("/files/debian/amd64/linux")[0] == data.files["amd64/linux"]
    dirs["debian"] = data.dirs["rocky"]
    with RawClient(run.address) as client:
        assert client.download("/files/debian/vmlinuz")[0] == data.files["rocky-vmlinuz"]
    del dirs["debian"]
    assert refusal(run, "/files/debian/vmlinuz").code == 1
