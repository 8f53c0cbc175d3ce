"""The ``boot_chain`` choice (``ipxe`` or ``shim-grub``) from the files to the boot decision: a profile's is
inherited by its children, a group's beats its profile's, a system's own beats both, the site's
``boot-chain`` applies when nobody says, refusals name the key, and :func:`choose` carries the chain in
every branch (unknown, discovered, menu, default profile, install, installed, profile gone)."""

from __future__ import annotations

from pathlib import Path

import pytest
from filetree import write_tree

from netboot.boot.choose import BootChoice, choose
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import (
    BOOT_CHAIN_CHOICES,
    GROUP_KEYS,
    PROFILE_KEYS,
    ProfileErrors,
    ProfileSet,
    boot_chain_for,
    load_profiles,
)

KS = "kind: kickstart\nkernel: vmlinuz\ninitrd: [initrd.img]\n"
MAC = MacAddress.parse("52:54:00:00:00:01")


@pytest.fixture
def profiles(tmp_path: Path) -> ProfileSet:
    """base says shim-grub, child inherits it, grandchild goes back to ipxe, plain says nothing;
    machines labelled room=lab get child through a group that says ipxe, room=sb get plain through a
    group that says shim-grub."""
    return load_profiles(
        write_tree(
            tmp_path,
            {
                "base/profile.yaml": KS + "boot_chain: shim-grub\n",
                "base/ks.cfg.j2": "",
                "child/profile.yaml": "parent: base\n",
                "grandchild/profile.yaml": "parent: child\nboot_chain: ipxe\n",
                "plain/profile.yaml": KS,
                "plain/ks.cfg.j2": "",
                "_groups/lab.yaml": "profile: child\nboot_chain: ipxe\nselector: {labels: {room: lab}}\n",
                "_groups/sb.yaml": "profile: plain\nboot_chain: shim-grub\nselector: {labels: {room: sb}}\n",
                "_groups/rest.yaml": "profile: plain\n",
            },
        )
    )


def system(state: SystemState = SystemState.INSTALL, profile: str | None = None, **more: object) -> System:
    return System(mac=MAC, profile=profile, state=state, **more)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ inheritance


def test_unset_is_none_and_a_child_inherits_its_parents(profiles: ProfileSet) -> None:
    said = {p.name: p.boot_chain for p in profiles}
    assert said == {"base": "shim-grub", "child": "shim-grub", "grandchild": "ipxe", "plain": None}
    groups = {g.name: g.boot_chain for g in profiles.groups}
    assert groups == {"lab": "ipxe", "sb": "shim-grub", "rest": None}
    assert "boot_chain" in PROFILE_KEYS and "boot_chain" in GROUP_KEYS
    assert BOOT_CHAIN_CHOICES == ("ipxe", "shim-grub")


def test_the_most_specific_wins_system_group_profile_site(profiles: ProfileSet) -> None:
    child, plain = profiles.get("child"), profiles.get("plain")
    groups = {g.name: g for g in profiles.groups}
    assert boot_chain_for(None, None, child) == "shim-grub"  # inherited from base
    assert boot_chain_for(None, groups["lab"], child) == "ipxe"  # the group's beats the profile's
    assert boot_chain_for(None, groups["sb"], plain) == "shim-grub"  # a group can turn it on
    assert boot_chain_for(None, groups["rest"], plain) == "ipxe"  # nobody says: the site default
    assert boot_chain_for(None, groups["rest"], plain, site_default="shim-grub") == "shim-grub"
    assert boot_chain_for(None, None, None, "shim-grub") == "shim-grub"
    mine = system(boot_chain="shim-grub")
    assert boot_chain_for(mine, groups["lab"], child, "ipxe") == "shim-grub"  # the system's own beats all
    mine = system(boot_chain="ipxe")
    assert boot_chain_for(mine, groups["sb"], profiles.get("base"), "shim-grub") == "ipxe"
    assert boot_chain_for(system(), groups["sb"], plain) == "shim-grub"  # None on the system inherits


# ------------------------------------------------------------------------------------ refusals


