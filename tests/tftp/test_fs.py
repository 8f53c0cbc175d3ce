"""netboot.fs, the one path sandbox: normalisation, the traversal corpus, and check/open races."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from netboot import fs
from netboot.fs import PathNotFound, PathRefused, normalise, open_file, resolve
from tests.tftp.conftest import Tree


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("pxelinux.0", "pxelinux.0"),
        ("/pxelinux.0", "pxelinux.0"),
        ("\\boot\\x64\\wdsnbp.com", "boot/x64/wdsnbp.com"),
        ("boot\\\\grub/./grub.cfg", "boot/grub/grub.cfg"),
        ("//a///b/", "a/b"),
        ("./a", "a"),
        ("....", "...."),  # a literal name, not a parent reference
        ("%2e%2e/x", "%2e%2e/x"),  # never percent-decoded here
        ("C:\\x", "C:/x"),
    ],
)
def test_normalise(requested: str, expected: str) -> None:
    assert normalise(requested) == expected


@pytest.mark.parametrize(
    "requested",
    ["../x", "..\\x", "a/../b", "a\\..\\..\\b", "..", "/..", "a/..", "x\0y", "", "/", "\\\\", ".", "./.",
     "a" * 5000],
)
def test_normalise_refuses(requested: str) -> None:
    with pytest.raises(PathRefused):
        normalise(requested)


def test_resolves_plain_nested_and_backslash_names(tree: Tree) -> None:
    assert resolve(tree.root, "f.bin") == tree.root / "f.bin"
    assert resolve(tree.root, "\\sub\\inner.bin") == tree.root / "sub" / "inner.bin"
    assert resolve(tree.root, "/sub//inner.bin") == tree.root / "sub" / "inner.bin"


def test_symlink_that_stays_inside_is_served(tree: Tree) -> None:
    assert resolve(tree.root, "inlink") == tree.root / "sub" / "inner.bin"


def test_root_given_through_a_symlink_still_works(tree: Tree, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree.root)
    assert resolve(alias, "f.bin") == tree.root / "f.bin"


def test_missing_file_is_not_found(tree: Tree) -> None:
    with pytest.raises(PathNotFound):
        resolve(tree.root, "nope.bin")
    with pytest.raises(PathNotFound):
        resolve(tree.root, "f.bin/below-a-file")
    with pytest.raises(PathNotFound):
        resolve(tree.root, "%2e%2e/secret.txt")


def traversal_corpus(tree: Tree) -> list[str]:
    """Every name here must be refused (or be absent) and never yield a byte from outside the root."""
    srv = tree.root.parent
    return [
        "../secret.txt",
        "..\\secret.txt",
        "sub/../../secret.txt",
        "sub\\..\\..\\secret.txt",
        "/../secret.txt",
        "\\..\\secret.txt",
        "../tftp2/secret",  # sibling-prefix root
        "..\\tftp2\\secret",
        str(srv / "secret.txt"),  # absolute path: read as relative to the root
        str(srv / "tftp2" / "secret"),
        "%2e%2e/secret.txt",
        "%2e%2e%2fsecret.txt",
        "..%2fsecret.txt",
        "....//secret.txt",
        "out",  # relative symlink out
        "abs-out",  # absolute symlink out
        "sibling",  # symlink into the sibling-prefix root
        "subdir-out/secret",  # directory symlink out
        "sub",  # directory
        "pxelinux.cfg",
        "/",
        ".",
        "fifo",
        "zero",  # character device (when mknod is allowed)
        "loop",
        "f.bin\0../secret.txt",
        "a" * 65000,  # 64 KiB-ish name
        ("x" * 300) + "/f.bin",  # component longer than NAME_MAX
    ]


def test_traversal_corpus_is_refused(tree: Tree) -> None:
    for name in traversal_corpus(tree):
        with pytest.raises(PathRefused) as info:
            resolve(tree.root, name)
        assert info.value.reason, name


@pytest.mark.parametrize(
    ("name", "reason"),
    [("../secret.txt", "parent directory reference"), ("out", "outside the root"),
     ("sibling", "outside the root"), ("sub", "is a directory"), ("fifo", "not a regular file"),
     ("x\0", "NUL in name")],
)
def test_refusal_reasons_name_the_problem(tree: Tree, name: str, reason: str) -> None:
    with pytest.raises(PathRefused, match=reason):
        resolve(tree.root, name)


def test_device_file_is_refused(tree: Tree) -> None:
    if not tree.has_device:
        pytest.skip("mknod not permitted here")
    with pytest.raises(PathRefused, match="not a regular file"):
        resolve(tree.root, "zero")


def test_open_file_reads_the_file(tree: Tree) -> None:
    with open_file(tree.root, "\\sub\\inner.bin") as f:
        assert f.read() == tree.files["sub/inner.bin"]


# ----------------------------------------------------------------------------- opening: openat2, kernel side


def test_this_kernel_opens_with_openat2(tree: Tree) -> None:
    """The race-free path is the one in use here (Linux >= 5.6): not silently the fallback."""
    with open_file(tree.root, "f.bin") as f:
        assert f.read() == tree.files["f.bin"]
    assert fs._openat2_works


@pytest.fixture(params=["openat2", "realpath-fallback"])
def either_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each opening test once through openat2 and once through the fallback a kernel without it uses."""
    if request.param == "realpath-fallback":
        monkeypatch.setattr(fs, "_openat2_works", False)
    return str(request.param)


