"""``/files`` sends the file it checked: a symlink swapped in while downloads run never leads out (issue 15).

A real race, no monkeypatching: a thread swaps a name in the served data directory between a regular file
inside it and a symlink (or a directory symlink) to a file outside it, as fast as it can, while downloader
threads fetch that name through the Flask app. Checking the name and then letting ``send_file`` open it
again by name serves the outside file whenever the swap lands between the two; one open
(:func:`netboot.fs.open_with_stat`, ``O_NOFOLLOW`` plus the descriptor's own path) never does.

Each run proves the race was live: some downloads got the inside file and some were refused while the
symlink was in place. The GIL switch interval is made tiny for the run so the threads interleave at every
opportunity instead of every 5 ms.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import RuntimeFactory, app_for

INSIDE = b"INSIDE the data tree\n" * 64
OUTSIDE = b"OUTSIDE: the secret beside the data tree\n" * 64
DOWNLOADERS = 3
DOWNLOADS_EACH = 600


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _serving(profiles_copy: Path, tree: Path) -> None:
    """debian12-preseed serving ``tree`` (its kernel and initrd names need not exist for /files)."""
    yaml = profiles_copy / "debian12-preseed" / "profile.yaml"
    text = yaml.read_text()
    start = text.index("data_dir: ")
    end = text.index("\n", start)
    yaml.write_text(text[:start] + f"data_dir: {tree}" + text[end:])


def _swap_final_link(tree: Path, outside: Path) -> tuple[str, Callable[[], None]]:
    """``tree/x``: a regular file inside, then a symlink to the outside file; each swap one rename."""
    master = tree / "master"
    master.write_bytes(INSIDE)

    def swap() -> None:
        os.symlink(outside / "x", tree / "x.link")
        os.replace(tree / "x.link", tree / "x")
        os.link(master, tree / "x.file")
        os.replace(tree / "x.file", tree / "x")

    os.link(master, tree / "x")
    return "x", swap


def _swap_parent_dir(tree: Path, outside: Path) -> tuple[str, Callable[[], None]]:
    """``tree/sub``: a directory holding ``x``, then a symlink to the outside directory (holding one too)."""
    (tree / "sub").mkdir()
    (tree / "sub" / "x").write_bytes(INSIDE)

    def swap() -> None:
        os.rename(tree / "sub", tree / "sub.away")
        os.symlink(outside, tree / "sub")
        os.unlink(tree / "sub")
        os.rename(tree / "sub.away", tree / "sub")

    return "sub/x", swap


@pytest.mark.parametrize("setup", [_swap_final_link, _swap_parent_dir], ids=["file-link", "parent-dir-link"])
def test_a_symlink_swapped_during_downloads_never_serves_outside_bytes(
    make_runtime: RuntimeFactory,
    profiles_copy: Path,
    tmp_path: Path,
    tiny_switch_interval: None,
    setup: Callable[[Path, Path], tuple[str, Callable[[], None]]],
) -> None:
    tree, outside = tmp_path / "data-tree", tmp_path / "outside"
    tree.mkdir()
    outside.mkdir()
    (outside / "x").write_bytes(OUTSIDE)
    name, swap = setup(tree, outside)
    _serving(profiles_copy, tree)
    rt = make_runtime(profiles_dir=profiles_copy)
    assert rt.profile_errors == []
    app = app_for(rt)
    url = f"/files/debian12-preseed/{name}"
    assert app.test_client().get(url).data == INSIDE  # the control, before any swap

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def swapper() -> None:
        try:
            while not stop.is_set():
                swap()
        except BaseException as exc:  # surfaced by the assertion below, not lost in the thread
            failures.append(exc)

    def downloader() -> None:
        client = app.test_client()
        try:
            for _ in range(DOWNLOADS_EACH):
                resp = client.get(url)
                body = resp.get_data()
                if OUTSIDE[:16] in body:
                    what = "outside"
                elif resp.status_code == 200 and body == INSIDE:
                    what = "inside"
                elif resp.status_code == 404:
                    what = "refused"
                else:
                    what = f"other {resp.status_code} {len(body)}"
                with lock:
                    outcomes[what] += 1
        except BaseException as exc:
            failures.append(exc)

    swapping = threading.Thread(target=swapper, daemon=True)
    downloads = [threading.Thread(target=downloader, daemon=True) for _ in range(DOWNLOADERS)]
    swapping.start()
    for thread in downloads:
        thread.start()
    for thread in downloads:
        thread.join()
    stop.set()
    swapping.join()

    assert not failures, "".join(traceback.format_exception(failures[0]))
    assert outcomes["outside"] == 0, outcomes
    assert set(outcomes) <= {"inside", "refused"}, outcomes
    # the race was live: downloads met both states of the swapped name
    assert outcomes["inside"] > 0 and outcomes["refused"] > 0, outcomes