def test_a_bad_value_is_refused_at_its_line(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "p/profile.yaml": "kind: local\nboot_chain: shim\n",
            "q/profile.yaml": "kind: local\nboot-chain: ipxe\n",
            "_groups/g.yaml": "profile: q\nboot_chain: [ipxe]\n",
        },
    )
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    errors = sorted(str(e).removeprefix(f"{root}/") for e in info.value.errors)
    assert errors == [
        "_groups/g.yaml:1: profile 'q' has errors",
        "_groups/g.yaml:2: boot_chain: expected a string, got a list",
        "p/profile.yaml:2: boot_chain: unknown boot chain 'shim' (did you mean 'shim-grub'?); "
        "one of: ipxe, shim-grub",
        "q/profile.yaml:2: unknown key 'boot-chain' (did you mean 'boot_chain'?)",
    ]


# ------------------------------------------------------------------------------------ choose()


def chains(choice: BootChoice) -> tuple[str, str]:
    return choice.decision, choice.boot_chain


def test_choose_defaults_to_ipxe() -> None:
    assert BootChoice("menu", None, None, None, "r").boot_chain == "ipxe"


@pytest.mark.parametrize("site", BOOT_CHAIN_CHOICES)
def test_choose_unknown_machines_get_the_site_default(profiles: ProfileSet, site: str) -> None:
    discovered = system(SystemState.DISCOVERED)
    for machine in (None, discovered):
        assert chains(choose(machine, profiles, "local", site_boot_chain=site)) == ("local", site)
        assert chains(choose(machine, profiles, "menu", site_boot_chain=site)) == ("menu", site)
        # a default profile that is gone: local, the site's chain
        assert chains(choose(machine, profiles, "profile:gone", site_boot_chain=site)) == ("local", site)
        # the default profile says nothing: the site's; it says shim-grub (inherited): shim-grub
        assert chains(choose(machine, profiles, "profile:plain", site_boot_chain=site)) == ("install", site)
        got = choose(machine, profiles, "profile:child", site_boot_chain=site)
        assert chains(got) == ("install", "shim-grub")


def test_choose_a_discovered_systems_own_chain_wins(profiles: ProfileSet) -> None:
    mine = system(SystemState.DISCOVERED, boot_chain="shim-grub")
    for default in ("local", "menu", "profile:grandchild"):
        assert choose(mine, profiles, default, site_boot_chain="ipxe").boot_chain == "shim-grub"


@pytest.mark.parametrize("state", [SystemState.INSTALL, SystemState.INSTALLED, SystemState.LOCAL])
def test_choose_registered_machines_in_every_state(profiles: ProfileSet, state: SystemState) -> None:
    decision = "install" if state is SystemState.INSTALL else "local"
    lab = {"room": "lab"}
    sb = {"room": "sb"}
    # the profile's (inherited), the group's over it, the system's over both, the site's when none says
    assert chains(choose(system(state, "child"), profiles, "local")) == (decision, "shim-grub")
    assert chains(choose(system(state, "child", labels=lab), profiles, "local")) == (decision, "ipxe")
    assert chains(choose(system(state, None, labels=sb), profiles, "local")) == (decision, "shim-grub")
    own = system(state, "child", labels=lab, boot_chain="shim-grub")
    assert chains(choose(own, profiles, "local")) == (decision, "shim-grub")
    plain = system(state, "plain")
    assert chains(choose(plain, profiles, "local")) == (decision, "ipxe")
    assert chains(choose(plain, profiles, "local", site_boot_chain="shim-grub")) == (decision, "shim-grub")
    # the local_boot of the same choice is untouched by the new argument
    assert choose(plain, profiles, "local", "exit", None, "shim-grub").local_boot == "exit"


def test_choose_a_profile_gone_keeps_the_systems_and_the_sites_chain(profiles: ProfileSet) -> None:
    gone = system(SystemState.INSTALL, "gone")
    assert chains(choose(gone, profiles, "local", site_boot_chain="shim-grub")) == ("local", "shim-grub")
    own = system(SystemState.INSTALL, "gone", boot_chain="shim-grub")
    assert chains(choose(own, profiles, "local")) == ("local", "shim-grub")
