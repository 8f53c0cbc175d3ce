"""Real TFTP clients against netboot on loopback: tftp-hpa, atftp, curl and tftpy; every byte identical."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.servers.tftp import RootResolver
from tests.tftp.conftest import Running, ServerFactory, Tree, wait_for

#: 65 536 blocks of 512 and a bit: block numbers wrap past 65535 (to 0, as these clients expect)
WRAP_SIZE = 512 * 65536 + 1000


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


def run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wrap_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("tftp-wrap")
    (root / "wrap.bin").write_bytes(os.urandom(WRAP_SIZE))
    yield root
    (root / "wrap.bin").unlink()


NAMES = ["f.bin", "exact.bin", "empty.bin", "sub/inner.bin", "\\sub\\inner.bin"]


def expected(tree: Tree, name: str) -> bytes:
    return tree.files[name.replace("\\", "/").lstrip("/")]


@pytest.mark.parametrize("name", NAMES)
def test_tftp_hpa(served: Running, tree: Tree, tmp_path: Path, name: str) -> None:
    tftp = need("tftp")
    out = tmp_path / "out"
    host, port = served.address
    result = run([tftp, "-m", "binary", host, str(port), "-c", "get", name, str(out)])
    assert result.returncode == 0, result
    assert out.read_bytes() == expected(tree, name)


@pytest.mark.parametrize("windowsize", [1, 8])
@pytest.mark.parametrize("blksize", [512, 1468, 8192])
@pytest.mark.parametrize("name", ["f.bin", "exact.bin", "empty.bin"])
def test_atftp(served: Running, tree: Tree, tmp_path: Path, name: str, blksize: int, windowsize: int) -> None:
    atftp = need("atftp")
    out = tmp_path / "out"
    host, port = served.address
    result = run([atftp, "-g", "-r", name, "-l", str(out), "--option", f"blksize {blksize}",
                  "--option", f"windowsize {windowsize}", host, str(port)])
    assert result.returncode == 0, result
    assert out.read_bytes() == expected(tree, name)
    assert wait_for(lambda: bool(served.events()))  # the server records the transfer after the last ACK
    (event,) = served.events()
    assert event.detail["outcome"] == "complete" and event.detail["bytes"] == len(expected(tree, name))
    assert event.detail["options"] == {"blksize": str(blksize), "windowsize": str(windowsize)}
    assert event.detail["negotiated"] == event.detail["options"]  # both within the server's limits


@pytest.mark.parametrize("blksize", [None, 1468, 8192])
@pytest.mark.parametrize("name", ["f.bin", "exact.bin", "empty.bin", "sub/inner.bin"])
def test_curl(served: Running, tree: Tree, tmp_path: Path, name: str, blksize: int | None) -> None:
    curl = need("curl")
    out = tmp_path / "out"
    host, port = served.address
    extra = [] if blksize is None else ["--tftp-blksize", str(blksize)]
    result = run([curl, "-sS", *extra, "-o", str(out), f"tftp://{host}:{port}/{name}"])
    assert result.returncode == 0, result
    got = out.read_bytes() if out.exists() else b""  # curl may not create a file for zero bytes
    assert got == expected(tree, name)


@pytest.mark.parametrize("options", [{}, {"blksize": 1468, "tsize": 0}, {"blksize": 8192}])
@pytest.mark.parametrize("name", ["f.bin", "exact.bin", "sub/inner.bin"])
def test_tftpy(served: Running, tree: Tree, tmp_path: Path, name: str, options: dict[str, int]) -> None:
    tftpy = pytest.importorskip("tftpy")
    out = tmp_path / "out"
    host, port = served.address
    tftpy.TftpClient(host, port, options=dict(options)).download(name, str(out), timeout=5)
    assert out.read_bytes() == expected(tree, name)


def test_block_number_wrap_with_atftp_window(start_server: ServerFactory, wrap_root: Path,
                                             tmp_path: Path) -> None:
    atftp = need("atftp")
    run_ = start_server(RootResolver(wrap_root))
    out = tmp_path / "out"
    host, port = run_.address
    result = run([atftp, "-g", "-r", "wrap.bin", "-l", str(out), "--option", "blksize 512",
                  "--option", "windowsize 8", host, str(port)])
    assert result.returncode == 0, result
    assert out.read_bytes() == (wrap_root / "wrap.bin").read_bytes()


def test_block_number_wrap_with_curl_lock_step(start_server: ServerFactory, wrap_root: Path,
                                               tmp_path: Path) -> None:
    curl = need("curl")
    run_ = start_server(RootResolver(wrap_root))
    out = tmp_path / "out"
    host, port = run_.address
    result = run([curl, "-sS", "--tftp-blksize", "512", "-o", str(out), f"tftp://{host}:{port}/wrap.bin"])
    assert result.returncode == 0, result
    assert out.read_bytes() == (wrap_root / "wrap.bin").read_bytes()
