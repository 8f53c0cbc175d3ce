"""profile.yaml and group files through their pydantic schema: every error of a file at its line, the
local_boot key (profile, child, group, site default), and control characters refused in every string."""

from __future__ import annotations

from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import (
    GROUP_KEYS,
    LOCAL_BOOT_CHOICES,
    PROFILE_KEYS,
    ProfileErrors,
    load_profiles,
    local_boot_for,
)
from netboot.render.kinds import KERNEL_TYPES

from .conftest import PROFILES, TreeBuilder

KS = "kind: kickstart\nkernel: vmlinuz\ninitrd: [initrd.img]\n"


def errors_of(root: Path) -> list[str]:
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    return [str(e).removeprefix(f"{root}/") for e in info.value.errors]


def test_every_error_of_one_profile_file_is_reported_with_its_line(tree: TreeBuilder) -> None:
    root = tree(
        {
            "p/profile.yaml": """
                description: many mistakes
                kind: kickstart
                kernel: {pth: vmlinuz}
                initrd: [ok.img, {url: 'ftp://x/y'}]
                kernel_type: linx
                menu: 1
                local_boot: sanbot
                templates: {ks.cfg: ../up.j2}
                validat: {version: RHEL9}
            """,
            "p/ks.cfg.j2": "",
        }
    )
    assert errors_of(root) == [
        "p/profile.yaml:3: unknown key 'kernel.pth' (did you mean 'path'?)",
        "p/profile.yaml:4: initrd.1.url: 'ftp://x/y' is not an http://, https:// or tftp:// URL",
        "p/profile.yaml:5: kernel_type: unknown kernel type 'linx' (did you mean 'linux'?); one of: "
        + ", ".join(KERNEL_TYPES),
        "p/profile.yaml:6: menu: expected true or false, got a number",
        "p/profile.yaml:7: local_boot: unknown local boot method 'sanbot' (did you mean 'sanboot'?); "
        "one of: skip, auto, exit, sanboot",
        "p/profile.yaml:8: templates.ks.cfg: '../up.j2' escapes the profile folder: "
        "give a path relative to it, without '..'",
        "p/profile.yaml:9: unknown key 'validat' (did you mean 'validate'?)",
    ]


def test_every_error_of_one_group_file_is_reported_with_its_line(tree: TreeBuilder) -> None:
    root = tree(
        {
            "rocky/profile.yaml": KS,
            "rocky/ks.cfg.j2": "",
            "_groups/g.yaml": """
                profile: rocyk
                local_boot: ext
                selector:
                  mac: 52:54:00:12:34
                  labels: {rack: [1]}
                  lables: {}
                variables: nope
            """,
        }
    )
    assert errors_of(root) == [
        "_groups/g.yaml:1: unknown profile 'rocyk' (did you mean 'rocky'?)",
        "_groups/g.yaml:2: local_boot: unknown local boot method 'ext' (did you mean 'exit'?); "
        "one of: skip, auto, exit, sanboot",
        "_groups/g.yaml:4: selector.mac: not a MAC address: '52:54:00:12:34' (use e.g. 52:54:00:12:34:56)",
        "_groups/g.yaml:5: selector.labels.rack: expected a string, got a list",
        "_groups/g.yaml:6: unknown key 'selector.lables' (did you mean 'labels'?)",
        "_groups/g.yaml:7: variables: expected a mapping of variables, got a string",
    ]


