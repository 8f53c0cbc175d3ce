"""The machine-facing URLs (one builder for server and templates) and each kind's kernel arguments."""

from __future__ import annotations

import gc
import os
import time
import weakref
from dataclasses import replace
from pathlib import Path

import pytest

from netboot.boot import urls
from netboot.mac import MacAddress
from netboot.profiles import Profile, ProfileSet, load_profiles
from netboot.render import (
    KINDS,
    RenderError,
    UnknownAnswerFile,
    render_answer,
    render_boot_script,
    sample_system,
)
from netboot.render.engine import _envs
from netboot.render.kinds import InstallerUrls, installer_args

from .conftest import TreeBuilder, fixed_facts

BASE = "http://10.0.0.1:8080"
MAC = MacAddress.parse("52-54-00-12-34-56")


def test_url_builders() -> None:
    assert urls.boot_script_url(BASE, MAC) == f"{BASE}/boot.ipxe?mac=52:54:00:12:34:56"
    assert (
        urls.boot_script_url(BASE, urls.IPXE_MAC, "rocky 9")
        == f"{BASE}/boot.ipxe?mac=${{net0/mac}}&profile=rocky+9"
    )
    assert urls.answer_url(BASE, MAC, "ks.cfg", "t") == f"{BASE}/answer/52:54:00:12:34:56/ks.cfg?token=t"
    assert urls.answer_url(BASE, MAC, "rules", None) == f"{BASE}/answer/52:54:00:12:34:56/rules"
    assert urls.done_url(BASE, MAC, "t") == f"{BASE}/done/52:54:00:12:34:56?token=t"
    assert (
        urls.files_url(BASE, "debian12-preseed", "a b/linux") == f"{BASE}/files/debian12-preseed/a%20b/linux"
    )
    assert (
        urls.answer_url(BASE, MAC, "ks.cfg", "a&b=c")
        == f"{BASE}/answer/52:54:00:12:34:56/ks.cfg?token=a%26b%3Dc"
    )


def test_routes_match_builders() -> None:
    assert urls.BOOT_SCRIPT_ROUTE == "/boot.ipxe"
    assert urls.ANSWER_ROUTE == "/answer/<mac>/<file>"
    assert urls.FILES_ROUTE == "/files/<profile>/<path:path>"
    assert urls.DONE_ROUTE == "/done/<mac>"


def test_nocloud_seed_works_with_both_cloud_init_substitutions() -> None:
    seed = urls.nocloud_seed_url(BASE, MAC, "tok-1")
    want = f"{BASE}/answer/52:54:00:12:34:56/user-data?token=tok-1"
    assert seed % ("user-data",) == want  # cloud-init 22 (util.read_seeded uses %)
    assert seed.replace("%s", "user-data") == want  # later cloud-init
    with pytest.raises(ValueError, match="cannot contain '%'"):
        urls.nocloud_seed_url(BASE, MAC, "a%b")


ANSWERS = InstallerUrls(
    answer={f.name: f"{BASE}/answer/m/{f.name}?token=t" for k in KINDS.values() for f in k.files},
    answer_dir=f"{BASE}/answer/m/",
    nocloud_seed=f"{BASE}/answer/m/%s?token=t",
)


def test_kickstart_args() -> None:
    assert installer_args("kickstart", ANSWERS, "h", None, ["ip=dhcp"]) == [
        "ip=dhcp",
        f"inst.ks={BASE}/answer/m/ks.cfg?token=t",
    ]


def test_preseed_args() -> None:
    assert installer_args("preseed", ANSWERS, "web1", "example.test") == [
        "auto=true",
        "priority=critical",
        f"url={BASE}/answer/m/preseed.cfg?token=t",
        "interface=auto",
        "netcfg/choose_interface=auto",
        "hostname=web1",
        "domain=example.test",
    ]
    fqdn = installer_args("preseed", ANSWERS, "web2.lab.test", None)
    assert fqdn[-2:] == ["hostname=web2", "domain=lab.test"]
    # names that are not DNS names never become kernel arguments
    odd = installer_args("preseed", ANSWERS, "a b", "x y")
    assert not any(a.startswith(("hostname=", "domain=")) for a in odd)


def test_autoinstall_autoyast_jumpstart_args() -> None:
    assert installer_args("autoinstall", ANSWERS, None, None) == [
        "autoinstall",
        f"ds=nocloud-net;s={BASE}/answer/m/%s?token=t",
    ]
    assert installer_args("autoyast", ANSWERS, None, None) == [
        f"autoyast={BASE}/answer/m/autoinst.xml?token=t"
    ]
    props = f"install_config={BASE}/answer/m/,sysid_config={BASE}/answer/m/"
    assert installer_args("jumpstart", ANSWERS, None, None, ["kernel/unix"]) == ["kernel/unix", "-B", props]
    assert installer_args("jumpstart", ANSWERS, None, None, ["-B", "install_media=s:/x"]) == [
        "-B",
        f"install_media=s:/x,{props}",
    ]
    assert installer_args("local", ANSWERS, None, None, ["x"]) == ["x"]


# ------------------------------------------------------------------------------------ engine entry points


