"""The render memo: a repeat with the same inputs is answered without a render, any changed input renders
again, and what comes back is exactly what a render gives (netboot.render.memo).

Each case loads a profile set of its own, so its memo starts empty.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from netboot.profiles import ProfileSet, load_profiles
from netboot.render import render_answer, render_boot_script, sample_system
from netboot.render.context import PRESENCE_TTL, ServerFacts
from netboot.render.engine import memo_for
from netboot.render.memo import RenderMemo

from .conftest import TreeBuilder, fixed_facts

KS = "ks {{ system.hostname }} {{ vars.disk }} {{ boot.kernel.url }}\n"


def profile_set(tree: TreeBuilder, data: Path) -> ProfileSet:
    root = tree({
        "p/profile.yaml": (
            "kind: kickstart\n"
            f"data_dir: {data}\n"
            "kernel: {path: vmlinuz, url: http://mirror.test/vmlinuz}\n"
            "initrd: [{path: initrd.img, url: http://mirror.test/initrd.img}]\n"
            "variables: {disk: sda}\n"
            "templates: {ks.cfg: ks.cfg.j2}\n"
        ),
        "p/ks.cfg.j2": KS,
        "_snippets/boot/install.ipxe.j2": "#!ipxe\nkernel {{ boot.kernel.url }} token={{ system.token }}\n",
        "_snippets/boot/local.ipxe.j2": "#!ipxe\nexit\n",
    })
    return load_profiles(root)


def facts(**changes: object) -> ServerFacts:
    return fixed_facts(file_exists=lambda path: path.is_file(), **changes)


def answer(ps: ProfileSet, facts_: ServerFacts, **system: object) -> str:
    profile = ps.get("p")
    assert profile is not None
    return render_answer(ps, profile, None, replace(sample_system("p"), **system), facts_, "ks.cfg").content


def test_a_repeat_is_answered_from_the_memo_and_every_changed_input_renders_again(
        tree: TreeBuilder, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ps = profile_set(tree, data)
    memo = memo_for(ps)
    first = answer(ps, facts(), hostname="web1")
    assert first == "ks web1 sda http://mirror.test/vmlinuz\n"
    assert answer(ps, facts(), hostname="web1") == first
    assert (memo.misses, memo.hits) == (1, 1)
    # the system changed: its new name
    assert answer(ps, facts(), hostname="web2") == "ks web2 sda http://mirror.test/vmlinuz\n"
    # its variables changed
    assert answer(ps, facts(), hostname="web2", variables={"disk": "vdb"}).startswith("ks web2 vdb ")
    # the server is reached at another address
    assert "http://mirror.test" in answer(ps, facts(server_ip="10.9.9.9"), hostname="web2")
    assert memo.misses == 4
    # the kernel was put in the data directory: now it is served from here
    (data / "vmlinuz").write_bytes(b"kernel")
    assert answer(ps, facts(), hostname="web2") == "ks web2 sda http://10.0.0.1:8080/files/p/vmlinuz\n"
    assert memo.misses == 5


def test_a_reloaded_set_renders_the_edit_with_a_memo_of_its_own(tree: TreeBuilder, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ps = profile_set(tree, data)
    assert answer(ps, facts(), hostname="web1").startswith("ks web1")
    template = ps.root / "p" / "ks.cfg.j2"
    template.write_text("edited " + KS)
    reloaded = load_profiles(ps.root)
    assert answer(reloaded, facts(), hostname="web1").startswith("edited ks web1")
    assert memo_for(reloaded) is not memo_for(ps)


def test_a_boot_script_is_remembered_per_machine_until_its_decision_or_system_changes(
        tree: TreeBuilder, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ps = profile_set(tree, data)
    profile = ps.get("p")
    system = replace(sample_system("p"), hostname="web1", token="tok1")
    install = render_boot_script("ipxe", "install", ps, profile, None, system, facts())
    assert "token=tok1" in install
    assert render_boot_script("ipxe", "install", ps, profile, None, system, facts()) == install
    assert render_boot_script("ipxe", "local", ps, profile, None, system, facts()) == "#!ipxe\nexit\n"
    other = replace(system, mac=type(system.mac).parse("52:54:00:00:00:99"), token="tok2")
    assert "token=tok2" in render_boot_script("ipxe", "install", ps, profile, None, other, facts())
    assert "token=tok3" in render_boot_script("ipxe", "install", ps, profile, None,
                                               replace(system, token="tok3"), facts())
    memo = memo_for(ps)
    assert (memo.misses, memo.hits) == (4, 1)


def test_the_memo_is_bounded_and_forgets_the_least_recently_used() -> None:
    memo = RenderMemo(size=2)
    renders: list[str] = []

    def render(name: str) -> str:
        renders.append(name)
        return name.upper()

    for key in ("a", "b", "a", "c", "a", "b"):
        assert memo.get_or_render(key, (), (1,), lambda key=key: render(key)) == key.upper()
    assert renders == ["a", "b", "c", "b"]  # "a" was used last when "c" came, so "b" went


def test_a_failed_render_is_not_remembered() -> None:
    memo = RenderMemo()
    calls = []

    def failing() -> str:
        calls.append(1)
        raise ValueError("template broke")

    for _ in range(2):
        with pytest.raises(ValueError, match="template broke"):
            memo.get_or_render("k", (), (), failing)
    assert len(calls) == 2


def test_a_kernel_put_in_place_is_served_from_here_within_the_presence_ttl(
        tree: TreeBuilder, tmp_path: Path) -> None:
    """The daemon's own check of the data directory (no fake): its answer is taken as known for
    PRESENCE_TTL seconds, then looked at again."""
    data = tmp_path / "data"
    data.mkdir()
    ps = profile_set(tree, data)
    daemon_facts = ServerFacts(server_ip="10.0.0.1", http_port=8080)
    assert answer(ps, daemon_facts, hostname="web1").endswith("http://mirror.test/vmlinuz\n")
    (data / "vmlinuz").write_bytes(b"kernel")
    placed = time.monotonic()
    while not answer(ps, daemon_facts, hostname="web1").endswith("http://10.0.0.1:8080/files/p/vmlinuz\n"):
        assert time.monotonic() - placed < PRESENCE_TTL + 5, "the kernel put in place was never seen"
        time.sleep(0.05)