def test_open_refuses_the_traversal_corpus(tree: Tree, either_way: str) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        for name in traversal_corpus(tree):
            with pytest.raises(PathRefused) as info:
                open_file(tree.root, name)
            assert info.value.reason, name
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # no descriptor left behind by a refusal


def test_an_absolute_symlink_is_refused_even_pointing_inside(tree: Tree) -> None:
    """RESOLVE_BENEATH refuses any absolute step, so such a link must be made relative (docs/security.md)."""
    (tree.root / "abs-in").symlink_to(tree.root / "f.bin")
    with pytest.raises(PathRefused, match="outside the root"):
        open_file(tree.root, "abs-in")


@pytest.mark.parametrize(
    ("name", "reason"),
    [("out", "outside the root"), ("abs-out", "outside the root"), ("sibling", "outside the root"),
     ("subdir-out/secret", "outside the root"), ("sub", "is a directory"), ("fifo", "not a regular file"),
     ("nope.bin", "no such file")],
)
def test_open_refusals_name_the_problem(tree: Tree, either_way: str, name: str, reason: str) -> None:
    with pytest.raises(PathRefused, match=reason):
        open_file(tree.root, name)


def test_open_serves_a_symlink_that_stays_inside_and_a_root_given_by_symlink(
    tree: Tree, tmp_path: Path, either_way: str
) -> None:
    with open_file(tree.root, "inlink") as f:
        assert f.read() == tree.files["sub/inner.bin"]
    link = tmp_path / "root-link"
    link.symlink_to(tree.root)
    with open_file(link, "sub/inner.bin") as f:
        assert f.read() == tree.files["sub/inner.bin"]


def test_openat2_missing_at_run_time_falls_back(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seccomp filter refusing openat2 (EPERM) or an old kernel (ENOSYS): the realpath check serves."""
    def refused(dirfd: int, relative: str, flags: int) -> int:
        raise fs._NoOpenat2
    monkeypatch.setattr(fs, "_openat2", refused)
    with open_file(tree.root, "sub/inner.bin") as f:
        assert f.read() == tree.files["sub/inner.bin"]
    with pytest.raises(PathRefused, match="outside the root"):
        open_file(tree.root, "out")


# --------------------------------------------- opening without openat2: the gaps the fallback must close


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "_openat2_works", False)


@pytest.mark.usefixtures("fallback")
def test_open_refuses_symlink_swapped_in_after_the_check(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "resolve", lambda root, requested: tree.root / "out")
    with pytest.raises(PathRefused):
        open_file(tree.root, "f.bin")


@pytest.mark.usefixtures("fallback")
def test_open_does_not_block_on_fifo_swapped_in(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs, "resolve", lambda root, requested: tree.root / "fifo")
    with pytest.raises(PathRefused, match="not a regular file"):
        open_file(tree.root, "f.bin")


@pytest.mark.usefixtures("fallback")
def test_open_rechecks_where_the_descriptor_points(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent directory replaced by a symlink between check and open: /proc/self/fd shows the escape."""
    outside = tree.root.parent / "tftp2" / "secret"
    monkeypatch.setattr(fs, "resolve", lambda root, requested: outside)
    with pytest.raises(PathRefused, match="outside the root"):
        open_file(tree.root, "f.bin")


@pytest.mark.usefixtures("fallback")
def test_open_file_closes_the_descriptor_when_refusing(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(fs, "resolve", lambda root, requested: tree.root.parent / "secret.txt")
    for _ in range(20):
        with pytest.raises(PathRefused):
            open_file(tree.root, "x")
    assert len(os.listdir("/proc/self/fd")) <= before + 1


@pytest.mark.usefixtures("fallback")
def test_open_refuses_a_final_symlink_swapped_in_even_one_pointing_inside(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NOFOLLOW: the name checked was a file; a symlink found there at open time is not followed."""
    monkeypatch.setattr(fs, "resolve", lambda root, requested: tree.root / "inlink")
    with pytest.raises(PathRefused, match="symbolic links"):
        open_file(tree.root, "sub/inner.bin")


@pytest.mark.usefixtures("fallback")
def test_a_file_removed_between_check_and_open_is_not_found(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fs, "resolve", lambda root, requested: tree.root / "gone.bin")
    with pytest.raises(PathNotFound) as info:
        open_file(tree.root, "gone.bin")
    assert (info.value.reason, info.value.requested) == ("no such file", "gone.bin")


def test_an_opened_file_blocks_is_closed_on_exec_and_owns_its_descriptor(tree: Tree, either_way: str) -> None:
    """What the servers rely on: reads block (no EAGAIN mid-transfer, though a FIFO was opened O_NONBLOCK),
    the descriptor is not inherited by a helper process, and closing the file closes it."""
    f = open_file(tree.root, "sub/inner.bin")
    fd = f.fileno()
    assert os.get_blocking(fd)
    assert not os.get_inheritable(fd)
    assert f.mode == "rb" and f.read() == tree.files["sub/inner.bin"]
    f.close()
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF


def test_a_refusal_names_the_reason_and_the_request(tree: Tree, either_way: str) -> None:
    refusals = [("sub", "is a directory"), ("fifo", "not a regular file"), ("out", "outside the root")]
    for name, reason in refusals:
        with pytest.raises(PathRefused) as info:
            open_file(tree.root, name)
        assert (info.value.reason, info.value.requested) == (reason, name)
