"""The one context builder: precedence, the system fields, the URLs, and plain data only."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet, load_profiles
from netboot.render import RenderError, ServerFacts, build_context
from netboot.render.context import merge_variables, plain

from .conftest import TreeBuilder, fixed_facts

MAC = MacAddress.parse("52:54:00:ab:cd:ef")


@pytest.fixture
def layered(tree: TreeBuilder) -> ProfileSet:
    return load_profiles(
        tree(
            {
                "base/profile.yaml": """
                    kind: kickstart
                    kernel: vmlinuz
                    variables:
                      level: profile-parent
                      only_parent: p
                      nested: {a: parent, b: parent, deep: {x: parent}}
                      listy: [parent]
                """,
                "base/ks.cfg.j2": "",
                "child/profile.yaml": """
                    parent: base
                    variables:
                      level: profile-child
                      only_child: c
                      nested: {b: child, deep: {y: child}}
                """,
                "_groups/g.yaml": """
                    profile: child
                    variables:
                      level: group
                      only_group: g
                      nested: {c: group}
                      listy: [group]
                """,
            }
        )
    )


def system(**kw: object) -> System:
    values: dict[str, object] = {"mac": MAC, "profile": "child", "state": SystemState.INSTALL}
    values.update(kw)
    return System(**values)  # type: ignore[arg-type]


def test_precedence_site_profile_parent_child_group_system(layered: ProfileSet) -> None:
    facts = fixed_facts(variables={"level": "site", "only_site": "s", "nested": {"site": True}})
    profile, group = layered.select(system())
    assert profile is not None and group is not None
    sys_ = system(variables={"level": "system", "only_system": "y", "nested": {"a": "system"}})
    merged = merge_variables(facts, profile, group, sys_)
    assert merged == {
        "level": "system",
        "only_site": "s",
        "only_parent": "p",
        "only_child": "c",
        "only_group": "g",
        "only_system": "y",
        "domain": "example.test",
        "nested": {
            "site": True,
            "a": "system",
            "b": "child",
            "c": "group",
            "deep": {"x": "parent", "y": "child"},
        },
        "listy": ["group"],  # lists are replaced, not appended
    }
    # each layer alone wins over the ones below it
    assert merge_variables(facts, profile, None, None)["level"] == "profile-child"
    assert merge_variables(facts, profile, group, None)["level"] == "group"
    assert merge_variables(facts, None, None, None)["level"] == "site"


def test_domain_fact_is_a_default_a_profile_can_override(layered: ProfileSet) -> None:
    profile = layered.get("child")
    ctx = build_context(
        fixed_facts(), profile, None, system(hostname="web1", variables={"domain": "lab.test"})
    )
    assert ctx["vars"]["domain"] == "lab.test"
    assert ctx["system"]["domain"] == "lab.test"
    assert ctx["system"]["fqdn"] == "web1.lab.test"
    assert ctx["server"]["domain"] == "example.test"


def test_system_fields(layered: ProfileSet) -> None:
    profile, group = layered.select(system())
    sys_ = system(
        hostname="web1",
        ip=IPv4Address("10.0.0.9"),
        token="tok",
        arch="uefi-x64",
        uuid="u",
        labels={"rack": "r1"},
    )
    ctx = build_context(fixed_facts(), profile, group, sys_)
    assert ctx["system"] == {
        "mac": "52:54:00:ab:cd:ef",
        "mac_hex": "525400abcdef",
        "mac_dashed": "52-54-00-ab-cd-ef",
        "pxelinux": "01-52-54-00-ab-cd-ef",
        "hostname": "web1",
        "domain": "example.test",
        "fqdn": "web1.example.test",
        "ip": "10.0.0.9",
        "token": "tok",
        "arch": "uefi-x64",
        "uuid": "u",
        "labels": {"rack": "r1"},
        "profile": "child",
        "state": "install",
    }
    assert ctx["profile"] == {
        "name": "child",
        "kind": "kickstart",
        "description": "",
        "lineage": ["child", "base"],
    }
    assert ctx["group"] == {"name": "g", "description": ""}


def test_hostname_defaults_from_mac(layered: ProfileSet) -> None:
    ctx = build_context(fixed_facts(domain=None), layered.get("child"), None, system())
    assert ctx["system"]["hostname"] == "netboot-525400abcdef"
    assert ctx["system"]["fqdn"] == "netboot-525400abcdef"
    assert ctx["system"]["domain"] is None


def test_urls(layered: ProfileSet) -> None:
    ctx = build_context(fixed_facts(), layered.get("child"), None, system(token="t0k"))
    base = "http://10.0.0.1:8080"
    assert ctx["urls"] == {
        "boot_script": f"{base}/boot.ipxe?mac=52:54:00:ab:cd:ef",
        "answer": {"ks.cfg": f"{base}/answer/52:54:00:ab:cd:ef/ks.cfg?token=t0k"},
        "answer_dir": f"{base}/answer/52:54:00:ab:cd:ef/",
        "nocloud_seed": f"{base}/answer/52:54:00:ab:cd:ef/%s?token=t0k",
        "done": f"{base}/done/52:54:00:ab:cd:ef?token=t0k",
        "files": f"{base}/files/child/",
    }
    boot = ctx["boot"]
    assert boot["kernel"]["url"] == f"{base}/files/child/vmlinuz"  # served from the parent's data dir
    assert boot["args"][-1] == f"inst.ks={base}/answer/52:54:00:ab:cd:ef/ks.cfg?token=t0k"


def test_server_facts_defaults() -> None:
    assert ServerFacts(server_ip="192.0.2.1").http_base == "http://192.0.2.1"
    assert ServerFacts(server_ip="192.0.2.1", http_port=8080).tftp_server == "192.0.2.1"
    assert ServerFacts(server_ip="fd00::1", http_port=81).http_base == "http://[fd00::1]:81"
    assert ServerFacts(server_ip="x", http_base="http://boot.example/").http_base == "http://boot.example"


def test_local_file_is_preferred_when_present(layered: ProfileSet, tmp_path: Path) -> None:
    seen: list[Path] = []

    def exists(path: Path) -> bool:
        seen.append(path)
        return True

    ctx = build_context(fixed_facts(file_exists=exists), layered.get("child"), None, system())
    assert ctx["boot"]["kernel"]["local"] is True
    assert seen and seen[0].name == "vmlinuz"


def test_context_is_plain_data(layered: ProfileSet) -> None:
    class Live:
        def __str__(self) -> str:
            return "live"

    sys_ = system(variables={"obj": Live(), "tup": (1, 2), "set": {3}, "n": None})
    ctx = build_context(fixed_facts(), layered.get("child"), None, sys_)
    assert ctx["vars"]["obj"] == "live"
    assert ctx["vars"]["tup"] == [1, 2]
    assert ctx["vars"]["set"] == [3]
    assert plain({1: (True, 1.5)}) == {"1": [True, 1.5]}


def test_changing_the_context_does_not_change_the_profile(layered: ProfileSet) -> None:
    profile = layered.get("child")
    assert profile is not None
    ctx = build_context(fixed_facts(), profile, None, system())
    ctx["vars"]["nested"]["a"] = "changed"
    assert profile.variables["nested"]["a"] == "parent"


@pytest.mark.parametrize("field", ["hostname", "token"])
@pytest.mark.parametrize(
    "value", ["two words", "line\nbreak", "", "tab\there", "trailing\n", "csi\x9bc1", "nul\x00"]
)
def test_identity_fields_cannot_break_lines(layered: ProfileSet, field: str, value: str) -> None:
    with pytest.raises(RenderError, match=field):
        build_context(fixed_facts(), layered.get("child"), None, system(**{field: value}))


def test_no_system_for_the_menu(layered: ProfileSet) -> None:
    ctx = build_context(fixed_facts(), None, None, None)
    assert ctx["system"] is None and ctx["profile"] is None and ctx["boot"] is None
    assert ctx["urls"]["boot_script"] == "http://10.0.0.1:8080/boot.ipxe?mac=${net0/mac}"