def test_a_source_needs_a_path_or_a_url(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": "kind: kickstart\nkernel: {}\n", "p/ks.cfg.j2": ""})
    assert errors_of(root) == [
        "p/profile.yaml:2: kernel: needs 'path' (in the data directory), 'url', or both"
    ]


def test_a_typo_of_local_boot_suggests_it(tree: TreeBuilder) -> None:
    root = tree(
        {
            "p/profile.yaml": "kind: local\nlocal-boot: exit\n",
            "_groups/g.yaml": "profile: p\nlocalboot: exit\n",
        }
    )
    assert errors_of(root) == [
        "_groups/g.yaml:1: profile 'p' has errors",
        "_groups/g.yaml:2: unknown key 'localboot' (did you mean 'local_boot'?)",
        "p/profile.yaml:2: unknown key 'local-boot' (did you mean 'local_boot'?)",
    ]
    assert "local_boot" in PROFILE_KEYS and "local_boot" in GROUP_KEYS


# ----------------------------------------------------------------------------------- local_boot


def test_local_boot_unset_is_none_and_inherits_profile_child_group(tree: TreeBuilder) -> None:
    root = tree(
        {
            "base/profile.yaml": KS + "local_boot: exit\n",
            "base/ks.cfg.j2": "",
            "child/profile.yaml": "parent: base\n",
            "grandchild/profile.yaml": "parent: child\nlocal_boot: skip\n",
            "plain/profile.yaml": KS,
            "plain/ks.cfg.j2": "",
            "_groups/lab.yaml": "profile: child\nlocal_boot: sanboot\nselector: {labels: {room: lab}}\n",
            "_groups/rest.yaml": "profile: plain\n",
        }
    )
    ps = load_profiles(root)
    said = {p.name: p.local_boot for p in ps}
    assert said == {"base": "exit", "child": "exit", "grandchild": "skip", "plain": None}
    groups = {g.name: g for g in ps.groups}
    assert groups["lab"].local_boot == "sanboot" and groups["rest"].local_boot is None

    mac = MacAddress.parse("52:54:00:00:00:01")
    in_lab = System(mac=mac, profile=None, state=SystemState.INSTALLED, labels={"room": "lab"})
    elsewhere = System(mac=mac, profile=None, state=SystemState.INSTALLED)
    profile, group = ps.select(in_lab)
    assert (profile.name if profile else None, group.name if group else None) == ("child", "lab")
    assert local_boot_for(in_lab, group, profile) == "sanboot"  # the group's beats the profile's
    assert local_boot_for(in_lab, None, profile) == "exit"  # the child inherits its parent's
    assert local_boot_for(None, None, ps.get("grandchild")) == "skip"
    profile, group = ps.select(elsewhere)
    assert profile is ps.get("plain") and group is groups["rest"]
    assert local_boot_for(elsewhere, group, profile) == "skip"  # nobody says: the site default
    assert local_boot_for(elsewhere, group, profile, site_default="auto") == "auto"
    mine = System(mac=mac, profile=None, state=SystemState.LOCAL, labels={"room": "lab"}, local_boot="auto")
    assert local_boot_for(mine, groups["lab"], ps.get("child")) == "auto"  # the system's own beats all


@pytest.mark.parametrize("choice", LOCAL_BOOT_CHOICES)
def test_every_local_boot_choice_loads(tree: TreeBuilder, choice: str) -> None:
    root = tree({"p/profile.yaml": f"kind: local\nlocal_boot: {choice}\n"})
    profile = load_profiles(root).get("p")
    assert profile is not None and profile.local_boot == choice


def test_sample_local_profile_keeps_the_ipxe_hand_back() -> None:
    local = load_profiles(PROFILES).get("local")
    assert local is not None and local.local_boot == "auto"


# -------------------------------------------------------------------------- control characters

#: (file, YAML holding "{bad}" where a string goes, the key the error names or None for unknown-key style)
STRING_FIELDS: list[tuple[str, str, str]] = [
    ("p/profile.yaml", 'description: "{bad}"\n' + KS, "description"),
    ("p/profile.yaml", 'parent: "{bad}"\n' + KS, "parent"),
    ("p/profile.yaml", 'kind: "{bad}"\nkernel: k\n', "kind"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: "{bad}"\n', "kernel"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: {{url: "http://m/{bad}"}}\n', "kernel.url"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\ninitrd: ["{bad}"]\n', "initrd.0"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\ncmdline: "quiet {bad}"\n', "cmdline"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\ncmdline: [quiet, "a{bad}"]\n', "cmdline"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\nkernel_type: "{bad}"\n', "kernel_type"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\ndata_dir: "/srv/{bad}"\n', "data_dir"),
    (
        "p/profile.yaml",
        'kind: kickstart\nkernel: k\ntemplates: {{ks.cfg: "k{bad}.j2"}}\n',
        "templates.ks.cfg",
    ),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\ntemplates: {{"ks{bad}": k.j2}}\n', "templates"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\nvalidate: {{version: "R{bad}"}}\n', "validate.version"),
    ("p/profile.yaml", 'kind: local\nlocal_boot: "exit{bad}"\n', "local_boot"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\nsecrets: [root_pw, "pw{bad}"]\n', "secrets"),
    ("p/profile.yaml", 'kind: kickstart\nkernel: k\nboot_chain: "ipxe{bad}"\n', "boot_chain"),
    ("_groups/g.yaml", 'profile: p\ndescription: "{bad}"\n', "description"),
    ("_groups/g.yaml", 'profile: "p{bad}"\n', "profile"),
    ("_groups/g.yaml", 'profile: p\nselector: {{arch: "bios{bad}"}}\n', "selector.arch"),
    ("_groups/g.yaml", 'profile: p\nselector: {{uuid: "{bad}"}}\n', "selector.uuid"),
    ("_groups/g.yaml", 'profile: p\nselector: {{mac: "52:54:00:12:34:56{bad}"}}\n', "selector.mac"),
    ("_groups/g.yaml", 'profile: p\nselector: {{labels: {{rack: "r{bad}"}}}}\n', "selector.labels.rack"),
    ("_groups/g.yaml", 'profile: p\nselector: {{labels: {{"ra{bad}ck": r1}}}}\n', "selector.labels"),
    ("_groups/g.yaml", 'profile: p\nlocal_boot: "{bad}skip"\n', "local_boot"),
]
#: name -> (the YAML double-quoted escape, the character it is): C0 (newline, CR, tab, NUL, escape, bell),
#: DEL, C1 (NEL, CSI) and the Unicode line and paragraph separators
CONTROLS = {
    "newline": ("\\n", "\n"),
    "cr": ("\\r", "\r"),
    "tab": ("\\t", "\t"),
    "nul": ("\\0", "\x00"),
    "escape": ("\\e", "\x1b"),
    "bell": ("\\a", "\x07"),
    "del": ("\\x7f", "\x7f"),
    "c1-nel": ("\\N", "\x85"),
    "c1-csi": ("\\x9b", "\x9b"),
    "line-separator": ("\\L", "\u2028"),
    "paragraph-separator": ("\\P", "\u2029"),
}


@pytest.mark.parametrize(
    ("file", "text", "key"), STRING_FIELDS, ids=[f"{r[0][:2]}{r[2]}" for r in STRING_FIELDS]
)
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_control_characters_are_refused_in_every_string(
    tree: TreeBuilder, file: str, text: str, key: str, control: str
) -> None:
    escape, char = CONTROLS[control]
    files = {"p/profile.yaml": "kind: local\n", file: text.format(bad=escape)}
    if file == "p/profile.yaml":
        files["p/ks.cfg.j2"] = ""
    root = tree(files)
    line = 1 + next(i for i, row in enumerate(files[file].splitlines()) if "\\" in row)
    errors = [e for e in errors_of(root) if e.startswith(f"{file}:")]
    assert errors, files[file]
    # a mapping key with the character in it is named, escaped: the message stays one line
    escaped = repr(char)[1:-1]
    shown = key + (
        f".ks{escaped}" if key == "templates" else f".ra{escaped}ck" if key == "selector.labels" else ""
    )
    assert errors[0].startswith(f"{file}:{line}: {shown}: "), errors
    assert all(e.isprintable() for e in errors), errors
    # the reason shows the character, escaped (most of them are invisible)
    assert any(
        f"control characters (newline, tab, ...): {char!r} at character" in e
        or "not a UUID" in e
        or "is not a variable name" in e
        for e in errors
    ), errors
    assert escaped in errors[0], errors


def test_a_description_with_a_newline_never_reaches_the_menu(tree: TreeBuilder) -> None:
    root = tree({"p/profile.yaml": 'description: "Rocky\\nchain http://evil/x"\n' + KS, "p/ks.cfg.j2": ""})
    assert errors_of(root) == [
        "p/profile.yaml:1: description: must not contain control characters (newline, tab, ...): '\\n' "
        "at character 6"
    ]
