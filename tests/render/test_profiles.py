"""Profiles and groups: loading, the errors an admin sees, inheritance, and group selection."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import (
    ProfileErrors,
    ProfileSet,
    SystemFacts,
    load_profiles,
    load_profiles_collect,
)

from .conftest import SAMPLE_PROFILES, TreeBuilder

KS = "kind: kickstart\nkernel: vmlinuz\ninitrd: [initrd.img]\n"
KS_TEMPLATE = {"base/ks.cfg.j2": "text\n"}


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    return [str(e) for e in info.value.errors]


def one_error(root: Path) -> str:
    errors = errors_of(root)
    assert len(errors) == 1, errors
    return errors[0]


# ----------------------------------------------------------------------------------- sample profiles


def test_sample_profiles_load(sample_set: ProfileSet) -> None:
    assert sample_set.names() == sorted(SAMPLE_PROFILES)
    kinds = {p.name: p.kind for p in sample_set}
    assert kinds == {
        "rocky9-kickstart": "kickstart",
        "solaris10-jumpstart": "jumpstart",
        "debian12-preseed": "preseed",
        "ubuntu24-autoinstall": "autoinstall",
        "opensuse-autoyast": "autoyast",
        "local": "local",
    }


def test_sample_answer_files(sample_set: ProfileSet) -> None:
    js = sample_set.get("solaris10-jumpstart")
    assert js is not None
    assert js.answer_files == ("rules", "profile", "sysidcfg", "finish")
    ubuntu = sample_set.get("ubuntu24-autoinstall")
    assert ubuntu is not None and ubuntu.answer_files == ("user-data", "meta-data")
    local = sample_set.get("local")
    assert local is not None and local.answer_files == () and not local.installs


def test_menu_lists_installer_profiles_only(sample_set: ProfileSet) -> None:
    names = [p.name for p in sample_set.menu_profiles()]
    assert "local" not in names
    assert names == sorted(names)
    assert "debian12-preseed" in names


def test_debian_takes_local_file_or_mirror(sample_set: ProfileSet) -> None:
    debian = sample_set.get("debian12-preseed")
    assert debian is not None and debian.kernel is not None
    assert debian.data_dir == Path("/usr/lib/debian-installer/images/12/amd64/text")
    assert debian.kernel.path == "debian-installer/amd64/linux"
    assert debian.kernel.url is not None and debian.kernel.url.startswith(
        "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/"
    )
    assert [i.name for i in debian.initrds] == ["initrd.gz"]


# ----------------------------------------------------------------------------------- bad profiles


def test_typo_key_names_file_line_and_suggestion(tree: TreeBuilder) -> None:
    root = tree(
        {
            "rocky/profile.yaml": """
                description: typo below
                kind: kickstart
                kernal: vmlinuz
            """,
            "rocky/ks.cfg.j2": "text\n",
        }
    )
    assert one_error(root) == f"{root}/rocky/profile.yaml:3: unknown key 'kernal' (did you mean 'kernel'?)"


def test_typo_nested_key(tree: TreeBuilder) -> None:
    root = tree(
        {
            "p/profile.yaml": """
                kind: kickstart
                kernel:
                  pth: vmlinuz
            """,
            "p/ks.cfg.j2": "",
        }
    )
    errors = errors_of(root)
    assert f"{root}/p/profile.yaml:3: unknown key 'kernel.pth' (did you mean 'path'?)" in errors


def test_unknown_kind_suggests(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": "kind: kickstrat\nkernel: k\n"})
    assert one_error(root).startswith(
        f"{root}/p/profile.yaml:1: kind: unknown kind 'kickstrat' (did you mean 'kickstart'?)"
    )


def test_wrong_types(tree: TreeBuilder) -> None:
    root = tree(
        {
            "p/profile.yaml": """
                kind: kickstart
                kernel: k
                menu: "yes"
                variables: [a, b]
                cmdline: {a: b}
                description: 5
            """,
            "p/ks.cfg.j2": "",
        }
    )
    errors = errors_of(root)
    file = f"{root}/p/profile.yaml"
    assert f"{file}:3: menu: expected true or false, got a string" in errors
    assert f"{file}:4: variables: expected a mapping of variables, got a list" in errors
    assert f"{file}:5: cmdline: expected a list of kernel arguments, got a mapping" in errors
    assert f"{file}:6: description: expected a string, got a number" in errors


def test_missing_required_kind_and_kernel(tree: TreeBuilder) -> None:
    root = tree(
        {
            "a/profile.yaml": "description: no kind\n",
            "b/profile.yaml": "kind: preseed\n",
            "b/preseed.cfg.j2": "",
        }
    )
    errors = errors_of(root)
    assert f"{root}/a/profile.yaml:1: missing required key 'kind'" in errors
    assert (
        f"{root}/b/profile.yaml:1: missing required key 'kernel' (kind 'preseed' boots an installer)"
        in errors
    )


def test_missing_template(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": KS + "templates:\n  ks.cfg: kickstart.j2\n"})
    error = one_error(root)
    assert error.startswith(f"{root}/p/profile.yaml:5: templates.ks.cfg: template 'kickstart.j2' not found")
    root2 = tree({"q/profile.yaml": KS})
    assert f"{root2}/q/profile.yaml:1: kind: template 'ks.cfg.j2' not found" in errors_of(root2)[0]


def test_unknown_template_file_for_kind(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": KS + "templates:\n  kss.cfg: ks.cfg.j2\n", "p/ks.cfg.j2": ""})
    assert (
        one_error(root)
        == f"{root}/p/profile.yaml:5: unknown key 'templates.kss.cfg' (did you mean 'ks.cfg'?)"
    )


def test_parent_cycle(tree: TreeBuilder) -> None:
    root = tree(
        {
            "a/profile.yaml": "parent: b\n" + KS,
            "b/profile.yaml": "parent: c\n",
            "c/profile.yaml": "parent: a\n",
            "a/ks.cfg.j2": "",
        }
    )
    assert one_error(root) == f"{root}/a/profile.yaml:1: parent cycle: a -> b -> c -> a"


def test_self_parent(tree: TreeBuilder) -> None:
    root = tree({"a/profile.yaml": "parent: a\n" + KS, "a/ks.cfg.j2": ""})
    assert one_error(root) == f"{root}/a/profile.yaml:1: parent cycle: a -> a"


def test_unknown_parent_suggests(tree: TreeBuilder) -> None:
    root = tree({"rocky9/profile.yaml": KS, "rocky9/ks.cfg.j2": "", "child/profile.yaml": "parent: rocky8\n"})
    assert one_error(root) == f"{root}/child/profile.yaml:1: unknown parent 'rocky8' (did you mean 'rocky9'?)"


def test_child_of_broken_parent_is_named(tree: TreeBuilder) -> None:
    root = tree({"base/profile.yaml": "kernal: x\n", "child/profile.yaml": "parent: base\n"})
    errors = errors_of(root)
    assert f"{root}/child/profile.yaml:1: not loaded: parent 'base' has errors" in errors


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("kernel", "../../../etc/passwd", "kernel: '../../../etc/passwd' escapes the data directory"),
        ("kernel", "/etc/passwd", "kernel: '/etc/passwd' escapes the data directory"),
        ("initrd", "[a/../../b]", "initrd.0: 'a/../../b' escapes the data directory"),
        ("kernel", "{path: ../x, url: 'http://m/x'}", "kernel.path: '../x' escapes the data directory"),
    ],
)
def test_boot_file_escaping_data_dir(tree: TreeBuilder, key: str, value: str, message: str) -> None:
    base = {"kind": "kickstart", "kernel": "k"}
    base[key] = value
    text = "".join(f"{k}: {v}\n" for k, v in base.items())
    root = tree({"p/profile.yaml": text, "p/ks.cfg.j2": ""})
    error = one_error(root)
    assert message in error and error.startswith(f"{root}/p/profile.yaml:")


def test_template_escaping_profile_folder(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": KS + "templates:\n  ks.cfg: ../../secret.j2\n"})
    assert "templates.ks.cfg: '../../secret.j2' escapes the profile folder" in one_error(root)


def test_symlinked_template_outside_is_not_found(tree: TreeBuilder, tmp_path: Path) -> None:
    outside = tmp_path / "outside.j2"
    outside.write_text("secret")
    root = tree({"p/profile.yaml": KS})
    os.symlink(outside, root / "p" / "ks.cfg.j2")
    assert "template 'ks.cfg.j2' not found" in one_error(root)


def test_symlinked_kernel_outside_data_dir(tree: TreeBuilder, tmp_path: Path) -> None:
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0")
    root = tree({"p/profile.yaml": KS, "p/ks.cfg.j2": ""})
    (root / "p" / "files").mkdir()
    os.symlink(outside, root / "p" / "files" / "vmlinuz")
    assert "kernel: 'vmlinuz' escapes the data directory" in one_error(root)


def test_data_dir_must_not_expose_profiles(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": KS + "data_dir: .\n", "p/ks.cfg.j2": ""})
    assert "data_dir: '.' would serve profile files" in one_error(root)
    root2 = tree({"q/profile.yaml": KS + "data_dir: ../..\n", "q/ks.cfg.j2": ""})
    assert "data_dir: '../..' escapes the profiles folder" in errors_of(root2)[-1]


def test_local_kind_takes_no_installer(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": "kind: local\nkernel: vmlinuz\n"})
    assert (
        one_error(root)
        == f"{root}/p/profile.yaml:2: kernel: kind 'local' boots no installer: remove 'kernel'"
    )


def test_bad_url_and_yaml_syntax(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": "kind: kickstart\nkernel: {url: 'ftp://x/y'}\n", "p/ks.cfg.j2": ""})
    assert "kernel.url: 'ftp://x/y' is not an http://, https:// or tftp:// URL" in one_error(root)
    root2 = tree({"q/profile.yaml": "kind: [\n"})
    assert one_error(root2).startswith(f"{root2}/q/profile.yaml:2: YAML syntax")


def test_all_problems_are_collected(tree: TreeBuilder) -> None:
    root = tree(
        {
            "good/profile.yaml": KS,
            "good/ks.cfg.j2": "",
            "bad1/profile.yaml": "kernal: x\n",
            "bad2/profile.yaml": "parent: nowhere\n",
        }
    )
    profile_set, errors = load_profiles_collect(root)
    assert profile_set.names() == ["good"]
    assert len(errors) == 2
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    assert str(info.value).count("\n") == 1  # one line per problem


def test_folders_without_profile_yaml_and_reserved_names_are_skipped(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": KS, "p/ks.cfg.j2": "", "notes/readme.txt": "x", "_snippets/x.j2": ""})
    assert load_profiles(root).names() == ["p"]


# ------------------------------------------------------------------------------------- inheritance


def test_inheritance_overrides_and_deep_merges(tree: TreeBuilder) -> None:
    root = tree(
        {
            "base/profile.yaml": """
                description: base
                kind: kickstart
                kernel: vmlinuz
                initrd: [initrd.img]
                cmdline: [quiet]
                variables:
                  mirror: http://base
                  disk: {name: sda, wipe: true}
                  packages: [a, b]
                validate: {version: RHEL8}
            """,
            "base/ks.cfg.j2": "base template\n",
            "base/extra.j2": "",
            "child/profile.yaml": """
                parent: base
                description: child
                cmdline: [console=ttyS0]
                variables:
                  disk: {name: vda}
                  packages: [c]
                validate: {version: RHEL9}
            """,
        }
    )
    profile_set = load_profiles(root)
    child = profile_set.get("child")
    assert child is not None
    assert child.kind == "kickstart" and child.description == "child" and child.parent == "base"
    assert child.cmdline == ("console=ttyS0",)
    assert child.variables == {
        "mirror": "http://base",
        "disk": {"name": "vda", "wipe": True},
        "packages": ["c"],
    }
    assert child.validate == {"version": "RHEL9"}
    assert child.lineage == ("child", "base")
    assert child.search_path == (root / "child", root / "base")
    # the parent's data directory: files named by the parent live in the parent's folder
    assert child.data_dir == root / "base" / "files"


def test_child_overrides_a_template_by_file_name(tree: TreeBuilder, facts: object) -> None:
    from netboot.render import render_answer, sample_system

    root = tree(
        {
            "base/profile.yaml": KS,
            "base/ks.cfg.j2": "from base\n",
            "child/profile.yaml": "parent: base\n",
            "child2/profile.yaml": "parent: base\n",
            "child2/ks.cfg.j2": "from child2\n",
        }
    )
    profile_set = load_profiles(root)
    render = {
        name: render_answer(profile_set, p, None, sample_system(name), facts, "ks.cfg").content  # type: ignore[arg-type]
        for name in ("child", "child2")
        if (p := profile_set.get(name)) is not None
    }
    assert render == {"child": "from base\n", "child2": "from child2\n"}


def test_data_file_is_confined(tree: TreeBuilder, tmp_path: Path) -> None:
    root = tree({"p/profile.yaml": KS, "p/ks.cfg.j2": "", "p/files/vmlinuz": "kernel"})
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", root / "p" / "files" / "link")
    profile = load_profiles(root).get("p")
    assert profile is not None
    assert profile.data_file("vmlinuz") == (root / "p" / "files" / "vmlinuz").resolve()
    for bad in ("../profile.yaml", "/etc/passwd", "link", "missing", "", "a\\..\\b"):
        assert profile.data_file(bad) is None, bad


# ---------------------------------------------------------------------------------------- groups

GROUPS_BASE = {
    "rocky/profile.yaml": KS,
    "rocky/ks.cfg.j2": "",
    "debian/profile.yaml": "kind: preseed\nkernel: linux\n",
    "debian/preseed.cfg.j2": "",
}


def facts_for(mac: str = "52:54:00:00:00:01", **kw: object) -> SystemFacts:
    return SystemFacts(mac=MacAddress.parse(mac), **kw)  # type: ignore[arg-type]


def test_most_specific_group_wins_ties_by_name(tree: TreeBuilder) -> None:
    root = tree(
        {
            **GROUPS_BASE,
            "_groups/default.yaml": "profile: debian\n",
            "_groups/rack1.yaml": "profile: rocky\nselector:\n  labels: {rack: r1}\n",
            "_groups/b-uefi-rack1.yaml": "profile: debian\nselector: {arch: uefi-x64, labels: {rack: r1}}\n",
            "_groups/a-uefi-rack1.yaml": "profile: rocky\nselector: {arch: uefi-x64, labels: {rack: r1}}\n",
            "_groups/one.yaml": "profile: debian\nselector:\n  mac: '52-54-00-AA-BB-CC'\n",
        }
    )
    ps = load_profiles(root)

    def pick(f: SystemFacts) -> tuple[str | None, str | None]:
        profile, group = ps.select_profile(f)
        return (profile.name if profile else None, group.name if group else None)

    assert pick(facts_for()) == ("debian", "default")
    assert pick(facts_for(labels={"rack": "r1"})) == ("rocky", "rack1")
    assert pick(facts_for(labels={"rack": "r1"}, arch="uefi-x64")) == ("rocky", "a-uefi-rack1")
    assert pick(facts_for("5254.00aa.bbcc")) == ("debian", "one")


UPPER_UUID = "4C4C4544-0042-3510-8052-B4C04F384D32"


def test_system_profile_beats_group_and_filters_groups(tree: TreeBuilder) -> None:
    root = tree(
        {
            **GROUPS_BASE,
            "_groups/all-debian.yaml": "profile: debian\nvariables: {x: 1}\n",
            "_groups/all-rocky.yaml": "profile: rocky\nvariables: {x: 2}\n",
            "_groups/specific.yaml": f"profile: debian\nselector: {{uuid: {UPPER_UUID}}}\n",
        }
    )
    ps = load_profiles(root)
    system = System(
        mac=MacAddress.parse("52:54:00:00:00:02"),
        profile="rocky",
        state=SystemState.INSTALL,
        uuid="4c4c4544-0042-3510-8052-b4c04f384d32",
    )
    profile, group = ps.select(system)
    assert profile is not None and profile.name == "rocky"
    assert group is not None and group.name == "all-rocky"
    unassigned = System(mac=system.mac, profile=None, state=SystemState.DISCOVERED, uuid=system.uuid)
    profile, group = ps.select(unassigned, "bios")
    assert (profile.name if profile else None, group.name if group else None) == ("debian", "specific")
    gone = System(mac=system.mac, profile="removed", state=SystemState.INSTALL)
    assert ps.select(gone) == (None, None)


def test_no_group_no_profile(tree: TreeBuilder) -> None:
    ps = load_profiles(tree(GROUPS_BASE))
    assert ps.select_profile(facts_for()) == (None, None)


def test_arch_from_boot_request_beats_stored(tree: TreeBuilder) -> None:
    root = tree({**GROUPS_BASE, "_groups/efi.yaml": "profile: rocky\nselector: {arch: uefi-x64}\n"})
    ps = load_profiles(root)
    system = System(
        mac=MacAddress.parse("52:54:00:00:00:03"), profile=None, state=SystemState.DISCOVERED, arch="bios"
    )
    assert ps.select(system) == (None, None)
    profile, _ = ps.select(system, "uefi-x64")
    assert profile is not None and profile.name == "rocky"


def test_group_errors(tree: TreeBuilder) -> None:
    root = tree(
        {
            **GROUPS_BASE,
            "_groups/a.yaml": "profile: rocyk\n",
            "_groups/b.yaml": "profile: rocky\nselector:\n  mac: nonsense\n  arch: uefi-x46\n  uuid: nope\n",
            "_groups/c.yaml": "selector: {}\nprofil: rocky\n",
        }
    )
    errors = errors_of(root)
    g = f"{root}/_groups"
    assert f"{g}/a.yaml:1: unknown profile 'rocyk' (did you mean 'rocky'?)" in errors
    assert any(re.match(rf"{g}/b.yaml:3: selector.mac: not a MAC address", e) for e in errors)
    assert any(
        e.startswith(f"{g}/b.yaml:4: selector.arch: unknown arch 'uefi-x46' (did you mean 'uefi-x64'?)")
        for e in errors
    )
    assert f"{g}/b.yaml:5: selector.uuid: 'nope' is not a UUID" in errors
    assert f"{g}/c.yaml:2: unknown key 'profil' (did you mean 'profile'?)" in errors
    assert f"{g}/c.yaml:1: missing required key 'profile'" in errors