def test_unknown_answer_file_is_a_lookup_error(sample_set: ProfileSet) -> None:
    profile = sample_set.get("rocky9-kickstart")
    assert profile is not None
    with pytest.raises(UnknownAnswerFile):
        render_answer(sample_set, profile, None, sample_system(profile.name), fixed_facts(), "preseed.cfg")
    with pytest.raises(UnknownAnswerFile):
        render_answer(
            sample_set, profile, None, sample_system(profile.name), fixed_facts(), "../profile.yaml"
        )


def test_render_answer_result(sample_set: ProfileSet) -> None:
    profile = sample_set.get("opensuse-autoyast")
    assert profile is not None
    out = render_answer(sample_set, profile, None, sample_system(profile.name), fixed_facts(), "autoinst.xml")
    assert out.content_type == "application/xml; charset=utf-8"
    assert out.filename == "autoinst.xml"
    assert out.template.endswith("profiles/opensuse-autoyast/autoinst.xml.j2")


def test_boot_script_arguments_are_checked(sample_set: ProfileSet) -> None:
    facts = fixed_facts()
    with pytest.raises(ValueError, match="boot config kind"):
        render_boot_script("syslinux", "install", sample_set, None, None, None, facts)
    with pytest.raises(ValueError, match="decision"):
        render_boot_script("ipxe", "reinstall", sample_set, None, None, None, facts)
    with pytest.raises(ValueError, match="needs a profile and a system"):
        render_boot_script("ipxe", "install", sample_set, None, None, None, facts)


def test_local_profile_and_local_boot_methods(tree: TreeBuilder) -> None:
    root = tree(
        {
            "never/profile.yaml": "kind: local\nlocal_boot: exit\n",
            "_snippets/ipxe-local.j2": "{{ local_boot }}\n",
            "_snippets/boot/local.ipxe.j2": "#!ipxe\n{% include 'ipxe-local.j2' %}",
        }
    )
    ps = load_profiles(root)
    never = ps.get("never")
    text = render_boot_script("ipxe", "install", ps, never, None, sample_system("never"), fixed_facts())
    assert text == "#!ipxe\nexit\n"  # install with a local-kind profile boots local
    assert render_boot_script("ipxe", "local", ps, None, None, None, fixed_facts()) == "#!ipxe\nauto\n"


def test_boot_configs_see_the_boot_chain(tree: TreeBuilder) -> None:
    root = tree(
        {
            "sb/profile.yaml": "kind: local\nboot_chain: shim-grub\n",
            "plain/profile.yaml": "kind: local\n",
            "_snippets/boot/local.ipxe.j2": "#!ipxe\n{{ boot_chain }}\n",
        }
    )
    ps = load_profiles(root)
    sb, plain = ps.get("sb"), ps.get("plain")

    def chain(profile: Profile | None, **kw: str) -> str:
        return render_boot_script("ipxe", "local", ps, profile, None, None, fixed_facts(), **kw)

    assert chain(sb) == "#!ipxe\nshim-grub\n"  # the profile's own
    assert chain(plain) == "#!ipxe\nipxe\n"  # nobody says
    assert chain(plain, boot_chain="shim-grub") == "#!ipxe\nshim-grub\n"  # what the boot core resolved
    own = replace(sample_system("sb"), boot_chain="ipxe")
    assert render_boot_script("ipxe", "install", ps, sb, None, own, fixed_facts()) == "#!ipxe\nipxe\n"


def test_menu_lists_profiles_with_chain_urls(sample_set: ProfileSet) -> None:
    text = render_boot_script("ipxe", "menu", sample_set, None, None, None, fixed_facts())
    for p in sample_set.menu_profiles():
        assert f"item p-{p.name} {p.description}" in text
        assert f"chain {BASE}/boot.ipxe?mac=${{net0/mac}}&profile={p.name} || goto start" in text
    assert "p-local" not in text


def test_a_profile_set_renders_its_snapshot_and_a_reload_the_edit(tree: TreeBuilder) -> None:
    """A loaded set compiles each template once (no stat per render); the runtime loads a new set when a
    file changes, and that one renders the edit. Environments live and die with their set."""
    root = tree({"p/profile.yaml": "kind: kickstart\nkernel: k\n", "p/ks.cfg.j2": "one\n"})

    def render(ps: ProfileSet) -> str:
        profile = ps.get("p")
        assert profile is not None
        return render_answer(ps, profile, None, sample_system("p"), fixed_facts(), "ks.cfg").content

    ps = load_profiles(root)
    assert render(ps) == "one\n"
    template = root / "p" / "ks.cfg.j2"
    template.write_text("two\n")
    later = time.time() + 5
    os.utime(template, (later, later))
    assert render(ps) == "one\n"  # the set is a snapshot: its compiled template stays
    assert render(load_profiles(root)) == "two\n"  # a reload reads the edit
    assert ps in _envs
    gone = weakref.ref(ps)
    del ps
    gc.collect()
    assert gone() is None  # a reloaded ProfileSet does not keep the old environments alive


def test_a_template_that_breaks_later_gives_render_error(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": "kind: kickstart\nkernel: k\n", "p/ks.cfg.j2": "ok\n"})
    ps = load_profiles(root)
    profile = ps.get("p")
    assert profile is not None
    Path(root / "p" / "ks.cfg.j2").unlink()
    with pytest.raises(RenderError, match="template not found"):
        render_answer(ps, profile, None, sample_system("p"), fixed_facts(), "ks.cfg")
